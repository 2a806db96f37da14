"""Kenward-Roger adjusted covariance and degrees of freedom (Kenward and Roger, 1997).

The covariance of the estimates is inflated for the uncertainty of the variance
parameters,

    Phi_A = Phi + 2 Phi [ sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij / 4) ] Phi,

with ``P_i = X' dV^-1/dtheta_i X``, ``Q_ij = X' V^-1 D_i V^-1 D_j V^-1 X`` and
``R_ij = X' V^-1 (d2 V / dtheta_i dtheta_j) V^-1 X``; F tests use ``Phi_A``, a scale
``lambda`` and denominator df ``m`` from the approximation of the paper.

Variants (the ``R`` term is the only part that depends on the parametrization):

* ``"natural"``: second derivatives in the natural parameters, as SAS ``ddfm=kr`` (which for
  ``us``, ``cs`` and ``toep`` are linear, so ``R = 0``);
* ``"linear"``: ``R = 0`` always, SAS ``ddfm=kr(linear)`` and mmrm "Kenward-Roger-Linear";
* ``"unconstrained"``: second derivatives in the optimizer's parameters; for ``us`` these
  are mmrm's log-Cholesky parameters, reproducing mmrm's "Kenward-Roger".

For a single contrast the Kenward-Roger df reduce to the Satterthwaite formula (with the
unadjusted ``Phi``) and ``lambda = 1``: with ``A = g' W g / v^2`` the formulas of the paper
give ``m = 2 / A``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import MmrmInferenceError
from ..state import ModelState
from .base import FTest, TTests, wald_f

__all__ = ["KenwardRogerEngine", "adjusted_vcov", "build", "kr_df"]

Variant = Literal["natural", "linear", "unconstrained"]


def kr_df(
    vcov: np.ndarray, contrast: np.ndarray, theta_vcov: np.ndarray, p_mats: np.ndarray
) -> tuple[float, float]:
    """Denominator df ``m`` and scale ``lambda`` of the Kenward-Roger F test.

    Parameters
    ----------
    vcov : (k, k) unadjusted ``Phi``.
    contrast : (q, k) full row rank.
    theta_vcov : (n, n) ``W``.
    p_mats : (n, k, k) ``P_i``.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> state = fit.state
    >>> interaction = np.eye(6)[4:]
    >>> m, lam = kr_df(state.vcov, interaction, state.natural.covariance,
    ...                state.p_matrices(state.natural))
    >>> round(m, 2), round(lam, 4)
    (50.77, 0.9812)
    """
    q = contrast.shape[0]
    theta = contrast.T @ np.linalg.solve(contrast @ vcov @ contrast.T, contrast)
    x = theta @ vcov @ p_mats @ vcov  # (n, k, k)
    traces = np.trace(x, axis1=1, axis2=2)
    a1 = float(traces @ theta_vcov @ traces)
    a2 = float(np.einsum("ij,iab,jba->", theta_vcov, x, x))
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    denom = 3 * q + 2 - 2 * g
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    e_star = 1.0 / (1.0 - a2 / q)
    v_star = 2.0 / q * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
    rho = v_star / (2.0 * e_star**2)
    m = 4.0 + (q + 2) / (q * rho - 1)
    return m, m / (e_star * (m - 2))


def adjusted_vcov(state: ModelState, variant: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Phi_A``, the ``P_i`` and ``W`` of the chosen parametrization.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> adjusted, _, _ = adjusted_vcov(fit.state, "natural")
    >>> bool(np.all(np.diag(adjusted) > np.diag(fit.state.vcov)))
    True
    """
    param = state.unconstrained if variant == "unconstrained" else state.natural
    phi = state.vcov
    w = param.covariance
    d1 = param.d1
    p_mats = state.p_matrices(param)
    # sum_ij W_ij Q_ij = sum_p quad(U_p A_p U_p), A_p = sum_ij W_ij D_i U_p D_j
    wd = np.einsum("ij,ist,juv->stuv", w, d1, d1)
    a = np.einsum("stuv,ptu->psv", wd, state.u)
    q_sum = state.stats.quad(state.u @ a @ state.u)[:-1, :-1]
    p_sum = np.einsum("ij,iab,jbc->ac", w, p_mats @ phi, p_mats)
    inner = q_sum - p_sum
    if variant != "linear" and param.d2 is not None:
        r_sum = np.einsum(
            "ijst,stab->ab", np.einsum("ij,ijst->ijst", w, param.d2), state.x_sandwich
        )
        inner = inner - 0.25 * r_sum
    adjusted = phi + 2.0 * phi @ inner @ phi
    return 0.5 * (adjusted + adjusted.T), p_mats, w


@dataclass(frozen=True)
class KenwardRogerEngine:
    """Kenward-Roger tests: adjusted covariance, scaled F and approximate df."""

    beta: np.ndarray
    vcov: np.ndarray  # adjusted
    vcov_unadjusted: np.ndarray
    p_mats: np.ndarray
    theta_vcov: np.ndarray
    name: str = "kenward-roger"

    def _df_1d(self, contrasts: np.ndarray) -> np.ndarray:
        phi = self.vcov_unadjusted
        var = np.einsum("ri,ij,rj->r", contrasts, phi, contrasts)
        left = contrasts @ phi
        grad = -np.einsum("ri,nij,rj->rn", left, self.p_mats, left)
        denom = np.einsum("rn,nm,rm->r", grad, self.theta_vcov, grad)
        return 2.0 * var**2 / denom

    def t_tests(self, contrasts: np.ndarray) -> TTests:
        var = np.einsum("ri,ij,rj->r", contrasts, self.vcov, contrasts)
        return TTests(contrasts @ self.beta, np.sqrt(var), self._df_1d(contrasts))

    def f_test(self, contrast: np.ndarray) -> FTest:
        m, lam = kr_df(self.vcov_unadjusted, contrast, self.theta_vcov, self.p_mats)
        f = wald_f(self.beta, self.vcov, contrast)
        return FTest(contrast.shape[0], m, lam * f)


def build(state: ModelState, variant: Variant = "natural") -> KenwardRogerEngine:
    """The Kenward-Roger engine of a REML fit.

    Raises
    ------
    MmrmInferenceError
        For an ML fit (Kenward-Roger is defined for REML only).

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> build(fit.state).name, build(fit.state, "linear").name
    ('kenward-roger', 'kenward-roger-linear')
    """
    if not state.reml:
        raise MmrmInferenceError("Kenward-Roger degrees of freedom need a REML fit (method='reml')")
    adjusted, p_mats, w = adjusted_vcov(state, variant)
    name = {"natural": "kenward-roger", "linear": "kenward-roger-linear"}.get(
        variant, f"kenward-roger-{variant}"
    )
    return KenwardRogerEngine(state.beta, adjusted, state.vcov, p_mats, w, name)


def build_linear(state: ModelState) -> KenwardRogerEngine:
    """The linear Kenward-Roger engine (no second-derivative term).

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> build_linear(fit.state).name
    'kenward-roger-linear'
    """
    return build(state, "linear")
