"""Residual degrees of freedom: ``n_obs - rank(X)`` for every test (SAS ``ddfm=residual``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..state import ModelState
from .base import FTest, TTests, wald_f

__all__ = ["ResidualEngine", "build"]


@dataclass(frozen=True)
class ResidualEngine:
    """Wald tests with the model's residual degrees of freedom."""

    beta: np.ndarray
    vcov: np.ndarray
    df_residual: float
    name: str = "residual"

    def t_tests(self, contrasts: np.ndarray) -> TTests:
        var = np.einsum("ri,ij,rj->r", contrasts, self.vcov, contrasts)
        df = np.full(contrasts.shape[0], self.df_residual)
        return TTests(contrasts @ self.beta, np.sqrt(var), df)

    def f_test(self, contrast: np.ndarray) -> FTest:
        f = wald_f(self.beta, self.vcov, contrast)
        return FTest(contrast.shape[0], self.df_residual, f)


def build(state: ModelState) -> ResidualEngine:
    """The residual-df engine of a fitted model.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> build(fit.state).df_residual  # 157 observations, 6 coefficients
    151.0
    """
    return ResidualEngine(state.beta, state.vcov, float(state.n_obs - state.n_beta))
