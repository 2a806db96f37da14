"""Optimizers for the covariance parameters, tried in order until one converges.

An optimizer is any object with a ``name`` and a ``minimize(objective, start)`` method
returning an :class:`OptimizerOutcome`; the built-in ones wrap :func:`scipy.optimize.minimize`.
:func:`run_optimizers` tries them in turn and accepts the first whose end point has a
small gradient, whatever the optimizer itself says (a trust-region method may stop with a
"failure" message when it can no longer improve the value at machine precision, which is
the optimum). Every attempt is recorded, so a fallback is always reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import optimize

from .errors import ConvergenceError, UnknownMethodError

__all__ = [
    "DEFAULT_OPTIMIZERS",
    "GRADIENT_TOLERANCE",
    "OPTIMIZERS",
    "Objective",
    "Optimizer",
    "OptimizerAttempt",
    "OptimizerOutcome",
    "ScipyOptimizer",
    "resolve_optimizers",
    "run_optimizers",
]

#: Largest absolute gradient of ``-log L`` accepted at a converged point.
GRADIENT_TOLERANCE = 1e-3


class Objective(Protocol):
    """What an optimizer sees: ``-log L`` with gradient and Hessian."""

    def fun(self, theta: np.ndarray) -> float: ...

    def jac(self, theta: np.ndarray) -> np.ndarray: ...

    def hess(self, theta: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class OptimizerOutcome:
    """Where an optimizer stopped and what it said."""

    theta: np.ndarray
    success: bool
    iterations: int
    message: str


@runtime_checkable
class Optimizer(Protocol):
    """A minimizer of the objective from a starting point."""

    name: str

    def minimize(self, objective: Objective, start: np.ndarray) -> OptimizerOutcome: ...


@dataclass(frozen=True)
class ScipyOptimizer:
    """A :func:`scipy.optimize.minimize` method using the analytic gradient (and Hessian)."""

    name: str
    method: str
    uses_hessian: bool = False
    options: dict[str, object] = field(default_factory=dict)

    def minimize(self, objective: Objective, start: np.ndarray) -> OptimizerOutcome:
        kwargs: dict[str, object] = {"jac": objective.jac, "options": dict(self.options)}
        if self.uses_hessian:
            kwargs["hess"] = objective.hess
        res = optimize.minimize(objective.fun, start, method=self.method, **kwargs)
        return OptimizerOutcome(
            np.asarray(res.x, dtype=float), bool(res.success), int(res.nit), str(res.message)
        )


#: Built-in optimizers by name.
OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        ScipyOptimizer("trust-exact", "trust-exact", True, {"gtol": 1e-8, "maxiter": 200}),
        ScipyOptimizer(
            "l-bfgs-b", "L-BFGS-B", False, {"gtol": 1e-9, "ftol": 1e-15, "maxiter": 2000}
        ),
        ScipyOptimizer("bfgs", "BFGS", False, {"gtol": 1e-6, "maxiter": 2000}),
        ScipyOptimizer("newton-cg", "Newton-CG", True, {"xtol": 1e-10, "maxiter": 500}),
    )
}

#: Tried in this order unless the specification says otherwise.
DEFAULT_OPTIMIZERS: tuple[str, ...] = ("trust-exact", "l-bfgs-b", "bfgs")


@dataclass(frozen=True)
class OptimizerAttempt:
    """One optimizer's try: its name, whether it was accepted, and why."""

    optimizer: str
    converged: bool
    iterations: int
    message: str
    max_abs_gradient: float
    neg_loglik: float

    def __str__(self) -> str:
        status = "converged" if self.converged else "failed"
        return (
            f"{self.optimizer}: {status} after {self.iterations} iterations "
            f"(-logL {self.neg_loglik:.6f}, max |gradient| {self.max_abs_gradient:.2g}): "
            f"{self.message}"
        )


def resolve_optimizers(optimizers: Sequence[str | Optimizer]) -> tuple[Optimizer, ...]:
    """Optimizer objects for names or objects.

    Examples
    --------
    >>> [o.name for o in resolve_optimizers(["trust-exact", "bfgs"])]
    ['trust-exact', 'bfgs']
    """
    out = []
    for o in optimizers:
        if isinstance(o, str):
            if o not in OPTIMIZERS:
                raise UnknownMethodError("optimizer", o, list(OPTIMIZERS))
            out.append(OPTIMIZERS[o])
        else:
            out.append(o)
    return tuple(out)


def _attempt(
    optimizer: Optimizer, objective: Objective, start: np.ndarray
) -> tuple[OptimizerAttempt, np.ndarray | None]:
    try:
        outcome = optimizer.minimize(objective, start)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return OptimizerAttempt(optimizer.name, False, 0, f"raised {exc!r}", np.inf, np.inf), None
    theta = outcome.theta
    value = objective.fun(theta)
    if not np.isfinite(value):
        grad_max = np.inf
    else:
        grad_max = float(np.max(np.abs(objective.jac(theta)), initial=0.0))
    converged = bool(np.isfinite(value) and grad_max <= GRADIENT_TOLERANCE)
    message = outcome.message
    if not converged and outcome.success:
        message += " (but the gradient is not small)"
    attempt = OptimizerAttempt(
        optimizer.name, converged, outcome.iterations, message, grad_max, float(value)
    )
    return attempt, theta if converged else None


def run_optimizers(
    optimizers: Sequence[Optimizer], objective: Objective, start: np.ndarray
) -> tuple[np.ndarray, tuple[OptimizerAttempt, ...]]:
    """Minimize with each optimizer in turn from ``start`` until one converges.

    Returns
    -------
    theta : numpy.ndarray
        The accepted end point.
    attempts : tuple of OptimizerAttempt
        Every attempt, the accepted one last.

    Raises
    ------
    ConvergenceError
        When no optimizer converges.

    Examples
    --------
    >>> class Quadratic:
    ...     def fun(self, x): return float(((x - 1.0) ** 2).sum())
    ...     def jac(self, x): return 2.0 * (x - 1.0)
    ...     def hess(self, x): return 2.0 * np.eye(x.size)
    >>> theta, attempts = run_optimizers(resolve_optimizers(["bfgs"]), Quadratic(), np.zeros(2))
    >>> theta.round(6).tolist(), attempts[-1].converged
    ([1.0, 1.0], True)
    """
    attempts = []
    for optimizer in optimizers:
        attempt, theta = _attempt(optimizer, objective, start)
        attempts.append(attempt)
        if theta is not None:
            return theta, tuple(attempts)
    raise ConvergenceError(attempts)
