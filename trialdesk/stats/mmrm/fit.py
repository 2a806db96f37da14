"""Fitting: data -> sufficient statistics -> optimizers -> state -> df engine -> result."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .covariance import CovarianceStructure, make_structure
from .data import prepare_data
from .df import build_df_engine
from .errors import MmrmDataError, NonPositiveDefiniteStartError
from .likelihood import LikelihoodObjective
from .optimizers import DEFAULT_OPTIMIZERS, Optimizer, resolve_optimizers, run_optimizers
from .patterns import PatternStatistics, reduce_to_patterns
from .result import MmrmFit
from .spec import MmrmSpec
from .state import build_model_state

__all__ = ["FallbackOptimizerWarning", "fit_mmrm", "fit_mmrm_spec", "moment_covariance"]


class FallbackOptimizerWarning(UserWarning):
    """The first optimizer failed and a fallback optimizer's result was accepted."""


def moment_covariance(stats: PatternStatistics) -> np.ndarray:
    """A positive definite moment estimate of the covariance from OLS residuals.

    Pairwise-available residual cross products, correlations shrunk towards zero until the
    smallest eigenvalue of the correlation matrix is at least 0.05.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> start = moment_covariance(fit.state.stats)
    >>> start.shape, bool(np.linalg.eigvalsh(start)[0] > 0)
    ((3, 3), True)
    """
    eye = stats.pair_masks * np.eye(stats.n_visits)
    a = stats.quad(eye)
    k = a.shape[0] - 1
    beta = np.linalg.lstsq(a[:k, :k], a[:k, k], rcond=None)[0]
    w = np.append(-beta, 1.0)
    cross = stats.contract(np.outer(w, w)[None])[0].sum(axis=0)
    pairs = np.einsum("p,pst->st", stats.counts.astype(float), stats.pair_masks)
    cov = np.divide(cross, pairs, out=np.zeros_like(cross), where=pairs > 0)
    var = np.diag(cov).copy()
    if np.any(var <= 0):
        raise MmrmDataError(["the outcome does not vary at some visit (zero residual variance)"])
    sd = np.sqrt(var)
    corr = np.clip(cov / np.outer(sd, sd), -0.99, 0.99)
    np.fill_diagonal(corr, 1.0)
    smallest = np.linalg.eigvalsh(corr)[0]
    if smallest < 0.05:
        shrink = (0.05 - smallest) / (1.0 - smallest)
        corr = (1 - shrink) * corr + shrink * np.eye(corr.shape[0])
    return corr * np.outer(sd, sd)


def _start_theta(
    stats: PatternStatistics, structure: CovarianceStructure, start: np.ndarray | None
) -> np.ndarray:
    if start is None:
        source, sigma = "automatic (moment)", moment_covariance(stats)
    else:
        source, sigma = "given", np.asarray(start, dtype=float)
        t = stats.n_visits
        if sigma.shape != (t, t):
            raise MmrmDataError([f"start must be {t} x {t} (one row per visit), got {sigma.shape}"])
    smallest = float(np.linalg.eigvalsh(sigma)[0])
    if smallest <= 0:
        raise NonPositiveDefiniteStartError(source, smallest)
    theta = structure.theta_from_covariance(sigma)
    if not np.all(np.isfinite(theta)):
        raise NonPositiveDefiniteStartError(source, smallest)
    return theta


