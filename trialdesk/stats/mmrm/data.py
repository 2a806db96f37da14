"""Data preparation: validate the data against a specification and build the design.

* Every problem with the columns is reported at once (:class:`~.errors.MmrmDataError`): a
  column the formula, subject or visit names that is missing, a non-numeric outcome, a visit
  with fewer than two levels.
* Rows with a missing outcome are dropped (the likelihood is then valid under missing at
  random), as are rows with a missing covariate (complete cases).
* Visit levels follow a ``pandas.Categorical``'s categories, otherwise the sorted values;
  a level without any observed outcome is an :class:`~.errors.EmptyVisitError`.
* Other factors: a ``Categorical`` keeps its category order (unused categories removed),
  other non-numeric columns are sorted; the first level is the reference (treatment coding).
* The design matrix comes from formulaic; a rank-deficient design is a
  :class:`~.errors.SingularDesignError` naming the aliased columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import ModelSpec, model_matrix

from .errors import EmptyVisitError, MmrmDataError, SingularDesignError
from .spec import MmrmSpec

__all__ = ["FORMULA_CONTEXT", "MmrmData", "ModelTerm", "prepare_data"]

#: Names a formula may use besides the data's columns (``np.log(BASE)``).
FORMULA_CONTEXT: Mapping[str, object] = {"np": np}


@dataclass(frozen=True)
class ModelTerm:
    """A term of the fixed effects: its columns and the variables it involves."""

    name: str
    columns: tuple[int, ...]
    factors: tuple[str, ...]
    covariates: tuple[str, ...]


@dataclass(frozen=True)
class MmrmData:
    """The analysis data: design, outcome, subject and visit codes, and model structure.

    Attributes
    ----------
    x : (n, k) design matrix; y : (n,) outcome.
    subject_codes : (n,) codes into ``subject_labels``.
    visit_codes : (n,) codes into ``visits`` (the visit levels in order).
    column_names : names of the design columns.
    terms : the model terms (without the intercept).
    model_spec : the formulaic model spec (to build design rows for new data).
    factor_levels : levels of each factor of the formula, in model order.
    numeric_factors : factors coded from a numeric column by the formula (``C(x)``).
    covariate_means : mean of each numeric variable of the formula over the analysis rows.
    factor_codes : (n, n_factors) level codes of the factors, for proportional weights.
    n_input_rows, n_missing_outcome, n_incomplete : row accounting.
    """

    x: np.ndarray
    y: np.ndarray
    subject_codes: np.ndarray
    subject_labels: np.ndarray
    visit_codes: np.ndarray
    visits: tuple[object, ...]
    column_names: tuple[str, ...]
    terms: tuple[ModelTerm, ...]
    model_spec: ModelSpec
    factor_levels: dict[str, tuple[object, ...]]
    numeric_factors: frozenset[str]
    covariate_means: dict[str, float]
    factor_codes: np.ndarray
    n_input_rows: int
    n_missing_outcome: int
    n_incomplete: int

    @property
    def n_obs(self) -> int:
        return int(self.y.shape[0])


def _visit_levels(column: pd.Series) -> tuple[object, ...]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return tuple(column.cat.categories)
    return tuple(sorted(column.dropna().unique()))


def _check_columns(data: pd.DataFrame, spec: MmrmSpec, rhs_vars: set[str]) -> None:
    problems = []
    columns = set(data.columns)
    missing = [c for c in (spec.outcome, spec.subject, spec.visit) if c not in columns]
    missing += sorted(v for v in rhs_vars if v not in columns and v not in missing)
    if missing:
        problems.append(
            "column(s) " + ", ".join(repr(c) for c in missing) + " named by the formula, "
            "subject or visit are not in the data"
        )
    if spec.outcome in columns:
        dtype = data[spec.outcome].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            problems.append(f"outcome {spec.outcome!r} must be numeric, got dtype {dtype}")
    if spec.visit in columns:
        levels = _visit_levels(data[spec.visit])
        if len(levels) < 2:
            problems.append(
                f"visit {spec.visit!r} has {len(levels)} level(s) {list(levels)}; "
                "a repeated-measures model needs at least two"
            )
    if problems:
        raise MmrmDataError(problems)


def _as_factor(column: pd.Series) -> pd.Series:
    """A ``Categorical`` with levels in model order (unused levels removed)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.remove_unused_categories()
    levels = sorted(column.unique(), key=lambda v: (str(type(v)), v))
    return pd.Series(pd.Categorical(column, categories=levels), index=column.index)


