"""Ordinary least squares on a formula, the base of the ANCOVA and of the exact tests.

Data preparation (:func:`prepare_data`) and fitting (:func:`fit_linear_model`) are separate
steps: preparation validates the columns a formula names, keeps complete cases and fixes the
order of factor levels; fitting builds the design matrix with formulaic and solves the least
squares problem by a QR decomposition. The result is a frozen :class:`LinearModelFit` whose
inference methods (:meth:`LinearModelFit.contrast`, :meth:`LinearModelFit.type3`) use the
residual degrees of freedom, as R's ``lm`` and SAS PROC GLM do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from formulaic import Formula, ModelSpec, model_matrix
from scipy import stats

__all__ = [
    "LinearModelFit",
    "MissingColumnError",
    "ModelData",
    "ModelSpecError",
    "NonNumericOutcomeError",
    "SingularDesignError",
    "fit_linear_model",
    "prepare_data",
]

#: Names a formula may use besides the data's columns (``np.log(BASE)``).
FORMULA_CONTEXT: Mapping[str, object] = {"np": np}


class ModelSpecError(ValueError):
    """A model specification that cannot be fitted to the data given."""


class MissingColumnError(ModelSpecError):
    """The formula (or an argument) names columns the data does not have."""

    def __init__(self, columns: Sequence[str], available: Sequence[str]) -> None:
        self.columns = tuple(columns)
        names = ", ".join(repr(c) for c in self.columns)
        super().__init__(f"column(s) {names} not found in the data (columns: {list(available)})")


class NonNumericOutcomeError(ModelSpecError):
    """The outcome column is not numeric."""

    def __init__(self, column: str, dtype: object) -> None:
        self.column = column
        super().__init__(f"outcome {column!r} must be numeric, got dtype {dtype}")


class SingularDesignError(ModelSpecError):
    """The design matrix does not have full column rank."""

    def __init__(self, aliased: Sequence[str]) -> None:
        self.aliased = tuple(aliased)
        super().__init__(
            "singular design: column(s) "
            + ", ".join(repr(a) for a in self.aliased)
            + " are linear combinations of the columns before them"
        )


@dataclass(frozen=True)
class ModelData:
    """Complete cases of the variables a formula uses, ready for a design matrix.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per complete case, only the variables the formula uses. Non-numeric
        variables are ``Categorical`` with their levels in model order (unused levels removed).
    formula : str
        The formula, ``"outcome ~ terms"``.
    outcome : str
        Name of the outcome column.
    n_dropped : int
        Rows left out because one of the variables was missing.
    """

    frame: pd.DataFrame
    formula: str
    outcome: str
    n_dropped: int

    def factor_levels(self) -> dict[str, tuple[object, ...]]:
        """Levels of every categorical variable, in model order.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "arm": ["b", "a", "b"]})
        >>> prepare_data(df, "y ~ arm").factor_levels()
        {'arm': ('a', 'b')}
        """
        return {
            name: tuple(col.cat.categories)
            for name, col in self.frame.items()
            if isinstance(col.dtype, pd.CategoricalDtype)
        }


def _formula_variables(formula: str) -> tuple[list[str], list[str]]:
    """Outcome and right-hand-side variable names of a one-sided-left formula."""
    if "~" not in formula:
        raise ModelSpecError(f"formula {formula!r} has no '~' (expected 'outcome ~ terms')")
    parsed = Formula(formula)
    lhs = sorted(parsed.lhs.required_variables)
    rhs = sorted(parsed.rhs.required_variables - set(FORMULA_CONTEXT))
    if len(lhs) != 1:
        raise ModelSpecError(f"formula {formula!r} must have exactly one outcome variable")
    return lhs, rhs


def prepare_data(
    data: pd.DataFrame,
    formula: str,
    *,
    levels: Mapping[str, Sequence[object]] | None = None,
    extra: Sequence[str] = (),
) -> ModelData:
    """Validate the columns a formula names and keep complete cases.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation.
    formula : str
        Wilkinson formula, e.g. ``"CHG ~ BASE + SITE + ARM"``.
    levels : mapping, optional
        Level order of categorical variables (``{"ARM": ["PBO", "DUPI"]}``); the first level is
        the reference of treatment coding. Otherwise a pandas ``Categorical`` keeps its order
        and other non-numeric columns are sorted.
    extra : sequence of str
        Further columns to carry along (exposure, strata, order); they must exist and be
        complete too.

    Returns
    -------
    ModelData

    Raises
    ------
    MissingColumnError
        A column named by the formula, ``levels`` or ``extra`` is absent.
    NonNumericOutcomeError
        The outcome column is not numeric.
    ModelSpecError
        A level given in ``levels`` does not occur, or no complete case is left.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, None, 3.0, 4.0], "arm": ["T", "P", "P", "T"]})
    >>> prepared = prepare_data(df, "y ~ arm", levels={"arm": ["P", "T"]})
    >>> len(prepared.frame), prepared.n_dropped, prepared.factor_levels()["arm"]
    (3, 1, ('P', 'T'))
    """
    lhs, rhs = _formula_variables(formula)
    levels = dict(levels or {})
    wanted = list(dict.fromkeys([*lhs, *rhs, *extra, *levels]))
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise MissingColumnError(missing, list(data.columns))
    outcome = lhs[0]
    if not pd.api.types.is_numeric_dtype(data[outcome]) or pd.api.types.is_bool_dtype(
        data[outcome]
    ):
        raise NonNumericOutcomeError(outcome, data[outcome].dtype)
    frame = data.loc[:, wanted]
    complete = frame.notna().all(axis=1).to_numpy()
    frame = frame.loc[complete].reset_index(drop=True)
    if frame.empty:
        raise ModelSpecError(f"no complete case for the variables {wanted}")
    for name in wanted:
        if name in levels or not pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = _as_categorical(frame[name], levels.get(name))
    return ModelData(frame, formula, outcome, int((~complete).sum()))


def _as_categorical(column: pd.Series, order: Sequence[object] | None) -> pd.Series:
    if order is not None:
        order = list(order)
        present = set(column.astype(object))
        unknown = [v for v in order if v not in present]
        absent = sorted(str(v) for v in present if v not in set(order))
        if absent:
            raise ModelSpecError(
                f"{column.name!r} has value(s) {absent} missing from the levels {order}"
            )
        if unknown:
            raise ModelSpecError(f"level(s) {unknown} of {column.name!r} do not occur in the data")
        return pd.Series(pd.Categorical(column.astype(object), categories=order), name=column.name)
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.remove_unused_categories()
    return pd.Series(
        pd.Categorical(column.astype(object), categories=sorted(column.unique())), name=column.name
    )


@dataclass(frozen=True)
class LinearModelFit:
    """A fitted linear model, ``y = X b + e`` with iid normal errors.

    Attributes
    ----------
    data : ModelData
        The complete cases the model was fitted to.
    spec : formulaic.ModelSpec
        Design-matrix specification; builds rows for new data (reference grids).
    names : tuple of str
        Design-matrix column names.
    estimate : numpy.ndarray
        Coefficients, shape ``(p,)``.
    vcov : numpy.ndarray
        Covariance of the coefficients, ``sigma**2 (X'X)^-1``, shape ``(p, p)``.
    sigma : float
        Residual standard deviation.
    df_resid : int
        Residual degrees of freedom, ``n - p``.
    rss : float
        Residual sum of squares.
    alpha : float
        Two-sided level of the confidence intervals (0.05 gives 95 % intervals).
    """

    data: ModelData
    spec: ModelSpec = field(repr=False)
    names: tuple[str, ...]
    estimate: np.ndarray = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    sigma: float
    df_resid: int
    rss: float
    alpha: float = 0.05

    @property
    def n(self) -> int:
        """Number of observations used."""
        return len(self.data.frame)

    @property
    def coefficients(self) -> pd.DataFrame:
        """Estimate, se, df, t, p, lower, upper per design column.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.5], "x": [0.0, 1.0, 2.0, 3.0]})
        >>> round(float(fit_linear_model(df, "y ~ x").coefficients.loc["x", "estimate"]), 3)
        1.1
        """
        table = self.contrast(np.eye(len(self.names)), labels=self.names)
        return table.set_index("contrast").rename_axis("term")

    def design(self, newdata: pd.DataFrame) -> np.ndarray:
        """Design-matrix rows of new data (factor levels must be levels of the fit).

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.5], "x": [0.0, 1.0, 2.0, 3.0]})
        >>> fit_linear_model(df, "y ~ x").design(pd.DataFrame({"x": [10.0]}))
        array([[ 1., 10.]])
        """
        return np.asarray(self.spec.get_model_matrix(newdata, context=FORMULA_CONTEXT), float)

    def term_columns(self) -> dict[str, list[int]]:
        """Design-matrix columns of every formula term (``"1"`` is the intercept).

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5], "g": list("abcab")})
        >>> fit_linear_model(df, "y ~ g").term_columns()
        {'1': [0], 'g': [1, 2]}
        """
        return {str(term): list(idx) for term, idx in self.spec.term_indices.items()}

    def contrast(self, matrix: np.ndarray, labels: Sequence[str] | None = None) -> pd.DataFrame:
        """t tests and confidence intervals of linear functions ``L b``.

        Parameters
        ----------
        matrix : numpy.ndarray
            ``L``, shape ``(k, p)`` (or ``(p,)`` for one function).
        labels : sequence of str, optional
            Name of each row of ``L``.

        Returns
        -------
        pandas.DataFrame
            Columns ``contrast, estimate, se, df, t, p, lower, upper``.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.5], "x": [0.0, 1.0, 2.0, 3.0]})
        >>> fit = fit_linear_model(df, "y ~ x")
        >>> fit.contrast(np.array([1.0, 2.0]), ["at x=2"])[["estimate", "df"]]
           estimate  df
        0      3.05   2
        """
        lmat = np.atleast_2d(np.asarray(matrix, float))
        est = lmat @ self.estimate
        se = np.sqrt(np.einsum("ij,jk,ik->i", lmat, self.vcov, lmat))
        return t_table(est, se, self.df_resid, self.alpha, labels)

    def type3(self) -> pd.DataFrame:
        """F test of every term: all its columns zero (R ``drop1(fit, . ~ ., test = "F")``).

        For models without interactions this is the Type III test of SAS PROC GLM.

        Returns
        -------
        pandas.DataFrame
            Index: term; columns ``num_df, den_df, sum_sq, F, p``.

        Examples
        --------
        >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.5, 3.0], "x": [0.0, 1.0, 2.0, 3.0, 1.5]})
        >>> fit_linear_model(df, "y ~ x").type3()["num_df"].tolist()
        [1]
        """
        rows = []
        for term, cols in self.term_columns().items():
            if term == "1":
                continue
            b = self.estimate[cols]
            v = self.vcov[np.ix_(cols, cols)]
            wald = float(b @ np.linalg.solve(v, b))
            q = len(cols)
            f_value = wald / q
            rows.append(
                {
                    "term": term,
                    "num_df": q,
                    "den_df": self.df_resid,
                    "sum_sq": wald * self.sigma**2,
                    "F": f_value,
                    "p": float(stats.f.sf(f_value, q, self.df_resid)),
                }
            )
        return pd.DataFrame(rows).set_index("term")


def t_table(
    estimate: np.ndarray,
    se: np.ndarray,
    df: float,
    alpha: float,
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Estimates with t statistics, two-sided p values and ``1 - alpha`` intervals.

    Examples
    --------
    >>> table = t_table(np.array([2.0]), np.array([1.0]), 10, 0.05, ["d"])
    >>> table[["t", "p", "lower", "upper"]].round(3).to_dict("records")
    [{'t': 2.0, 'p': 0.073, 'lower': -0.228, 'upper': 4.228}]
    """
    estimate = np.asarray(estimate, float)
    se = np.asarray(se, float)
    t_value = estimate / se
    half = stats.t.ppf(1 - alpha / 2, df) * se
    labels = list(labels) if labels is not None else [str(i) for i in range(len(estimate))]
    return pd.DataFrame(
        {
            "contrast": labels,
            "estimate": estimate,
            "se": se,
            "df": df,
            "t": t_value,
            "p": 2 * stats.t.sf(np.abs(t_value), df),
            "lower": estimate - half,
            "upper": estimate + half,
        }
    )


