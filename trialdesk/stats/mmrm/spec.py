"""The MMRM specification: a frozen object that checks itself when built.

Every problem found is reported at once in one :class:`~.errors.MmrmSpecError`; checks that
need the data (columns, visit levels, outcome type) happen in :mod:`.data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from formulaic import Formula

from .covariance import COVARIANCE_STRUCTURES
from .df import DF_METHODS
from .errors import MmrmSpecError
from .optimizers import DEFAULT_OPTIMIZERS, OPTIMIZERS, Optimizer

__all__ = ["ESTIMATION_METHODS", "MmrmSpec"]

#: Estimation methods: restricted or full maximum likelihood.
ESTIMATION_METHODS = ("reml", "ml")


def _normalise(name: object) -> object:
    return name.strip().lower().replace("_", "-") if isinstance(name, str) else name


@dataclass(frozen=True)
class MmrmSpec:
    """What to fit: formula, subject and visit columns, covariance, df and estimation method.

    Parameters
    ----------
    formula : str
        ``"outcome ~ terms"`` (formulaic syntax); the outcome must be a column name.
    subject, visit : str
        Columns identifying the subject and the visit (the repeated factor).
    covariance : str
        Covariance structure: ``us``, ``cs``, ``csh``, ``ar1``, ``ar1h``, ``toep``, ``toeph``.
    df_method : str
        ``satterthwaite``, ``kenward-roger``, ``kenward-roger-linear`` or ``residual``.
    method : str
        ``reml`` or ``ml``.
    conf_level : float
        Confidence level of the intervals.
    optimizers : sequence of str or Optimizer
        Tried in order until one converges.
    start : array-like, optional
        Starting covariance matrix (visits x visits, in visit order); by default a
        moment estimate from ordinary least squares residuals.

    Raises
    ------
    MmrmSpecError
        Listing every problem of the specification.

    Examples
    --------
    >>> spec = MmrmSpec("FEV1 ~ ARMCD * AVISIT", subject="USUBJID", visit="AVISIT",
    ...                 df_method="Kenward_Roger")
    >>> spec.outcome, spec.rhs, spec.df_method
    ('FEV1', 'ARMCD * AVISIT', 'kenward-roger')
    >>> MmrmSpec("FEV1 ~ ARMCD", subject="USUBJID", visit="AVISIT", covariance="un",
    ...          method="ml", df_method="kenward-roger")
    Traceback (most recent call last):
    ...
    trialdesk.stats.mmrm.errors.MmrmSpecError: invalid MMRM specification (2 problem(s)):
      - covariance 'un' is not one of us, cs, csh, ar1, ar1h, toep, toeph
      - df_method 'kenward-roger' needs method='reml', got 'ml'
    """

    formula: str
    subject: str
    visit: str
    covariance: str = "us"
    df_method: str = "satterthwaite"
    method: str = "reml"
    conf_level: float = 0.95
    optimizers: tuple[str | Optimizer, ...] = DEFAULT_OPTIMIZERS
    start: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("covariance", "df_method", "method"):
            object.__setattr__(self, name, _normalise(getattr(self, name)))
        if isinstance(self.optimizers, str) or not isinstance(self.optimizers, Sequence):
            object.__setattr__(self, "optimizers", (self.optimizers,))
        else:
            object.__setattr__(self, "optimizers", tuple(self.optimizers))
        if self.start is not None:
            start = np.array(self.start, dtype=float)
            start.setflags(write=False)
            object.__setattr__(self, "start", start)
        problems = self.problems()
        if problems:
            raise MmrmSpecError(problems)

    @property
    def outcome(self) -> str:
        """The outcome column (left of ``~``)."""
        return self.formula.split("~", 1)[0].strip()

    @property
    def rhs(self) -> str:
        """The fixed-effects terms (right of ``~``; ``"1"`` when empty)."""
        return self.formula.split("~", 1)[1].strip() or "1"

    @cached_property
    def rhs_formula(self) -> Formula:
        """The parsed right-hand side."""
        return Formula(self.rhs)

    def problems(self) -> list[str]:
        """Every problem of the specification (empty when valid)."""
        problems = self._formula_problems()
        for name in ("subject", "visit"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                problems.append(f"{name} must be a column name, got {value!r}")
        if self.subject == self.visit:
            problems.append(f"subject and visit must be different columns, both are {self.visit!r}")
        if self.covariance not in COVARIANCE_STRUCTURES:
            problems.append(
                f"covariance {self.covariance!r} is not one of {', '.join(COVARIANCE_STRUCTURES)}"
            )
        if self.df_method not in DF_METHODS:
            problems.append(f"df_method {self.df_method!r} is not one of {', '.join(DF_METHODS)}")
        if self.method not in ESTIMATION_METHODS:
            problems.append(f"method {self.method!r} is not one of {', '.join(ESTIMATION_METHODS)}")
        elif self.method == "ml" and str(self.df_method).startswith("kenward-roger"):
            problems.append(f"df_method {self.df_method!r} needs method='reml', got 'ml'")
        if not isinstance(self.conf_level, float | int) or not 0 < self.conf_level < 1:
            problems.append(f"conf_level must be between 0 and 1, got {self.conf_level!r}")
        problems += self._optimizer_problems()
        if self.start is not None and (
            self.start.ndim != 2
            or self.start.shape[0] != self.start.shape[1]
            or not np.all(np.isfinite(self.start))
            or not np.allclose(self.start, self.start.T)
        ):
            problems.append(f"start must be a finite symmetric square matrix, got {self.start!r}")
        return problems

    def _formula_problems(self) -> list[str]:
        if not isinstance(self.formula, str) or self.formula.count("~") != 1:
            return [f"formula must be a string 'outcome ~ terms', got {self.formula!r}"]
        outcome = self.outcome
        if not outcome or any(ch in outcome for ch in "()+*:|^/`"):
            return [f"formula outcome must be a single column name, got {outcome!r}"]
        try:
            self.rhs_formula  # noqa: B018 - parsing is the check
        except Exception as exc:  # formulaic raises several syntax error types
            return [f"formula right-hand side {self.rhs!r} does not parse: {exc}"]
        return []

    def _optimizer_problems(self) -> list[str]:
        if not self.optimizers:
            return ["optimizers must name at least one optimizer"]
        problems = []
        for o in self.optimizers:
            if isinstance(o, str):
                if o not in OPTIMIZERS:
                    problems.append(f"optimizer {o!r} is not one of {', '.join(OPTIMIZERS)}")
            elif not isinstance(o, Optimizer):
                problems.append(f"optimizer {o!r} has no name and minimize method")
        return problems