def _complete_cases(
    data: pd.DataFrame, spec: MmrmSpec, rhs_vars: set[str], visits: tuple[object, ...]
) -> tuple[pd.DataFrame, np.ndarray, int, int]:
    columns = list(dict.fromkeys([spec.outcome, spec.subject, spec.visit, *sorted(rhs_vars)]))
    frame = data[columns]
    keep = frame[spec.outcome].notna().to_numpy()
    n_missing = int((~keep).sum())
    n_incomplete = 0
    if rhs_vars:
        complete = frame[sorted(rhs_vars)].notna().to_numpy().all(axis=1)
        n_incomplete = int((keep & ~complete).sum())
        keep = keep & complete
    if not keep.all():
        frame = frame[keep]
    problems = [
        f"{name} column {col!r} has {n} missing value(s) in rows with an outcome"
        for name, col in (("subject", spec.subject), ("visit", spec.visit))
        if (n := int(frame[col].isna().sum()))
    ]
    if problems:
        raise MmrmDataError(problems)
    visit = frame[spec.visit]
    if isinstance(visit.dtype, pd.CategoricalDtype) and tuple(visit.cat.categories) == visits:
        visit_codes = visit.cat.codes.to_numpy()
    else:
        visit_codes = pd.Categorical(visit, categories=list(visits)).codes
    counts = np.bincount(visit_codes, minlength=len(visits))
    if np.any(counts == 0):
        raise EmptyVisitError(spec.visit, [v for v, c in zip(visits, counts, strict=True) if not c])
    return frame, visit_codes, n_missing, n_incomplete


