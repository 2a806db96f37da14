"""Everything the inference needs at the optimum, computed once after the fit.

:class:`ModelState` holds the GLS estimates, the covariance and, in two parametrizations
(:class:`VarianceParametrization`), the derivatives of the covariance matrix, the Hessian of
``-2 log L`` and the asymptotic covariance ``W`` of the variance parameters. The
degrees-of-freedom methods (:mod:`.df`) only read this object.

* ``natural``: the parameters SAS PROC MIXED uses (linear in the matrix for ``us``, ``cs``
  and ``toep``); Satterthwaite df and SAS's Kenward-Roger use these.
* ``unconstrained``: the optimizer's parameters (mmrm's log-Cholesky for ``us``).

Satterthwaite df and the linear Kenward-Roger adjustment are the same in both (first-order
quantities transform covariantly at the optimum); only the second-derivative term of the
Kenward-Roger adjustment depends on the parametrization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .covariance import CovarianceDerivatives, CovarianceStructure
from .errors import ConvergenceError
from .likelihood import (
    Evaluation,
    evaluate,
    hessian_tensor,
    parameter_gradient,
    parameter_hessian,
)
from .patterns import PatternStatistics

__all__ = ["ModelState", "VarianceParametrization", "build_model_state"]


@dataclass(frozen=True)
class VarianceParametrization:
    """Derivatives of the covariance and curvature of the likelihood in one parametrization.

    Attributes
    ----------
    names : tuple of str
    values : (n,) parameter values at the optimum.
    d1 : (n, T, T) first derivatives of the covariance matrix.
    d2 : (n, n, T, T) second derivatives, or ``None`` when the matrix is linear in them.
    gradient : (n,) gradient of ``-2 log L`` (zero at an interior optimum).
    hessian : (n, n) Hessian of ``-2 log L``.
    covariance : (n, n) ``W = 2 hessian^-1``, the asymptotic covariance of the parameters
        (inverse observed information, as mmrm and SAS use).
    """

    names: tuple[str, ...]
    values: np.ndarray
    d1: np.ndarray
    d2: np.ndarray | None
    gradient: np.ndarray
    hessian: np.ndarray
    covariance: np.ndarray


@dataclass(frozen=True)
class ModelState:
    """The fitted model's numerical state (see module docstring).

    Attributes
    ----------
    stats : PatternStatistics
    reml : bool
    beta : (k,) estimates.
    vcov : (k, k) ``Phi = (X' V^-1 X)^-1``, unadjusted covariance of ``beta``.
    sigma : (T, T) covariance matrix.
    u : (P, T, T) inverses of sigma per pattern (embedded).
    x_sandwich : (T, T, k, k) ``B_st = X' V^-1 E_st V^-1 X``.
    natural, unconstrained : VarianceParametrization
    minus2_loglik : float
    """

    stats: PatternStatistics
    reml: bool
    beta: np.ndarray
    vcov: np.ndarray
    sigma: np.ndarray
    u: np.ndarray
    x_sandwich: np.ndarray
    natural: VarianceParametrization
    unconstrained: VarianceParametrization
    minus2_loglik: float

    @property
    def n_obs(self) -> int:
        return self.stats.n_obs

    @property
    def n_beta(self) -> int:
        return self.beta.shape[0]

    def p_matrices(self, param: VarianceParametrization) -> np.ndarray:
        """``P_k = X' dV^-1/dtheta_k X = -X' V^-1 D_k V^-1 X``, (n, k, k)."""
        return -np.einsum("nst,stij->nij", param.d1, self.x_sandwich)

    def vcov_jacobian(self, param: VarianceParametrization) -> np.ndarray:
        """``dPhi/dtheta_k = -Phi P_k Phi``, (n, k, k)."""
        return -self.vcov @ self.p_matrices(param) @ self.vcov


def _parametrization(
    names: tuple[str, ...],
    values: np.ndarray,
    deriv: CovarianceDerivatives,
    ev: Evaluation,
    hessian4: np.ndarray,
) -> VarianceParametrization:
    hessian = parameter_hessian(hessian4, ev, deriv)
    eigenvalues = np.linalg.eigvalsh(hessian)
    if eigenvalues[0] <= 1e-10 * max(eigenvalues[-1], 1.0):
        raise ConvergenceError(
            [
                "the Hessian of -2 log L at the end point is not positive definite "
                f"(eigenvalues {eigenvalues[0]:.3g} .. {eigenvalues[-1]:.3g}): the variance "
                "parameters are not identified or lie on the boundary"
            ]
        )
    return VarianceParametrization(
        names=names,
        values=values,
        d1=deriv.d1,
        d2=deriv.d2,
        gradient=parameter_gradient(ev, deriv),
        hessian=hessian,
        covariance=2.0 * np.linalg.inv(hessian),
    )


def build_model_state(
    stats: PatternStatistics, structure: CovarianceStructure, theta: np.ndarray, *, reml: bool
) -> ModelState:
    """Compute the :class:`ModelState` at the fitted ``theta``.

    Raises
    ------
    ConvergenceError
        When the Hessian at ``theta`` is not positive definite.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> state = build_model_state(fit.state.stats, fit.structure, fit.theta, reml=True)
    >>> bool(np.isclose(state.minus2_loglik, -2 * fit.loglik)), state.natural.names[:2]
    (True, ('var(V1)', 'cov(V2,V1)'))
    """
    theta_deriv = structure.theta_derivatives(theta)
    ev = evaluate(stats, theta_deriv.sigma, reml=reml)
    hessian4, sandwich = hessian_tensor(stats, ev)
    natural = structure.natural(theta)
    k = ev.beta.shape[0]
    for array in (ev.beta, ev.vcov, ev.sigma, ev.u):
        array.setflags(write=False)
    return ModelState(
        stats=stats,
        reml=reml,
        beta=ev.beta,
        vcov=ev.vcov,
        sigma=ev.sigma,
        u=ev.u,
        x_sandwich=sandwich[:, :, :k, :k],
        natural=_parametrization(natural.names, natural.values, natural.derivatives, ev, hessian4),
        unconstrained=_parametrization(
            tuple(f"theta{i + 1}" for i in range(theta.size)),
            np.asarray(theta, dtype=float),
            theta_deriv,
            ev,
            hessian4,
        ),
        minus2_loglik=ev.value,
    )
