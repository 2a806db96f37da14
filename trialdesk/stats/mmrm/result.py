"""The frozen result of an MMRM fit and its accessors.

Inference (tables of coefficients, LS means, contrasts, Type III tests) is computed on
request from the fitted state by the fit's degrees-of-freedom engine;
:meth:`MmrmFit.with_df_method` gives the same fit with another df method, without refitting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .covariance import CovarianceStructure
from .data import MmrmData
from .df import DfEngine, build_df_engine
from .inference import contrast_table, lsmeans_matrix, t_table, type3_table
from .optimizers import OptimizerAttempt
from .spec import MmrmSpec
from .state import ModelState

__all__ = ["MmrmFit"]


@dataclass(frozen=True)
class MmrmFit:
    """A fitted mixed model for repeated measures.

    Attributes
    ----------
    spec : MmrmSpec
        What was fitted.
    data : MmrmData
        The analysis data and model structure.
    structure : CovarianceStructure
    state : ModelState
        Estimates and derivatives at the optimum.
    engine : DfEngine
        The degrees-of-freedom method used for inference.
    theta : numpy.ndarray
        Unconstrained covariance parameters at the optimum.
    attempts : tuple of OptimizerAttempt
        Every optimizer tried, the accepted one last.
    n_evaluations : int
        Likelihood evaluations used by the optimizers.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> fit.n_subjects, fit.n_obs, fit.optimizer, fit.converged
    (59, 157, 'trust-exact', True)
    >>> fit.covariance.round(1)
         V1   V2   V3
    V1  3.7  1.9  2.6
    V2  1.9  5.8  5.3
    V3  2.6  5.3  9.3
    """

    spec: MmrmSpec
    data: MmrmData
    structure: CovarianceStructure
    state: ModelState
    engine: DfEngine
    theta: np.ndarray
    attempts: tuple[OptimizerAttempt, ...]
    n_evaluations: int

    # -- fit summary ------------------------------------------------------------------

    @property
    def loglik(self) -> float:
        """Log-likelihood at the optimum (REML or ML, as fitted)."""
        return -0.5 * self.state.minus2_loglik

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters."""
        return int(self.theta.size)

    @property
    def aic(self) -> float:
        """``-2 logL + 2 n_theta`` (as mmrm and SAS for REML)."""
        return self.state.minus2_loglik + 2 * self.n_theta

    @property
    def bic(self) -> float:
        """``-2 logL + n_theta log(n_subjects)``."""
        return self.state.minus2_loglik + self.n_theta * np.log(self.n_subjects)

    @property
    def n_obs(self) -> int:
        return self.state.n_obs

    @property
    def n_subjects(self) -> int:
        return self.state.stats.n_subjects

    @property
    def optimizer(self) -> str:
        """Name of the optimizer whose result was accepted."""
        return self.attempts[-1].optimizer

    @property
    def converged(self) -> bool:
        return self.attempts[-1].converged

    @property
    def fallback_used(self) -> bool:
        """Whether the first optimizer failed and a fallback was accepted."""
        return len(self.attempts) > 1

    @property
    def iterations(self) -> int:
        return self.attempts[-1].iterations

    @property
    def messages(self) -> tuple[str, ...]:
        """What happened on the way: dropped rows, optimizer attempts."""
        out = []
        if self.data.n_missing_outcome:
            out.append(f"{self.data.n_missing_outcome} row(s) with a missing outcome dropped")
        if self.data.n_incomplete:
            out.append(f"{self.data.n_incomplete} row(s) with a missing covariate dropped")
        out += [str(a) for a in self.attempts]
        return tuple(out)

    @property
    def df_method(self) -> str:
        return self.engine.name

    # -- estimates --------------------------------------------------------------------

    @property
    def covariance(self) -> pd.DataFrame:
        """Estimated covariance matrix, visits x visits in visit order."""
        labels = [str(v) for v in self.data.visits]
        return pd.DataFrame(self.state.sigma.copy(), index=labels, columns=labels)

    @property
    def correlation(self) -> pd.DataFrame:
        """Estimated correlation matrix, visits x visits."""
        cov = self.covariance
        sd = np.sqrt(np.diag(cov.to_numpy()))
        return cov / np.outer(sd, sd)

    @property
    def covariance_parameters(self) -> pd.Series:
        """Natural covariance parameters (as SAS reports them for the structure)."""
        return pd.Series(self.state.natural.values.copy(), index=list(self.state.natural.names))

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the estimates used for inference (Kenward-Roger adjusted for KR)."""
        names = list(self.data.column_names)
        return pd.DataFrame(self.engine.vcov.copy(), index=names, columns=names)

    @property
    def coefficients(self) -> pd.DataFrame:
        """Fixed effects: estimate, se, df, t, p, lower, upper (indexed by column name)."""
        k = self.state.n_beta
        labels = pd.DataFrame({"term": list(self.data.column_names)})
        table = t_table(self.engine, np.eye(k), labels, self.spec.conf_level)
        return table.set_index("term")

    # -- inference ----------------------------------------------------------------------

    def lsmeans(
        self,
        specs: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        *,
        weights: str = "equal",
    ) -> pd.DataFrame:
        """Least-squares means of ``specs`` within each level of ``by``.

        Predictions are averaged over the other factors with equal weights (emmeans default,
        SAS LSMEANS) or ``weights="proportional"`` (observed frequencies); numeric covariates
        are at their means.

        Returns
        -------
        pandas.DataFrame
            ``by`` and ``specs`` columns, then estimate, se, df, t, p, lower, upper.

        Examples
        --------
        >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
        >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
        >>> fit.lsmeans("arm", by="visit")[["visit", "arm", "estimate"]].round(2).head(2)
          visit  arm  estimate
        0    V1  PBO     10.14
        1    V1  TRT     10.59
        """
        frame, lmat = lsmeans_matrix(self.data, specs, by, weights)
        return t_table(self.engine, lmat, frame, self.spec.conf_level)

    def contrasts(
        self,
        specs: str,
        by: str | Sequence[str] | None = None,
        *,
        reference: object | None = None,
        weights: str = "equal",
    ) -> pd.DataFrame:
        """Differences of LS means of each level of ``specs`` from ``reference``.

        Returns
        -------
        pandas.DataFrame
            ``by`` columns, ``contrast`` (``"TRT - PBO"``), estimate, se, df, t, p, lower, upper.

        Examples
        --------
        >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
        >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
        >>> fit.contrasts("arm", by="visit", reference="PBO")[["visit", "contrast"]].tail(1)
          visit   contrast
        2    V3  TRT - PBO
        """
        return contrast_table(
            self.data,
            self.engine,
            specs,
            by,
            reference=reference,
            weights=weights,
            conf_level=self.spec.conf_level,
        )

    def type3(self) -> pd.DataFrame:
        """Type III F tests of each term: num_df, den_df, F, p (indexed by term).

        Examples
        --------
        >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
        >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
        >>> fit.type3().index.tolist(), fit.type3()["num_df"].tolist()
        (['arm', 'visit', 'arm:visit'], [1, 2, 2])
        """
        return type3_table(self.data, self.engine)

    def with_df_method(self, df_method: str) -> MmrmFit:
        """The same fit with inference by another degrees-of-freedom method (no refit).

        Examples
        --------
        >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
        >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
        >>> fit.with_df_method("kenward-roger").df_method
        'kenward-roger'
        """
        spec = dataclasses.replace(self.spec, df_method=df_method)
        return dataclasses.replace(
            self, spec=spec, engine=build_df_engine(spec.df_method, self.state)
        )

    def __repr__(self) -> str:
        return (
            f"MmrmFit({self.spec.formula!r}, covariance={self.spec.covariance!r}, "
            f"method={self.spec.method!r}, df_method={self.df_method!r}, "
            f"loglik={self.loglik:.4f}, n_subjects={self.n_subjects}, n_obs={self.n_obs})"
        )