def design_matrices(prepared: ModelData) -> tuple[np.ndarray, np.ndarray, ModelSpec]:
    """Outcome vector, design matrix and its specification for prepared data.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 4.0], "arm": ["a", "b", "b"]})
    >>> y, x, spec = design_matrices(prepare_data(df, "y ~ arm"))
    >>> x.tolist(), spec.column_names
    ([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], ('Intercept', 'arm[T.b]'))
    """
    matrices = model_matrix(prepared.formula, prepared.frame, context=FORMULA_CONTEXT)
    y = np.asarray(matrices.lhs, float).ravel()
    x = np.asarray(matrices.rhs, float)
    return y, x, matrices.rhs.model_spec


def _check_rank(r: np.ndarray, names: Sequence[str]) -> None:
    diag = np.abs(np.diag(r))
    tol = max(r.shape) * np.finfo(float).eps * (diag.max() if diag.size else 0.0) * 1e3
    aliased = [names[i] for i in np.flatnonzero(diag <= tol)]
    if aliased:
        raise SingularDesignError(aliased)


def fit_linear_model(
    data: pd.DataFrame | ModelData,
    formula: str | None = None,
    *,
    levels: Mapping[str, Sequence[object]] | None = None,
    alpha: float = 0.05,
) -> LinearModelFit:
    """Fit ``formula`` by ordinary least squares.

    Parameters
    ----------
    data : pandas.DataFrame or ModelData
        Raw data (then ``formula`` is required) or the result of :func:`prepare_data`.
    formula : str, optional
        Wilkinson formula, e.g. ``"CHG ~ TRTPN + SITEGR1 + BASE"``.
    levels : mapping, optional
        Level order of categorical variables (see :func:`prepare_data`).
    alpha : float
        Two-sided level of the confidence intervals.

    Returns
    -------
    LinearModelFit

    Raises
    ------
    SingularDesignError
        The design does not have full column rank.
    ModelSpecError
        No residual degree of freedom is left, or the input is invalid.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.5], "x": [0.0, 1.0, 2.0, 3.0]})
    >>> fit = fit_linear_model(df, "y ~ x")
    >>> fit.df_resid, round(fit.sigma, 4)
    (2, 0.4743)
    """
    if not 0 < alpha < 1:
        raise ModelSpecError(f"alpha must lie in (0, 1), got {alpha}")
    if isinstance(data, ModelData):
        prepared = data
    else:
        if formula is None:
            raise ModelSpecError("formula is required when data is a DataFrame")
        prepared = prepare_data(data, formula, levels=levels)
    y, x, spec = design_matrices(prepared)
    names = tuple(spec.column_names)
    n, p = x.shape
    q, r = np.linalg.qr(x)
    _check_rank(r, names)
    if n <= p:
        raise ModelSpecError(f"{n} complete case(s) for {p} coefficients: no residual df left")
    estimate = np.linalg.solve(r, q.T @ y)
    resid = y - x @ estimate
    rss = float(resid @ resid)
    df_resid = n - p
    sigma2 = rss / df_resid
    r_inv = np.linalg.solve(r, np.eye(p))
    vcov = sigma2 * (r_inv @ r_inv.T)
    return LinearModelFit(
        data=prepared,
        spec=spec,
        names=names,
        estimate=estimate,
        vcov=vcov,
        sigma=float(np.sqrt(sigma2)),
        df_resid=df_resid,
        rss=rss,
        alpha=alpha,
    )