def fit_mmrm_spec(data: pd.DataFrame, spec: MmrmSpec) -> MmrmFit:
    """Fit the MMRM described by ``spec`` to ``data``.

    See :func:`fit_mmrm` for the steps and errors.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import MmrmSpec, example_data
    >>> spec = MmrmSpec("y ~ arm * visit", subject="id", visit="visit", covariance="ar1h")
    >>> fit_mmrm_spec(example_data(), spec).covariance_parameters.round(2).tolist()
    [3.99, 5.72, 8.31, 0.56]
    """
    prepared = prepare_data(data, spec)
    stats = reduce_to_patterns(
        prepared.subject_codes,
        prepared.visit_codes,
        prepared.x,
        prepared.y,
        len(prepared.visits),
        subject_labels=prepared.subject_labels,
        visit_labels=prepared.visits,
    )
    structure = make_structure(spec.covariance, prepared.visits)
    reml = spec.method == "reml"
    objective = LikelihoodObjective(stats, structure, reml=reml)
    start = _start_theta(stats, structure, spec.start)
    theta, attempts = run_optimizers(resolve_optimizers(spec.optimizers), objective, start)
    if len(attempts) > 1:
        warnings.warn(
            "MMRM fallback optimizer used: " + "; ".join(str(a) for a in attempts),
            FallbackOptimizerWarning,
            stacklevel=2,
        )
    state = build_model_state(stats, structure, theta, reml=reml)
    theta.setflags(write=False)
    return MmrmFit(
        spec=spec,
        data=prepared,
        structure=structure,
        state=state,
        engine=build_df_engine(spec.df_method, state),
        theta=theta,
        attempts=attempts,
        n_evaluations=objective.n_evaluations,
    )


def fit_mmrm(
    data: pd.DataFrame,
    formula: str,
    *,
    subject: str,
    visit: str,
    covariance: str = "us",
    df_method: str = "satterthwaite",
    method: str = "reml",
    conf_level: float = 0.95,
    optimizers: Sequence[str | Optimizer] = DEFAULT_OPTIMIZERS,
    start: np.ndarray | None = None,
) -> MmrmFit:
    """Fit a mixed model for repeated measures (MMRM).

    The marginal model ``y_i ~ N(X_i beta, Sigma_i)`` where ``Sigma_i`` is the visit-by-visit
    covariance ``Sigma`` restricted to the visits subject ``i`` has, fitted by REML (default)
    or ML. Rows with a missing outcome are dropped (valid under missing at random).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject and visit.
    formula : str
        ``"outcome ~ fixed effects"``, e.g. ``"FEV1 ~ RACE + SEX + ARMCD * AVISIT"``.
    subject, visit : str
        Subject and visit columns. Visit levels follow a ``Categorical``'s order, otherwise
        sorted; other factors likewise, the first level being the reference.
    covariance : str
        ``us`` (default), ``cs``, ``csh``, ``ar1``, ``ar1h``, ``toep``, ``toeph``.
    df_method : str
        ``satterthwaite`` (default), ``kenward-roger`` (SAS ``ddfm=kr``, with the adjusted
        covariance of the estimates), ``kenward-roger-linear`` (SAS ``ddfm=kr(linear)``) or
        ``residual``.
    method : str
        ``reml`` (default) or ``ml``.
    conf_level : float
        Confidence level of intervals.
    optimizers : sequence of str or Optimizer
        Tried in order until one converges (default trust-region Newton with the exact
        Hessian, then L-BFGS-B, then BFGS); a fallback is reported in ``fit.attempts`` and
        by a :class:`FallbackOptimizerWarning`.
    start : array-like, optional
        Starting covariance matrix (visits x visits).

    Returns
    -------
    MmrmFit

    Raises
    ------
    MmrmSpecError
        Invalid arguments (all problems listed).
    MmrmDataError
        Missing column, non-numeric outcome, visit with one level, ... (all listed).
    EmptyVisitError, DuplicateVisitError, SingularDesignError
        Data that cannot identify the model.
    NonPositiveDefiniteStartError
        A starting covariance that is not positive definite.
    ConvergenceError
        When no optimizer converges (each attempt is listed).

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit",
    ...                df_method="kenward-roger")
    >>> round(fit.loglik, 3)
    -335.14
    >>> fit.coefficients.loc["arm[T.TRT]", ["estimate", "se", "df"]].round(3).tolist()
    [0.451, 0.539, 51.317]
    """
    spec = MmrmSpec(
        formula,
        subject=subject,
        visit=visit,
        covariance=covariance,
        df_method=df_method,
        method=method,
        conf_level=conf_level,
        optimizers=tuple(optimizers),
        start=start,
    )
    return fit_mmrm_spec(data, spec)
