"""Estimable functions of the fixed effects: LS means, contrasts and Type III tests.

All three are built on the *reference grid*: every combination of the levels of the
formula's factors, with numeric covariates at chosen values, turned into design rows by the
formulaic model spec of the fit (so any term formulaic understands is handled).

* LS means (as emmeans and SAS LSMEANS): covariates at their means over the analysis rows;
  the prediction is averaged over the levels of the factors not named, with equal weights
  (``weights="equal"``) or in proportion to how often each combination of those factors
  occurs in the data (``weights="proportional"``, emmeans ``"proportional"``, SAS ``OM``).
* Contrasts: differences of LS means from a reference level, within each ``by`` group.
* Type III tests (as SAS PROC MIXED): for a term with factors F and covariates C, the
  hypothesis is the set of interaction contrasts over F (each level against the first) of
  the equally weighted marginal means of the mixed derivative in C, with every covariate not
  in the term at zero. For factor-only models these are the contrasts of equally weighted
  marginal means that emmeans' ``joint_tests`` uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from .data import MmrmData
from .df import DfEngine
from .errors import MmrmInferenceError

__all__ = [
    "contrast_table",
    "lsmeans_matrix",
    "t_table",
    "type3_matrices",
    "type3_table",
]


@dataclass(frozen=True)
class _Grid:
    """The full reference grid: level codes (G, n_factors) and their design rows."""

    factors: tuple[str, ...]
    codes: np.ndarray

    @classmethod
    def of(cls, data: MmrmData) -> _Grid:
        factors = tuple(data.factor_levels)
        sizes = [len(data.factor_levels[f]) for f in factors]
        codes = np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=int)
        return cls(factors, codes.reshape(-1, len(factors)))

    def design(self, data: MmrmData, covariates: dict[str, float]) -> np.ndarray:
        frame = {}
        for j, f in enumerate(self.factors):
            levels = data.factor_levels[f]
            values = np.asarray(levels, dtype=object)[self.codes[:, j]]
            if f in data.numeric_factors:
                frame[f] = values.astype(float)
            else:
                frame[f] = pd.Categorical(values, categories=list(levels))
        n = self.codes.shape[0]
        for name, value in covariates.items():
            frame[name] = np.full(n, value, dtype=float)
        with np.errstate(all="ignore"):  # non-finite rows are reported by the callers
            mm = data.model_spec.get_model_matrix(pd.DataFrame(frame), na_action="ignore")
        return np.asarray(mm, dtype=float)


def _names(arg: str | Sequence[str] | None) -> tuple[str, ...]:
    if arg is None:
        return ()
    if isinstance(arg, str):
        return (arg,)
    return tuple(arg)


def _check_factors(data: MmrmData, names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in data.factor_levels]
    if unknown:
        raise MmrmInferenceError(
            f"{unknown} are not factors of the model; factors: {list(data.factor_levels)}"
        )
    if len(set(names)) != len(names):
        raise MmrmInferenceError(f"factors {list(names)} are named twice")


def _grid_weights(data: MmrmData, grid: _Grid, group: Sequence[int]) -> np.ndarray:
    """Proportional weights: how often each grid row's combination of the factors not in
    ``group`` occurs in the data (emmeans ``"proportional"``, SAS ``OM``)."""
    others = [j for j in range(len(grid.factors)) if j not in group]
    if not others:
        return np.ones(len(grid.codes))
    sizes = [len(data.factor_levels[grid.factors[j]]) for j in others]
    observed = np.ravel_multi_index(tuple(data.factor_codes[:, others].T), sizes)
    freq = np.bincount(observed, minlength=int(np.prod(sizes))).astype(float)
    return freq[np.ravel_multi_index(tuple(grid.codes[:, others].T), sizes)]


def lsmeans_matrix(
    data: MmrmData,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    weights: str = "equal",
) -> tuple[pd.DataFrame, np.ndarray]:
    """The LS-means linear functions: a frame of group levels and the matrix (groups, k).

    Rows are ordered by the ``by`` factors (slowest) then the ``specs`` factors, each in
    level order.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> frame, lmat = lsmeans_matrix(fit.data, "arm", by="visit")
    >>> frame.shape, lmat.shape
    ((6, 2), (6, 6))
    >>> lmat[1].tolist()  # TRT at V1
    [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    if not _names(specs):
        raise MmrmInferenceError("specs must name at least one factor")
    group = _names(by) + _names(specs)
    _check_factors(data, group)
    if weights not in ("equal", "proportional"):
        raise MmrmInferenceError(f"weights must be 'equal' or 'proportional', got {weights!r}")
    grid = _Grid.of(data)
    x = grid.design(data, data.covariate_means)
    idx = [grid.factors.index(g) for g in group]
    sizes = [len(data.factor_levels[g]) for g in group]
    group_of_row = np.ravel_multi_index(tuple(grid.codes[:, idx].T), sizes)
    n_groups = int(np.prod(sizes))
    w = _grid_weights(data, grid, idx) if weights == "proportional" else np.ones(len(grid.codes))
    assign = np.zeros((n_groups, grid.codes.shape[0]))
    assign[group_of_row, np.arange(grid.codes.shape[0])] = w
    assign /= assign.sum(axis=1, keepdims=True)
    levels = list(itertools.product(*[data.factor_levels[g] for g in group]))
    frame = pd.DataFrame(levels, columns=list(group))
    return frame, assign @ x


def t_table(
    engine: DfEngine, contrasts: np.ndarray, labels: pd.DataFrame, conf_level: float
) -> pd.DataFrame:
    """``labels`` with estimate, se, df, t, p (two-sided) and confidence limits.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> labels = pd.DataFrame({"term": ["Intercept"]})
    >>> list(t_table(fit.engine, np.eye(6)[:1], labels, 0.95).columns)
    ['term', 'estimate', 'se', 'df', 't', 'p', 'lower', 'upper']
    """
    tt = engine.t_tests(contrasts)
    t = tt.estimate / tt.se
    q = special.stdtrit(tt.df, 0.5 + conf_level / 2)
    out = labels.reset_index(drop=True).copy()
    out["estimate"] = tt.estimate
    out["se"] = tt.se
    out["df"] = tt.df
    out["t"] = t
    out["p"] = 2 * special.stdtr(tt.df, -np.abs(t))
    out["lower"] = tt.estimate - q * tt.se
    out["upper"] = tt.estimate + q * tt.se
    return out


def contrast_table(
    data: MmrmData,
    engine: DfEngine,
    specs: str,
    by: str | Sequence[str] | None,
    *,
    reference: object | None,
    weights: str,
    conf_level: float,
) -> pd.DataFrame:
    """Each level of ``specs`` minus ``reference`` (default: first level), per ``by`` group.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> table = contrast_table(fit.data, fit.engine, "visit", None, reference="V1",
    ...                        weights="equal", conf_level=0.95)
    >>> table["contrast"].tolist()
    ['V2 - V1', 'V3 - V1']
    """
    if not isinstance(specs, str):
        raise MmrmInferenceError(f"contrasts take one factor in specs, got {specs!r}")
    frame, lmat = lsmeans_matrix(data, specs, by, weights)
    levels = data.factor_levels[specs]
    ref = levels[0] if reference is None else reference
    if ref not in levels:
        raise MmrmInferenceError(f"reference {ref!r} is not a level of {specs!r}: {list(levels)}")
    n_levels = len(levels)
    r = levels.index(ref)
    lm = lmat.reshape(-1, n_levels, lmat.shape[1])
    keep = [j for j in range(n_levels) if j != r]
    diff = (lm[:, keep, :] - lm[:, r : r + 1, :]).reshape(-1, lmat.shape[1])
    by_names = list(_names(by))
    group_frame = frame[by_names].iloc[::n_levels].reset_index(drop=True)
    labels = group_frame.loc[group_frame.index.repeat(len(keep))].reset_index(drop=True)
    labels["contrast"] = [f"{levels[j]} - {ref}" for _ in range(lm.shape[0]) for j in keep]
    return t_table(engine, diff, labels, conf_level)


def _treatment_contrasts(n: int) -> np.ndarray:
    """(n - 1, n): level j minus level 0."""
    c = np.zeros((n - 1, n))
    c[:, 0] = -1.0
    c[np.arange(n - 1), np.arange(1, n)] = 1.0
    return c


def _independent_rows(mat: np.ndarray) -> np.ndarray:
    """Drop zero rows and rows linearly dependent on earlier ones."""
    rows = []
    for row in mat:
        if np.max(np.abs(row), initial=0.0) < 1e-10:
            continue
        candidate = np.vstack([*rows, row])
        if np.linalg.matrix_rank(candidate, tol=1e-8 * np.abs(candidate).max()) == len(rows) + 1:
            rows.append(row)
    return np.array(rows).reshape(-1, mat.shape[1])


def type3_matrices(data: MmrmData) -> dict[str, np.ndarray]:
    """The SAS-style Type III hypothesis matrix of each term (see module docstring).

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> {term: hyp.shape for term, hyp in type3_matrices(fit.data).items()}
    {'arm': (1, 6), 'visit': (2, 6), 'arm:visit': (2, 6)}
    """
    grid = _Grid.of(data)
    zero = dict.fromkeys(data.covariate_means, 0.0)
    designs: dict[frozenset[str], np.ndarray] = {}

    def design_at(ones: frozenset[str]) -> np.ndarray:
        if ones not in designs:
            x = grid.design(data, {**zero, **dict.fromkeys(ones, 1.0)})
            if not np.all(np.isfinite(x)):
                raise MmrmInferenceError(
                    f"Type III hypotheses set covariates {sorted(zero)} to 0 (and 1), where the "
                    "design is not finite (a transformation such as log); transform or center "
                    "the covariate in the data instead"
                )
            designs[ones] = x
        return designs[ones]

    out = {}
    for term in data.terms:
        x = np.zeros((grid.codes.shape[0], data.x.shape[1]))
        for r in range(len(term.covariates) + 1):
            for subset in itertools.combinations(term.covariates, r):
                sign = (-1.0) ** (len(term.covariates) - r)
                x += sign * design_at(frozenset(subset))
        idx = [grid.factors.index(f) for f in term.factors]
        sizes = [len(data.factor_levels[f]) for f in term.factors]
        if idx:
            cell = np.ravel_multi_index(tuple(grid.codes[:, idx].T), sizes)
            n_cells = int(np.prod(sizes))
            counts = np.bincount(cell, minlength=n_cells)
            means = np.zeros((n_cells, x.shape[1]))
            np.add.at(means, cell, x)
            means = (means / counts[:, None]).reshape(*sizes, x.shape[1])
            for axis, size in enumerate(sizes):
                means = np.moveaxis(
                    np.tensordot(_treatment_contrasts(size), means, axes=([1], [axis])), 0, axis
                )
            hyp = means.reshape(-1, x.shape[1])
        else:
            hyp = x.mean(axis=0, keepdims=True)
        out[term.name] = _independent_rows(hyp)
    return out


def type3_table(data: MmrmData, engine: DfEngine) -> pd.DataFrame:
    """F tests per term: num_df, den_df, F, p.

    Examples
    --------
    >>> from trialdesk.stats.mmrm import example_data, fit_mmrm
    >>> fit = fit_mmrm(example_data(), "y ~ arm * visit", subject="id", visit="visit")
    >>> list(type3_table(fit.data, fit.engine).columns)
    ['num_df', 'den_df', 'F', 'p']
    """
    rows = []
    for name, hyp in type3_matrices(data).items():
        if hyp.shape[0] == 0:
            rows.append((name, 0, np.nan, np.nan, np.nan))
            continue
        test = engine.f_test(hyp)
        p = float(special.fdtrc(test.num_df, test.den_df, test.f))
        rows.append((name, test.num_df, test.den_df, test.f, p))
    return pd.DataFrame(rows, columns=["term", "num_df", "den_df", "F", "p"]).set_index("term")
