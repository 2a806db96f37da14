"""Analysis of covariance: LS means, differences from a reference arm, trend tests.

:func:`fit_ancova` fits a linear model with a categorical treatment and returns a frozen
:class:`AncovaResult`. Least-squares means follow emmeans (and SAS ``LSMEANS``): the model's
prediction averaged over a reference grid that holds every numeric covariate at its mean in
the analysed data and crosses the levels of every other factor, with equal weights (the
default, SAS ``LSMEANS``) or weights proportional to the observed frequency of each
combination (emmeans ``weights = "proportional"``, SAS ``OM``). Differences between arms do
not depend on the weights in a model without treatment interactions.

:func:`dose_response` is the other test of CDISC pilot Table 14-3.01: the dose entered as a
numeric covariate and its one-degree-of-freedom F test.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula
from scipy import stats

from trialdesk.stats.linear import (
    LinearModelFit,
    ModelSpecError,
    fit_linear_model,
    prepare_data,
)

__all__ = ["AncovaResult", "DoseResponseResult", "dose_response", "fit_ancova"]

WEIGHTS = ("equal", "proportional")


@dataclass(frozen=True)
class AncovaResult:
    """A fitted ANCOVA with its treatment comparisons.

    Attributes
    ----------
    model : LinearModelFit
        The underlying least-squares fit (coefficients, ``type3()``, covariance).
    treatment : str
        Name of the treatment column.
    levels : tuple
        Treatment levels in the order of ``lsmeans`` and ``pairwise()``.
    reference : object
        Reference level of ``differences``.
    weights : str
        ``"equal"`` or ``"proportional"`` weighting of the reference grid.
    lsmeans : pandas.DataFrame
        One row per level: ``level, estimate, se, df, lower, upper``.
    differences : pandas.DataFrame
        Each other level minus the reference: ``contrast, estimate, se, df, t, p, lower,
        upper``.
    lsmean_matrix : numpy.ndarray
        Rows ``L`` with ``L @ model.estimate`` = LS means, shape ``(levels, p)``.
    """

    model: LinearModelFit
    treatment: str
    levels: tuple[object, ...]
    reference: object
    weights: str
    lsmeans: pd.DataFrame
    differences: pd.DataFrame
    lsmean_matrix: np.ndarray = field(repr=False)

    def contrast(self, coefficients: Mapping[object, float], label: str) -> pd.DataFrame:
        """A linear contrast of the LS means, ``sum_a c_a * lsmean_a``.

        Parameters
        ----------
        coefficients : mapping
            Coefficient per treatment level (levels left out get 0).
        label : str
            Name of the contrast in the result.

        Returns
        -------
        pandas.DataFrame
            One row: ``contrast, estimate, se, df, t, p, lower, upper``.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2, 4, 5, 7, 8], "arm": list("ppttdd")})
        >>> fit = fit_ancova(df, "y ~ arm", treatment="arm", reference="p")
        >>> round(float(fit.contrast({"d": 1, "t": -1}, "d - t")["estimate"].iloc[0]), 9)
        3.0
        """
        unknown = [k for k in coefficients if k not in self.levels]
        if unknown:
            raise ModelSpecError(f"contrast names unknown level(s) {unknown} of {self.treatment!r}")
        c = np.array([float(coefficients.get(level, 0.0)) for level in self.levels])
        return self.model.contrast(c @ self.lsmean_matrix, [label])

    def pairwise(self) -> pd.DataFrame:
        """All pairwise differences ``levels[i] - levels[j]`` for ``i < j`` (unadjusted).

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2, 4, 5, 7, 8], "arm": list("ppttdd")})
        >>> fit = fit_ancova(df, "y ~ arm", treatment="arm", reference="p", levels=["d", "t", "p"])
        >>> fit.pairwise()["contrast"].tolist()
        ['d - t', 'd - p', 't - p']
        """
        tables = [
            self.contrast({a: 1.0, b: -1.0}, f"{a} - {b}")
            for a, b in itertools.combinations(self.levels, 2)
        ]
        return pd.concat(tables, ignore_index=True)

    def trend(self, scores: Mapping[object, float] | None = None) -> pd.DataFrame:
        """Linear trend across the treatment levels (dose-response contrast of LS means).

        The contrast coefficients are the centred scores, ``c_a = s_a - mean(s)``; the
        estimate is therefore on the scale of ``sum c_a * lsmean_a`` and its t test does not
        depend on how the scores are scaled.

        Parameters
        ----------
        scores : mapping, optional
            Dose (or rank) of each level, e.g. ``{"Pbo": 0, "Xan_Lo": 54, "Xan_Hi": 81}``.
            By default the levels are equally spaced in the order of ``levels``.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2, 4, 5, 7, 8], "dose": ["0", "0", "1", "1", "2", "2"]})
        >>> fit = fit_ancova(df, "y ~ dose", treatment="dose", reference="0")
        >>> round(float(fit.trend()["estimate"].iloc[0]), 9)
        6.0
        """
        if scores is None:
            scores = {level: float(i) for i, level in enumerate(self.levels)}
        missing = [level for level in self.levels if level not in scores]
        if missing:
            raise ModelSpecError(f"trend scores miss level(s) {missing} of {self.treatment!r}")
        s = np.array([float(scores[level]) for level in self.levels])
        if np.ptp(s) == 0:
            raise ModelSpecError(f"trend scores {dict(scores)} are all equal")
        centred = s - s.mean()
        return self.contrast(dict(zip(self.levels, centred, strict=True)), "linear trend")


def fit_ancova(
    data: pd.DataFrame,
    formula: str,
    *,
    treatment: str,
    reference: object | None = None,
    levels: Sequence[object] | None = None,
    weights: str = "equal",
    alpha: float = 0.05,
) -> AncovaResult:
    """Fit an ANCOVA and compare every treatment level with the reference.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject. Rows with a missing value in a model variable are dropped.
    formula : str
        e.g. ``"CHG ~ BASE + SITE + ARM"``. Numeric columns are covariates; string,
        boolean and categorical columns are factors. A numeric column to be used as a
        factor must be made categorical in the data (or listed in ``levels`` when it is the
        treatment).
    treatment : str
        The treatment column; it is always treated as a factor.
    reference : object, optional
        Level that the others are compared with; by default the first level.
    levels : sequence, optional
        Order of the treatment levels (the order of ``lsmeans`` and ``pairwise()``); by
        default a Categorical's order, else sorted.
    weights : {"equal", "proportional"}
        Weighting of other factors' levels in the LS means.
    alpha : float
        Two-sided level of the confidence intervals.

    Returns
    -------
    AncovaResult

    Raises
    ------
    MissingColumnError, NonNumericOutcomeError, SingularDesignError, ModelSpecError
        For a formula naming an absent column, a non-numeric outcome, an aliased design,
        a treatment absent from the formula or a reference that is not a level.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "CHG": [-1.0, -2.5, 0.5, -3.0, -4.0, -0.5, -2.0, -3.5],
    ...     "BASE": [6.0, 8, 7, 9, 10, 5, 7, 9],
    ...     "SITE": ["TLS", "TLS", "TLS", "TLS", "NCK", "NCK", "NCK", "NCK"],
    ...     "ARM": ["PBO", "DUPI", "DUPI", "PBO", "DUPI", "PBO", "DUPI", "DUPI"],
    ... })
    >>> fit = fit_ancova(df, "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO")
    >>> fit.differences[["contrast", "df"]].to_dict("records")
    [{'contrast': 'DUPI - PBO', 'df': 4}]
    """
    if weights not in WEIGHTS:
        raise ModelSpecError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if treatment not in Formula(formula).rhs.required_variables:
        raise ModelSpecError(f"treatment {treatment!r} does not occur in formula {formula!r}")
    order = _treatment_levels(data, treatment, levels)
    if reference is None:
        reference = order[0]
    if reference not in order:
        raise ModelSpecError(f"reference {reference!r} is not a level of {treatment!r}: {order}")
    model_order = [reference, *[level for level in order if level != reference]]
    prepared = prepare_data(data, formula, levels={treatment: model_order})
    model = fit_linear_model(prepared, alpha=alpha)
    _refuse_numeric_factor_expressions(model)
    lsmean_matrix = _lsmean_matrix(model, treatment, order, weights)
    lsmeans = model.contrast(lsmean_matrix, [str(level) for level in order])
    lsmeans = lsmeans.rename(columns={"contrast": "level"}).drop(columns=["t", "p"])
    lsmeans["level"] = list(order)
    ref_row = lsmean_matrix[order.index(reference)]
    others = [level for level in order if level != reference]
    differences = model.contrast(
        np.array([lsmean_matrix[order.index(level)] - ref_row for level in others]).reshape(
            len(others), -1
        ),
        [f"{level} - {reference}" for level in others],
    )
    return AncovaResult(
        model=model,
        treatment=treatment,
        levels=tuple(order),
        reference=reference,
        weights=weights,
        lsmeans=lsmeans,
        differences=differences,
        lsmean_matrix=lsmean_matrix,
    )


def _treatment_levels(
    data: pd.DataFrame, treatment: str, levels: Sequence[object] | None
) -> list[object]:
    if treatment not in data.columns:
        raise ModelSpecError(f"treatment column {treatment!r} not found in the data")
    if levels is not None:
        return list(levels)
    column = data[treatment].dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column)
        return [level for level in column.cat.categories if level in present]
    return sorted(column.unique().tolist())


def _refuse_numeric_factor_expressions(model: LinearModelFit) -> None:
    frame = model.data.frame
    for key, (kind, _state) in model.spec.encoder_state.items():
        if str(kind.value) != "categorical" or key in frame.columns:
            continue
        numeric = [
            v
            for v in Formula(f"y ~ {key}").rhs.required_variables
            if v in frame.columns and pd.api.types.is_numeric_dtype(frame[v])
        ]
        if numeric:
            raise ModelSpecError(
                f"factor expression {key!r} of numeric column(s) {numeric}: make the column "
                "categorical in the data so that LS means can average over its levels"
            )


def _lsmean_matrix(
    model: LinearModelFit, treatment: str, order: Sequence[object], weights: str
) -> np.ndarray:
    frame = model.data.frame
    factors = {k: v for k, v in model.data.factor_levels().items() if k != treatment}
    covariates = {
        name: float(col.mean())
        for name, col in frame.items()
        if name != model.data.outcome and name not in factors and name != treatment
    }
    names = list(factors)
    combos = list(itertools.product(*factors.values())) or [()]
    if weights == "equal" or not names:
        w = np.full(len(combos), 1.0 / len(combos))
    else:
        counts = frame.groupby(names, observed=False).size()
        w = np.array([counts.get(c if len(c) > 1 else c[0], 0) for c in combos], float)
        w /= w.sum()
    grid = pd.DataFrame(combos, columns=names) if names else pd.DataFrame(index=[0])
    for name in names:
        grid[name] = pd.Categorical(grid[name], categories=factors[name])
    for name, value in covariates.items():
        grid[name] = value
    treatment_levels = frame[treatment].cat.categories
    rows = []
    for level in order:
        grid[treatment] = pd.Categorical([level] * len(grid), categories=treatment_levels)
        rows.append(w @ model.design(grid))
    return np.array(rows)


@dataclass(frozen=True)
class DoseResponseResult:
    """The F test of a numeric dose in a linear model (CDISC pilot dose-response test).

    Attributes
    ----------
    slope, se : float
        Coefficient of the dose and its standard error.
    F : float
        ``(slope / se) ** 2``.
    num_df, den_df : int
        Degrees of freedom of the F test.
    p : float
        p value.
    model : LinearModelFit
        The fit, e.g. for ``model.type3()`` of the other terms.
    """

    slope: float
    se: float
    F: float
    num_df: int
    den_df: int
    p: float
    model: LinearModelFit = field(repr=False)


def dose_response(data: pd.DataFrame, formula: str, *, dose: str) -> DoseResponseResult:
    """Test a linear dose-response: the dose is a numeric term of ``formula``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    formula : str
        e.g. ``"CHG ~ TRTPN + SITEGR1 + BASE"`` with ``TRTPN`` the numeric dose.
    dose : str
        The numeric dose column.

    Returns
    -------
    DoseResponseResult

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2, 4, 5, 7, 9], "dose": [0, 0, 54, 54, 81, 81]})
    >>> result = dose_response(df, "y ~ dose", dose="dose")
    >>> result.num_df, result.den_df, result.p < 0.01
    (1, 4, True)
    """
    if dose not in Formula(formula).rhs.required_variables:
        raise ModelSpecError(f"dose {dose!r} does not occur in formula {formula!r}")
    if dose in data.columns and not pd.api.types.is_numeric_dtype(data[dose]):
        raise ModelSpecError(f"dose {dose!r} must be numeric, got dtype {data[dose].dtype}")
    model = fit_linear_model(data, formula)
    if dose not in model.names:
        raise ModelSpecError(f"dose {dose!r} must enter {formula!r} as a plain linear term")
    i = model.names.index(dose)
    slope = float(model.estimate[i])
    se = float(np.sqrt(model.vcov[i, i]))
    f_value = (slope / se) ** 2
    return DoseResponseResult(
        slope=slope,
        se=se,
        F=f_value,
        num_df=1,
        den_df=model.df_resid,
        p=float(stats.f.sf(f_value, 1, model.df_resid)),
        model=model,
    )
