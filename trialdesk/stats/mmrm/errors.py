"""Exceptions of the MMRM: each names the offending field, value, column or visit.

All derive from :class:`MmrmError`; the input errors are also ``ValueError`` and the
numerical failures ``RuntimeError`` so that generic handlers keep working.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConvergenceError",
    "DuplicateVisitError",
    "EmptyVisitError",
    "MmrmDataError",
    "MmrmError",
    "MmrmInferenceError",
    "MmrmSpecError",
    "NonPositiveDefiniteStartError",
    "SingularDesignError",
    "UnknownMethodError",
]


class MmrmError(Exception):
    """Base class of every MMRM error."""


class _ProblemList(MmrmError, ValueError):
    """An error that reports every problem found, not only the first."""

    what = "input"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid MMRM {self.what} ({len(self.problems)} problem(s)):\n{lines}")


class MmrmSpecError(_ProblemList):
    """The model specification itself is invalid (checked when it is built)."""

    what = "specification"


class MmrmDataError(_ProblemList):
    """The data do not fit the specification (missing column, non-numeric outcome, ...)."""

    what = "data"


class EmptyVisitError(MmrmDataError):
    """A visit level has no observed outcome, so its variance cannot be estimated."""

    def __init__(self, visit: str, levels: Sequence[object]) -> None:
        self.visit = visit
        self.levels = tuple(levels)
        names = ", ".join(repr(v) for v in self.levels)
        super().__init__([f"visit {visit!r} level(s) {names} have no observed outcome"])


class DuplicateVisitError(MmrmDataError):
    """A subject has two rows for the same visit."""

    def __init__(self, subject: object, visit: object) -> None:
        self.subject = subject
        self.visit_level = visit
        super().__init__([f"subject {subject!r} has more than one row for visit {visit!r}"])


class SingularDesignError(MmrmError, ValueError):
    """The fixed-effects design matrix does not have full column rank."""

    def __init__(self, aliased: Sequence[str]) -> None:
        self.aliased = tuple(aliased)
        names = ", ".join(repr(a) for a in self.aliased)
        super().__init__(
            f"singular design: column(s) {names} are linear combinations of the columns "
            "before them (empty cells or collinear covariates)"
        )


class NonPositiveDefiniteStartError(MmrmError, ValueError):
    """The starting covariance matrix is not positive definite."""

    def __init__(self, source: str, smallest_eigenvalue: float) -> None:
        self.source = source
        self.smallest_eigenvalue = smallest_eigenvalue
        super().__init__(
            f"{source} starting covariance is not positive definite "
            f"(smallest eigenvalue {smallest_eigenvalue:.4g})"
        )


class ConvergenceError(MmrmError, RuntimeError):
    """The fit did not reach a maximum of the likelihood; lists each optimizer attempt
    (or the reason the end point is not a proper maximum)."""

    def __init__(self, attempts: Sequence[object]) -> None:
        self.attempts = tuple(attempts)
        lines = "\n".join(f"  - {a}" for a in self.attempts)
        super().__init__(f"the MMRM fit did not converge:\n{lines}")


class UnknownMethodError(MmrmError, ValueError):
    """A method name (covariance structure, df method, optimizer, ...) is not known."""

    def __init__(self, kind: str, name: object, known: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")


class MmrmInferenceError(MmrmError, ValueError):
    """A request for LS means, contrasts or tests that the fitted model cannot answer."""
