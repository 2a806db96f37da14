"""Event counts over varying exposure: Poisson and negative-binomial rate models.

NS-DUPI counts skin infections per subject over the time each subject was followed.
:func:`fit_rate_model` fits a log-linear model of the count with ``log(exposure)`` as an
offset, so that coefficients are log rate ratios, and reports the rate ratio of each arm
against the reference with a Wald interval, ``exp(b +/- z se)``.

* ``family="poisson"``: statsmodels GLM; the Pearson dispersion (chi-square / df) is
  reported so that overdispersion is seen.
* ``family="negative-binomial"``: NB2, ``Var(Y) = mu + dispersion * mu**2``, fitted by
  maximizing the profile likelihood over ``log(dispersion)`` with the regression part a
  statsmodels GLM at each value (the scheme of R's ``MASS::glm.nb``). When the maximum lies
  at the lower bound, or gains less than 1e-6 in log-likelihood over the Poisson fit, the
  data show no overdispersion (the maximum is at dispersion 0); the fit is then the Poisson
  fit and says so in ``messages``. Standard errors of the coefficients are the GLM's at the fitted
  dispersion (expected information, as ``glm.nb``); the coefficients and the dispersion are
  asymptotically independent in NB2.

Corticosteroid use (grams of cream) is a continuous outcome: analyse it with
:func:`trialdesk.stats.ancova.fit_ancova`, e.g. ``"GRAMS ~ BASE_GRAMS + SITE + ARM"``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

from trialdesk.stats.linear import ModelSpecError, design_matrices, prepare_data

__all__ = ["CountModelError", "RateModelResult", "fit_rate_model"]

FAMILIES = ("poisson", "negative-binomial")
#: Search interval of the NB2 dispersion.
DISPERSION_BOUNDS = (1e-8, 1e3)


class CountModelError(ValueError):
    """Invalid input to a count model."""


@dataclass(frozen=True)
class RateModelResult:
    """A fitted rate model.

    Attributes
    ----------
    family : str
        ``"poisson"`` or ``"negative-binomial"``.
    coefficients : pandas.DataFrame
        Log-scale coefficients: ``estimate, se, z, p, lower, upper`` by design column.
    rate_ratios : pandas.DataFrame
        Each other arm against the reference: ``contrast, ratio, lower, upper, p``.
    dispersion : float or None
        NB2 dispersion (None for Poisson).
    pearson_dispersion : float
        Pearson chi-square over residual df (about 1 when the variance is well modelled).
    loglik, aic : float
        Log-likelihood and AIC (the dispersion counts as a parameter for NB2).
    n : int
        Subjects analysed.
    converged : bool
        Whether the fit converged.
    messages : tuple of str
        Notes about the fit (dispersion at its bound, fallbacks).
    """

    family: str
    coefficients: pd.DataFrame
    rate_ratios: pd.DataFrame
    dispersion: float | None
    pearson_dispersion: float
    loglik: float
    aic: float
    n: int
    converged: bool
    messages: tuple[str, ...] = ()


def fit_rate_model(
    data: pd.DataFrame,
    formula: str,
    *,
    exposure: str,
    treatment: str,
    reference: object | None = None,
    levels: Sequence[object] | None = None,
    family: str = "poisson",
    alpha: float = 0.05,
) -> RateModelResult:
    """Fit a Poisson or negative-binomial model of counts with an exposure offset.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    formula : str
        e.g. ``"INFECTIONS ~ SITE + ARM"`` (the count on the left).
    exposure : str
        Column of follow-up time (> 0), in the unit rates are wanted in.
    treatment : str
        Treatment column (a factor of the formula).
    reference : object, optional
        Reference arm; default the first level.
    levels : sequence, optional
        Order of the treatment levels.
    family : {"poisson", "negative-binomial"}
        Error distribution.
    alpha : float
        Two-sided level of the intervals.

    Returns
    -------
    RateModelResult

    Raises
    ------
    CountModelError
        Negative or non-integer counts, non-positive exposure, unknown family.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "N": [0, 1, 0, 2, 1, 0, 3, 2, 4, 1, 2, 5],
    ...     "DAYS": [112.0, 110, 115, 98, 112, 113, 111, 112, 105, 112, 114, 112],
    ...     "ARM": ["DUPI"] * 6 + ["PBO"] * 6,
    ... })
    >>> fit = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM", reference="PBO")
    >>> row = fit.rate_ratios.iloc[0]
    >>> row["contrast"], round(float(row["ratio"]), 3)
    ('DUPI / PBO', 0.237)
    """
    if family not in FAMILIES:
        raise CountModelError(f"family must be one of {FAMILIES}, got {family!r}")
    if not 0 < alpha < 1:
        raise CountModelError(f"alpha must lie in (0, 1), got {alpha}")
    order = _levels(data, treatment, levels)
    reference = order[0] if reference is None else reference
    if reference not in order:
        raise ModelSpecError(f"reference {reference!r} is not a level of {treatment!r}: {order}")
    model_order = [reference, *[lv for lv in order if lv != reference]]
    prepared = prepare_data(data, formula, levels={treatment: model_order}, extra=[exposure])
    y, x, spec = design_matrices(prepared)
    _check_counts(y, prepared.outcome)
    time = prepared.frame[exposure].to_numpy(float)
    if (time <= 0).any():
        raise CountModelError(f"exposure {exposure!r} must be > 0, found {time.min()}")
    offset = np.log(time)
    names = list(spec.column_names)
    messages: list[str] = []
    if family == "poisson":
        glm = _glm(y, x, offset, sm.families.Poisson())
        dispersion, n_params = None, x.shape[1]
    else:
        glm, dispersion, note = _negative_binomial(y, x, offset)
        n_params = x.shape[1] + (1 if dispersion is not None else 0)
        if note:
            messages.append(note)
    coefficients = _wald_table(glm.params, glm.bse, names, alpha)
    columns = {str(t): list(i) for t, i in spec.term_indices.items()}.get(treatment, [])
    ratios = coefficients.iloc[columns].reset_index()
    with np.errstate(over="ignore"):
        ratios = pd.DataFrame(
            {
                "contrast": [f"{lv} / {reference}" for lv in model_order[1:]],
                "ratio": np.exp(ratios["estimate"]),
                "lower": np.exp(ratios["lower"]),
                "upper": np.exp(ratios["upper"]),
                "p": ratios["p"],
            }
        )
    events = pd.Series(np.asarray(y, float)).groupby(prepared.frame[treatment].to_numpy()).sum()
    empty = [lv for lv in model_order if events.get(lv, 0) == 0]
    if empty:
        # Separation: the log rate of an arm without events runs to -inf, so the fitted "ratio"
        # is wherever the optimiser stopped and its Wald CI and p mean nothing.
        for level in empty:
            messages.append(
                f"no events in {treatment}={level!r}: the rate ratio has no finite "
                "maximum-likelihood estimate (separation); it is reported as not estimable"
            )
        hit = [c for c, lv in zip(ratios.index, model_order[1:], strict=True) if lv in empty]
        if reference in empty:
            hit = list(ratios.index)
        ratios.loc[hit, ["ratio", "lower", "upper", "p"]] = math.nan
    loglik = float(glm.llf)
    return RateModelResult(
        family=family,
        coefficients=coefficients,
        rate_ratios=ratios,
        dispersion=dispersion,
        pearson_dispersion=float(glm.pearson_chi2 / glm.df_resid) if glm.df_resid else math.nan,
        loglik=loglik,
        aic=2 * n_params - 2 * loglik,
        n=len(y),
        converged=bool(glm.converged),
        messages=tuple(messages),
    )


def _levels(data: pd.DataFrame, treatment: str, levels: Sequence[object] | None) -> list[object]:
    if treatment not in data.columns:
        raise ModelSpecError(f"treatment column {treatment!r} not found in the data")
    if levels is not None:
        return list(levels)
    column = data[treatment].dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [lv for lv in column.cat.categories if lv in set(column)]
    return sorted(column.unique().tolist())


def _check_counts(y: np.ndarray, name: str) -> None:
    bad = y[(y < 0) | (y != np.round(y))]
    if bad.size:
        raise CountModelError(f"{name!r} must hold non-negative integer counts, found {bad[0]}")


def _glm(y: np.ndarray, x: np.ndarray, offset: np.ndarray, family: sm.families.Family):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, x, family=family, offset=offset).fit()


def _negative_binomial(
    y: np.ndarray, x: np.ndarray, offset: np.ndarray
) -> tuple[object, float | None, str | None]:
    def neg_profile(log_dispersion: float) -> float:
        family = sm.families.NegativeBinomial(alpha=math.exp(log_dispersion))
        return -float(_glm(y, x, offset, family).llf)

    lo, hi = (math.log(b) for b in DISPERSION_BOUNDS)
    best = optimize.minimize_scalar(
        neg_profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9}
    )
    poisson = _glm(y, x, offset, sm.families.Poisson())
    if best.x < lo + 1e-3 or -best.fun <= poisson.llf + 1e-6:
        note = (
            "negative-binomial dispersion at its lower bound (no overdispersion in the data): "
            "the fit is the Poisson fit"
        )
        return poisson, None, note
    dispersion = math.exp(best.x)
    glm = _glm(y, x, offset, sm.families.NegativeBinomial(alpha=dispersion))
    note = None
    if best.x > hi - 1e-3:
        note = f"negative-binomial dispersion at its upper bound {DISPERSION_BOUNDS[1]}"
    return glm, dispersion, note


def _wald_table(
    estimate: np.ndarray, se: np.ndarray, names: Sequence[str], alpha: float
) -> pd.DataFrame:
    estimate = np.asarray(estimate, float)
    se = np.asarray(se, float)
    z = estimate / se
    half = stats.norm.isf(alpha / 2) * se
    return pd.DataFrame(
        {
            "estimate": estimate,
            "se": se,
            "z": z,
            "p": 2 * stats.norm.sf(np.abs(z)),
            "lower": estimate - half,
            "upper": estimate + half,
        },
        index=pd.Index(list(names), name="term"),
    )