def _aliased_columns(x: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """Columns that are (numerically) linear combinations of the columns before them."""
    scale = np.sqrt(np.einsum("ij,ij->j", x, x))
    scale[scale == 0] = 1.0
    xs = x / scale
    kept: list[int] = []
    aliased = []
    q = np.empty((x.shape[0], 0))
    for j in range(x.shape[1]):
        v = xs[:, j] - q @ (q.T @ xs[:, j])
        v = v - q @ (q.T @ v)
        norm = float(np.linalg.norm(v))
        if norm < 1e-9:
            aliased.append(names[j])
        else:
            kept.append(j)
            q = np.column_stack([q, v / norm])
    return aliased


def _check_rank(x: np.ndarray, names: tuple[str, ...]) -> None:
    gram = x.T @ x
    d = np.sqrt(np.diag(gram))
    if np.any(d == 0):
        raise SingularDesignError([n for n, dj in zip(names, d, strict=True) if dj == 0])
    eig = np.linalg.eigvalsh(gram / np.outer(d, d))
    if eig[0] < 1e-10 * eig[-1]:
        raise SingularDesignError(_aliased_columns(x, names) or [names[-1]])


def _terms(spec: ModelSpec, factor_vars: set[str], data_vars: set[str]) -> tuple[ModelTerm, ...]:
    terms = []
    for term, indices in spec.term_indices.items():
        variables = spec.term_variables[term] & data_vars
        if not variables:
            continue  # the intercept
        terms.append(
            ModelTerm(
                name=str(term),
                columns=tuple(indices),
                factors=tuple(sorted(variables & factor_vars)),
                covariates=tuple(sorted(variables - factor_vars)),
            )
        )
    return tuple(terms)


def prepare_data(data: pd.DataFrame, spec: MmrmSpec) -> MmrmData:
    """Validate ``data`` against ``spec`` and build the design.

    Raises
    ------
    MmrmDataError
        Listing every column problem (missing column, non-numeric outcome, visit with one
        level, missing subject or visit, a term that cannot be evaluated).
    EmptyVisitError
        When a visit level has no observed outcome.
    SingularDesignError
        When the design matrix does not have full column rank.

    Examples
    --------
    >>> df = pd.DataFrame({"id": [1, 1, 2, 2, 3], "visit": ["a", "b", "a", "b", "a"],
    ...                    "y": [1.0, 2.0, 1.5, None, 0.5], "arm": ["t", "t", "p", "p", "t"]})
    >>> spec = MmrmSpec("y ~ arm + visit", subject="id", visit="visit")
    >>> d = prepare_data(df, spec)
    >>> d.column_names, d.visits, d.n_missing_outcome
    (('Intercept', 'arm[T.t]', 'visit[T.b]'), ('a', 'b'), 1)
    """
    if not isinstance(data, pd.DataFrame):
        raise MmrmDataError([f"data must be a pandas DataFrame, got {type(data).__name__}"])
    rhs_vars = set(spec.rhs_formula.required_variables)
    _check_columns(data, spec, rhs_vars)
    visits = _visit_levels(data[spec.visit])
    frame, visit_codes, n_missing, n_incomplete = _complete_cases(data, spec, rhs_vars, visits)
    updates = {
        v: _as_factor(frame[v])
        for v in rhs_vars
        if (
            not pd.api.types.is_numeric_dtype(frame[v].dtype)
            or pd.api.types.is_bool_dtype(frame[v].dtype)
        )
    }
    frame = frame.assign(**updates)
    try:
        # complete cases already; a missing value in a variable formulaic evaluates but
        # does not list as required shows up below as a non-finite design column
        mm = model_matrix(
            spec.rhs_formula,
            frame,
            na_action="ignore",
            output="numpy",
            context=dict(FORMULA_CONTEXT),
        )
    except Exception as exc:  # formulaic raises many error types for bad terms
        raise MmrmDataError(
            [f"formula {spec.rhs!r} cannot be evaluated on the data: {exc}"]
        ) from exc
    model_spec = mm.model_spec
    names = tuple(str(c) for c in model_spec.column_names)
    x = np.asarray(mm, dtype=float)
    bad = [n for n, ok in zip(names, np.isfinite(x).all(axis=0), strict=True) if not ok]
    if bad:
        raise MmrmDataError([f"design column(s) {bad} have non-finite values"])
    _check_rank(x, names)
    if x.shape[0] <= x.shape[1]:
        raise MmrmDataError(
            [f"{x.shape[0]} observations cannot estimate {x.shape[1]} fixed effects"]
        )
    data_vars = set(model_spec.variables_by_source.get("data", set()))
    encoded = {
        v for factor in model_spec.factor_contrasts for v in model_spec.factor_variables[factor]
    }
    factor_vars = {
        v for v in data_vars if isinstance(frame[v].dtype, pd.CategoricalDtype) or v in encoded
    }
    factor_levels = {}
    factor_codes = []
    numeric_factors = set()
    for v in sorted(factor_vars):
        col = frame[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            factor_levels[v] = tuple(col.cat.categories)
            factor_codes.append(col.cat.codes.to_numpy())
        else:
            levels, codes = np.unique(col.to_numpy(), return_inverse=True)
            factor_levels[v] = tuple(levels.tolist())
            factor_codes.append(codes)
            numeric_factors.add(v)
    subject_codes, subject_labels = pd.factorize(frame[spec.subject])
    return MmrmData(
        x=x,
        y=frame[spec.outcome].to_numpy(dtype=float),
        subject_codes=subject_codes,
        subject_labels=np.asarray(subject_labels),
        visit_codes=visit_codes,
        visits=visits,
        column_names=names,
        terms=_terms(model_spec, factor_vars, data_vars),
        model_spec=model_spec,
        factor_levels=factor_levels,
        numeric_factors=frozenset(numeric_factors),
        covariate_means={v: float(frame[v].mean()) for v in sorted(data_vars - factor_vars)},
        factor_codes=np.column_stack(factor_codes) if factor_codes else np.empty((len(frame), 0)),
        n_input_rows=len(data),
        n_missing_outcome=n_missing,
        n_incomplete=n_incomplete,
    )
