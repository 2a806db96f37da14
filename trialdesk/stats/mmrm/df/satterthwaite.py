"""Satterthwaite degrees of freedom (SAS ``ddfm=satterthwaite``, mmrm "Satterthwaite").

For a contrast ``l``, with ``v = l' Phi l`` and ``g_k = l' dPhi/dtheta_k l``,
``df = 2 v^2 / (g' W g)`` where ``W`` is the asymptotic covariance of the variance
parameters. For a q-row contrast the rows are first rotated to the eigenvectors of
``L Phi L'``; each rotated row gets its own df ``nu_m`` and the denominator df is
``2 E / (E - q)`` with ``E = sum nu_m / (nu_m - 2)``, as SAS and mmrm compute it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..state import ModelState
from .base import FTest, TTests

__all__ = ["SatterthwaiteEngine", "build", "combine_df"]


def combine_df(nu: np.ndarray) -> float:
    """Denominator df of a q-dimensional test from the q one-dimensional dfs.

    Equal dfs give their common value; any df at most 2 gives 2.

    Examples
    --------
    >>> round(combine_df(np.array([10.0, 20.0])), 4)
    13.0769
    """
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < np.sqrt(np.finfo(float).eps)):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - nu.size)


@dataclass(frozen=True)
class SatterthwaiteEngine:
    """Satterthwaite tests with the unadjusted covariance of the estimates."""

    beta: np.ndarray
    vcov: np.ndarray
    vcov_jacobian: np.ndarray  # (n, k, k) dPhi/dtheta
    theta_vcov: np.ndarray  # (n, n) W
    name: str = "satterthwaite"

    def df(self, contrasts: np.ndarray) -> np.ndarray:
        """Satterthwaite df of each row of ``contrasts`` (r, k)."""
        var = np.einsum("ri,ij,rj->r", contrasts, self.vcov, contrasts)
        grad = np.einsum("ri,nij,rj->rn", contrasts, self.vcov_jacobian, contrasts)
        denom = np.einsum("rn,nm,rm->r", grad, self.theta_vcov, grad)
        return 2.0 * var**2 / denom

    def t_tests(self, contrasts: np.ndarray) -> TTests:
        var = np.einsum("ri,ij,rj->r", contrasts, self.vcov, contrasts)
        return TTests(contrasts @ self.beta, np.sqrt(var), self.df(contrasts))

    def f_test(self, contrast: np.ndarray) -> FTest:
        cov = contrast @ self.vcov @ contrast.T
        values, vectors = np.linalg.eigh(cov)
        values, vectors = values[::-1], vectors[:, ::-1]
        rank = int(np.sum(values > max(np.sqrt(np.finfo(float).eps) * values[0], 0.0)))
        rotated = vectors[:, :rank].T @ contrast
        t2 = (rotated @ self.beta) ** 2 / values[:rank]
        nu = self.df(rotated)
        return FTest(rank, combine_df(nu), float(t2.sum() / rank))


def build(state: ModelState) -> SatterthwaiteEngine:
    """The Satterthwaite engine of a fitted model (natural parametrization).

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> build(fit.state).t_tests(np.eye(6)[:1]).df.round(2)
    array([50.94])
    """
    param = state.natural
    return SatterthwaiteEngine(state.beta, state.vcov, state.vcov_jacobian(param), param.covariance)
