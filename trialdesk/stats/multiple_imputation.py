"""Multiple imputation: Rubin's rules and the jump-to-reference analysis of an ANCOVA.

:func:`rubin_rules` pools ``m`` estimates of one quantity and their variances (Rubin 1987):
the mean estimate ``Q = mean(q_j)``, the within-imputation variance ``U = mean(u_j)``, the
between-imputation variance ``B = var(q_j)`` (divisor ``m - 1``) and the total variance
``T = U + (1 + 1/m) B``. The degrees of freedom of the t reference are either Rubin's
``(m - 1) / lambda**2`` with ``lambda = (1 + 1/m) B / T`` (``df_method="rubin"``), or Barnard
and Rubin's (1999) small-sample ``1 / (1/df_old + 1/df_obs)`` with
``df_obs = (df_com + 1) / (df_com + 3) * df_com * (1 - lambda)`` (``"barnard-rubin"``, the
default; it needs the complete-data df ``df_com`` and never exceeds it). With ``B = 0`` Rubin's
df is infinite and Barnard-Rubin's is ``df_obs``, as R's ``mice`` computes them.

:func:`jump_to_reference` is the reference-based sensitivity analysis of an ANCOVA of one
post-baseline outcome (Carpenter, Roger and Kenward 2013) with the treatment as a main effect:

1. **Imputation model**: the outcome regressed on the covariates (the ANCOVA's formula without
   the treatment) in the observed subjects of the reference arm, by least squares.
2. **Draws**: for each imputation ``j``, ``sigma_j**2 = RSS / chi2(df_r)`` and
   ``beta_j = beta_hat + sigma_j * C z`` with ``C C' = (X'X)^-1`` and ``z`` standard normal
   (the posterior under the usual non-informative prior), then each missing outcome, in *any*
   arm, is ``x_i beta_j + sigma_j * e_i``. In the reference arm this is imputation under MAR;
   in the other arms it is "jump to reference": after the last observation (here: baseline) a
   subject is assumed to behave like a reference subject with the same covariates.
3. **Analysis**: each completed data set is analysed by the ANCOVA of :func:`fit_ancova` (the
   same least squares, solved for all ``m`` outcome vectors at once), and the ``m`` differences
   of LS means and their variances are pooled by :func:`rubin_rules`.

Draws come from ``numpy.random.default_rng(seed)`` in a fixed order (chi-square, then
``z``, then the residuals, per imputation), so a seed gives the same result on every machine
that runs the same numpy. When no outcome is missing nothing is imputed, and the result is the
complete-data ANCOVA itself (its estimate, SE, residual df, interval and p value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula
from scipy import stats

from trialdesk.stats.ancova import AncovaResult, fit_ancova
from trialdesk.stats.linear import ModelSpecError, fit_linear_model

__all__ = [
    "DF_METHODS",
    "ImputationError",
    "PooledEstimate",
    "ReferenceImputationResult",
    "jump_to_reference",
    "rubin_rules",
]

DF_METHODS = ("barnard-rubin", "rubin")


class ImputationError(ModelSpecError):
    """Data or settings an imputation cannot work with; names the field and the value."""


@dataclass(frozen=True)
class PooledEstimate:
    """One quantity pooled over ``m`` imputations by Rubin's rules.

    Attributes
    ----------
    estimate, se : float
        ``Q`` and ``sqrt(T)``.
    df : float
        Degrees of freedom of the t reference (``inf`` for Rubin's df when ``B = 0``).
    t, p : float
        ``Q / se`` and its two-sided p value.
    lower, upper : float
        Confidence interval at ``1 - alpha``.
    m : int
        Number of imputations.
    within, between, total : float
        ``U``, ``B`` and ``T``.
    riv : float
        Relative increase in variance due to nonresponse, ``(1 + 1/m) B / U``.
    lambda_ : float
        Proportion of the total variance due to nonresponse, ``(1 + 1/m) B / T``.
    df_method : str
        ``"barnard-rubin"`` or ``"rubin"``.
    df_complete : float or None
        The complete-data df used by Barnard-Rubin.
    """

    estimate: float
    se: float
    df: float
    t: float
    p: float
    lower: float
    upper: float
    m: int
    within: float
    between: float
    total: float
    riv: float
    lambda_: float
    df_method: str
    df_complete: float | None
    alpha: float = 0.05


def rubin_rules(
    estimates: Sequence[float] | np.ndarray,
    variances: Sequence[float] | np.ndarray,
    *,
    df_complete: float | None = None,
    df_method: str = "barnard-rubin",
    alpha: float = 0.05,
) -> PooledEstimate:
    """Pool ``m`` estimates and their squared standard errors (rules in the module docstring).

    Parameters
    ----------
    estimates, variances : sequence of float
        ``q_j`` and ``u_j`` of each imputation, same length ``m >= 2``; variances ``>= 0``.
    df_complete : float, optional
        Degrees of freedom of the analysis had no data been missing (the residual df of the
        ANCOVA); required by ``"barnard-rubin"``, may be ``inf``.
    df_method : {"barnard-rubin", "rubin"}
    alpha : float
        Two-sided level of the interval.

    Raises
    ------
    ImputationError
        Fewer than two imputations, lengths that differ, a non-finite estimate, a negative or
        non-finite variance, an unknown ``df_method``, a missing or non-positive
        ``df_complete`` for Barnard-Rubin, or ``alpha`` outside (0, 1).

    Examples
    --------
    >>> pooled = rubin_rules([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], df_method="rubin")
    >>> pooled.estimate, round(pooled.total, 6), round(pooled.df, 5)
    (2.0, 1.833333, 3.78125)
    """
    q = np.asarray(estimates, float)
    u = np.asarray(variances, float)
    if df_method not in DF_METHODS:
        raise ImputationError(f"df_method: {df_method!r} is not one of {DF_METHODS}")
    if not 0 < alpha < 1:
        raise ImputationError(f"alpha: {alpha!r} must lie in (0, 1)")
    if q.ndim != 1 or u.shape != q.shape:
        raise ImputationError(
            f"variances: {u.shape[0] if u.ndim else u} value(s) for {q.size} estimate(s)"
        )
    m = q.size
    if m < 2:
        raise ImputationError(f"estimates: {m} imputation(s); Rubin's rules need at least 2")
    if not np.all(np.isfinite(q)):
        raise ImputationError(f"estimates: {float(q[~np.isfinite(q)][0])!r} is not finite")
    bad = ~np.isfinite(u) | (u < 0)
    if bad.any():
        raise ImputationError(
            f"variances: {float(u[bad][0])!r} is not a finite non-negative number"
        )
    if df_method == "barnard-rubin" and (df_complete is None or not df_complete > 0):
        raise ImputationError(f"df_complete: {df_complete!r} must be > 0 for Barnard-Rubin")
    estimate = float(q.mean())
    within = float(u.mean())
    between = float(q.var(ddof=1))
    total = within + (1 + 1 / m) * between
    riv = (1 + 1 / m) * between / within if within > 0 else math.inf
    lam = (1 + 1 / m) * between / total if total > 0 else 0.0
    df_old = (m - 1) / lam**2 if lam > 0 else math.inf
    if df_method == "rubin":
        df = df_old
    else:
        dfc = float(df_complete)  # type: ignore[arg-type]
        df_obs = (dfc + 1) / (dfc + 3) * dfc * (1 - lam) if math.isfinite(dfc) else math.inf
        if math.isinf(df_old):
            df = df_obs
        elif math.isinf(df_obs):
            df = df_old
        else:
            df = df_old * df_obs / (df_old + df_obs)
    se = math.sqrt(total)
    return _pooled(
        estimate=estimate,
        se=se,
        df=df,
        m=m,
        within=within,
        between=between,
        total=total,
        riv=riv,
        lam=lam,
        df_method=df_method,
        df_complete=df_complete,
        alpha=alpha,
    )


def _pooled(
    *,
    estimate: float,
    se: float,
    df: float,
    m: int,
    within: float,
    between: float,
    total: float,
    riv: float,
    lam: float,
    df_method: str,
    df_complete: float | None,
    alpha: float,
) -> PooledEstimate:
    dist = stats.norm if math.isinf(df) else stats.t(df)
    t = estimate / se if se > 0 else math.copysign(math.inf, estimate) if estimate else math.nan
    p = float(2 * dist.sf(abs(t))) if not math.isnan(t) else math.nan
    half = float(dist.ppf(1 - alpha / 2)) * se
    return PooledEstimate(
        estimate=estimate,
        se=se,
        df=float(df),
        t=float(t),
        p=p,
        lower=estimate - half,
        upper=estimate + half,
        m=m,
        within=within,
        between=between,
        total=total,
        riv=riv,
        lambda_=lam,
        df_method=df_method,
        df_complete=None if df_complete is None else float(df_complete),
        alpha=alpha,
    )


@dataclass(frozen=True)
class ReferenceImputationResult:
    """A jump-to-reference analysis: the pooled differences and what was imputed.

    Attributes
    ----------
    differences : pandas.DataFrame
        One row per non-reference level: ``contrast, estimate, se, df, t, p, lower, upper,
        riv, lambda`` (pooled; with nothing imputed, the complete-data ANCOVA's row with
        ``riv = lambda = 0``).
    pooled : dict
        The :class:`PooledEstimate` of each contrast (empty when nothing was imputed).
    m : int
        Number of imputations asked for (0 used when nothing was missing).
    seed : int
        Seed of the draws.
    n : int
        Subjects analysed (observed and imputed).
    n_imputed : dict
        Imputed outcomes per treatment level.
    n_excluded : int
        Rows left out because a covariate or the treatment is missing (they cannot be imputed
        conditionally on them).
    df_complete : int
        Residual df of the ANCOVA of the completed data.
    estimates, variances : numpy.ndarray
        Per-imputation differences and their variances, shape ``(m, contrasts)``.
    completed : numpy.ndarray
        The outcome of each analysed subject (rows in the order of the data, excluded rows
        left out) in each completed data set, shape ``(n, m)`` (``(n, 1)`` and ``(1, k)`` for
        ``estimates`` when nothing was imputed); observed values are unchanged.
    """

    differences: pd.DataFrame
    pooled: dict[str, PooledEstimate]
    m: int
    seed: int
    n: int
    n_imputed: dict[object, int]
    n_excluded: int
    df_complete: int
    df_method: str
    estimates: np.ndarray = field(repr=False)
    variances: np.ndarray = field(repr=False)
    completed: np.ndarray = field(repr=False)


def _imputation_formula(formula: str, treatment: str) -> tuple[str, list[str]]:
    """``"CHG ~ BASE + SITEID"`` from ``"CHG ~ BASE + SITEID + TRT01P"``, and its covariates."""
    if "~" not in formula:
        raise ImputationError(f"formula: {formula!r} has no '~' (expected 'outcome ~ terms')")
    parsed = Formula(formula)
    outcome = sorted(parsed.lhs.required_variables)
    if len(outcome) != 1:
        raise ImputationError(f"formula: {formula!r} must have exactly one outcome variable")
    terms = []
    for term in parsed.rhs:
        text = str(term)
        if text == treatment:
            continue
        if treatment in Formula(f"y ~ {text}").rhs.required_variables:
            raise ImputationError(
                f"formula: term {text!r} involves the treatment {treatment!r}; jump to "
                "reference needs the treatment as a main effect only"
            )
        if text != "1":
            terms.append(text)
    if len(terms) == len([t for t in parsed.rhs if str(t) != "1"]):
        raise ImputationError(f"formula: {formula!r} does not contain the treatment {treatment!r}")
    covariates = sorted(Formula(f"y ~ {' + '.join(terms) or '1'}").rhs.required_variables)
    return f"{outcome[0]} ~ {' + '.join(terms) or '1'}", covariates


def jump_to_reference(
    data: pd.DataFrame,
    formula: str,
    *,
    treatment: str,
    reference: object,
    m: int,
    seed: int,
    levels: Sequence[object] | None = None,
    df_method: str = "barnard-rubin",
    alpha: float = 0.05,
) -> ReferenceImputationResult:
    """Jump-to-reference multiple imputation of an ANCOVA (method in the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject of the population, the outcome missing (NaN) where not observed.
    formula : str
        The ANCOVA, e.g. ``"CHG ~ BASE + SITEID + TRT01P"``.
    treatment : str
        The treatment column (a main effect of ``formula``).
    reference : object
        The reference level, whose observed subjects give the imputation model.
    m : int
        Number of imputations (at least 2).
    seed : int
        Seed of ``numpy.random.default_rng``.
    levels : sequence, optional
        Order of the treatment levels (as :func:`fit_ancova`).
    df_method : {"barnard-rubin", "rubin"}
        Degrees of freedom of the pooled t reference.
    alpha : float
        Two-sided level of the intervals.

    Raises
    ------
    ImputationError
        ``m < 2``, an unknown ``df_method``, a formula with the treatment in an interaction, no
        reference subject with an observed outcome, an imputation model that cannot be fitted
        to them (fewer of them than its coefficients plus one, an aliased design), or a level
        of a factor covariate among the subjects to impute that no observed reference subject
        has.
    ModelSpecError
        As :func:`fit_ancova` (absent column, aliased design...).
    """
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 2:
        raise ImputationError(f"m: {m!r} imputations; at least 2 are needed")
    if df_method not in DF_METHODS:
        raise ImputationError(f"df_method: {df_method!r} is not one of {DF_METHODS}")
    impute_formula, covariates = _imputation_formula(formula, treatment)
    outcome = impute_formula.split("~")[0].strip()
    missing_columns = [c for c in [outcome, treatment, *covariates] if c not in data.columns]
    if missing_columns:
        raise ImputationError(f"data: no column {missing_columns[0]!r}")
    keep = data[[treatment, *covariates]].notna().all(axis=1)
    frame = data.loc[keep].reset_index(drop=True)
    n_excluded = int((~keep).sum())
    missing = frame[outcome].isna().to_numpy()
    ancova = {"treatment": treatment, "reference": reference, "levels": levels, "alpha": alpha}
    if not missing.any():
        fit = fit_ancova(frame, formula, **ancova)
        return _complete_data_result(
            fit, m=m, seed=seed, n=len(frame), n_excluded=n_excluded, df_method=df_method
        )

    observed_ref = frame.loc[~missing & (frame[treatment] == reference)]
    if observed_ref.empty:
        raise ImputationError(
            f"{treatment}: no subject of the reference {reference!r} has an observed {outcome}"
        )
    to_impute = frame.loc[missing]
    for name in covariates:
        if pd.api.types.is_numeric_dtype(frame[name]) and not isinstance(
            frame[name].dtype, pd.CategoricalDtype
        ):
            continue
        unseen = sorted(set(to_impute[name]) - set(observed_ref[name]), key=str)
        if unseen:
            raise ImputationError(
                f"{name}: {unseen[0]!r} has no observed {outcome} in the reference arm "
                f"{reference!r}, so it cannot be imputed from it"
            )
    try:
        model = fit_linear_model(observed_ref, impute_formula)
    except ModelSpecError as error:
        raise ImputationError(
            f"{treatment}: the imputation model {impute_formula!r} cannot be fitted to the "
            f"{len(observed_ref)} subject(s) of the reference {reference!r} with an observed "
            f"{outcome} ({error})"
        ) from None
    x_missing = model.design(to_impute)
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(model.vcov / model.sigma**2)
    completed = np.repeat(frame[outcome].to_numpy(float)[:, None], m, axis=1)
    for j in range(m):
        sigma = math.sqrt(model.rss / rng.chisquare(model.df_resid))
        beta = model.estimate + sigma * (chol @ rng.standard_normal(len(model.estimate)))
        completed[missing, j] = x_missing @ beta + sigma * rng.standard_normal(int(missing.sum()))

    first = frame.assign(**{outcome: completed[:, 0]})
    fit = fit_ancova(first, formula, **ancova)
    estimates, variances, labels = _analyse_all(fit, completed)
    pooled = {
        label: rubin_rules(
            estimates[:, k],
            variances[:, k],
            df_complete=fit.model.df_resid,
            df_method=df_method,
            alpha=alpha,
        )
        for k, label in enumerate(labels)
    }
    differences = pd.DataFrame(
        [
            {
                "contrast": label,
                "estimate": p.estimate,
                "se": p.se,
                "df": p.df,
                "t": p.t,
                "p": p.p,
                "lower": p.lower,
                "upper": p.upper,
                "riv": p.riv,
                "lambda": p.lambda_,
            }
            for label, p in pooled.items()
        ]
    )
    counts = frame.loc[missing, treatment].value_counts()
    return ReferenceImputationResult(
        differences=differences,
        pooled=pooled,
        m=m,
        seed=int(seed),
        n=len(frame),
        n_imputed={level: int(counts.get(level, 0)) for level in fit.levels},
        n_excluded=n_excluded,
        df_complete=fit.model.df_resid,
        df_method=df_method,
        estimates=estimates,
        variances=variances,
        completed=completed,
    )


def _analyse_all(
    fit: AncovaResult, completed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ANCOVA differences of every completed outcome vector (columns of ``completed``).

    The design does not depend on the outcome, so one QR decomposition serves every
    imputation: the estimates and variances equal those of :func:`fit_ancova` on each
    completed data set.
    """
    model = fit.model
    x = model.design(model.data.frame)
    q, r = np.linalg.qr(x)
    beta = np.linalg.solve(r, q.T @ completed)
    resid = completed - x @ beta
    sigma2 = (resid**2).sum(axis=0) / model.df_resid
    r_inv = np.linalg.solve(r, np.eye(r.shape[0]))
    xtx_inv = r_inv @ r_inv.T
    ref_row = fit.lsmean_matrix[fit.levels.index(fit.reference)]
    others = [level for level in fit.levels if level != fit.reference]
    contrast = np.array([fit.lsmean_matrix[fit.levels.index(lv)] - ref_row for lv in others])
    estimates = (contrast @ beta).T
    scale = np.einsum("kp,pq,kq->k", contrast, xtx_inv, contrast)
    variances = sigma2[:, None] * scale[None, :]
    return estimates, variances, [f"{level} - {fit.reference}" for level in others]


def _complete_data_result(
    fit: AncovaResult, *, m: int, seed: int, n: int, n_excluded: int, df_method: str
) -> ReferenceImputationResult:
    differences = fit.differences.copy()
    differences["riv"] = 0.0
    differences["lambda"] = 0.0
    estimates = differences["estimate"].to_numpy(float)[None, :]
    variances = (differences["se"].to_numpy(float) ** 2)[None, :]
    return ReferenceImputationResult(
        differences=differences,
        pooled={},
        m=m,
        seed=int(seed),
        n=n,
        n_imputed={level: 0 for level in fit.levels},
        n_excluded=n_excluded,
        df_complete=fit.model.df_resid,
        df_method=df_method,
        estimates=estimates,
        variances=variances,
        completed=fit.model.data.frame[fit.model.data.outcome].to_numpy(float)[:, None],
    )
