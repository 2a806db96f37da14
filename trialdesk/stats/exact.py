"""Tests that respect a small trial: permutation, re-randomization, rank-sum, Fisher.

* :func:`permutation_test`: the ANCOVA treatment effect referred to its distribution over
  every reallocation of the treatment labels among the analysed subjects (within strata if
  asked), by full enumeration when there are at most ``max_enumerations`` allocations and by
  Monte Carlo otherwise (recorded seed, Monte Carlo standard error of the p value).
* :func:`rerandomization_test`: the same statistic referred to the trial's own randomization
  scheme, permuted blocks drawn at random within each stratum
  (:mod:`trialdesk.stats.allocation`); exact (each possible list weighted by its
  probability) when the lists are few enough, Monte Carlo otherwise.
* :func:`wilcoxon_rank_sum`: exact p value conditional on ties, Hodges-Lehmann shift and
  its exact confidence interval.
* :func:`fisher_exact`: Fisher's exact test of a 2x2 table with the conditional maximum
  likelihood odds ratio and its exact interval.

The ANCOVA statistic of every allocation is computed at once. With ``Z`` the design without
the treatment column and ``r = y - Z (Z'Z)^-1 Z' y`` (Frisch-Waugh-Lovell), an allocation
vector ``a`` gives ``estimate = a'r / a'M a`` and ``t = a'r / sqrt(a'M a * RSS / df)`` with
``M = I - Z (Z'Z)^-1 Z'``, ``RSS = r'r - (a'r)^2 / a'M a`` and ``df = n - rank(Z) - 1``:
two small matrix products per batch of allocations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.stats.contingency import odds_ratio

from trialdesk.stats.allocation import (
    BlockScheme,
    TooManyListsError,
    draw_block_lists,
    list_distribution,
)
from trialdesk.stats.linear import design_matrices, prepare_data

__all__ = [
    "ExactTestError",
    "FisherResult",
    "PermutationTestResult",
    "RankSumResult",
    "fisher_exact",
    "permutation_test",
    "rerandomization_test",
    "wilcoxon_rank_sum",
]

ALTERNATIVES = ("two-sided", "less", "greater")
STATISTICS = ("t", "estimate")
_BATCH = 1 << 16
#: Relative tolerance under which a resampled statistic counts as equal to the observed one.
TIE_TOLERANCE = 1e-9


class ExactTestError(ValueError):
    """Invalid input to an exact or randomization test."""


@dataclass(frozen=True)
class PermutationTestResult:
    """A permutation or re-randomization test of a treatment effect.

    Attributes
    ----------
    estimate : float
        Observed treatment effect (active minus reference, ANCOVA-adjusted).
    statistic : float
        Observed test statistic (``t`` or ``estimate``, see ``statistic_name``).
    statistic_name : str
        ``"t"`` or ``"estimate"``.
    p_value : float
        Exact p value, or the Monte Carlo estimate ``(1 + b) / (1 + B)``.
    alternative : str
        ``"two-sided"`` (``|T*| >= |T|``), ``"less"`` or ``"greater"``.
    method : str
        ``"exact"`` or ``"monte carlo"``.
    reference_set : str
        What was re-drawn: ``"permutation"``, ``"stratified permutation"`` or
        ``"re-randomization"``.
    n_allocations : int
        Allocations evaluated (enumerated or drawn).
    total_allocations : int or None
        Size of the reference set (permutations), or distinct lists of the scheme when
        known; None when not counted.
    mc_error : float
        Monte Carlo standard error of the p value, ``sqrt(p (1 - p) / B)``; 0 when exact.
    seed : int or None
        Seed of the Monte Carlo draws (None when exact).
    n_degenerate : int
        Allocations left out because the effect was not estimable (one arm empty among the
        analysed subjects, or treatment aliased with the covariates).
    null_distribution : numpy.ndarray
        The statistic over the allocations evaluated (NaN for degenerate ones).
    """

    estimate: float
    statistic: float
    statistic_name: str
    p_value: float
    alternative: str
    method: str
    reference_set: str
    n_allocations: int
    total_allocations: int | None
    mc_error: float
    seed: int | None
    n_degenerate: int = 0
    null_distribution: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


@dataclass(frozen=True)
class _Projection:
    """The ANCOVA of one data set, ready to score many allocations."""

    resid: np.ndarray  # r = M y, shape (n,)
    basis: np.ndarray  # orthonormal basis Q of the columns of Z, shape (n, q)
    df: int
    observed: np.ndarray  # observed allocation (1 = active), shape (n,)

    def score(self, alloc: np.ndarray, statistic: str) -> np.ndarray:
        alloc = np.asarray(alloc, float)
        num = alloc @ self.resid
        proj = alloc @ self.basis
        den = alloc.sum(axis=1) - np.einsum("ij,ij->i", proj, proj)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.maximum(alloc.sum(axis=1), 1.0)
            ok = den > 1e-9 * scale
            estimate = np.where(ok, num / den, np.nan)
            if statistic == "estimate":
                return estimate
            rss = self.resid @ self.resid - np.where(ok, num**2 / den, np.nan)
            return estimate / np.sqrt(np.maximum(rss, 0.0) / self.df / den)


def _projection(
    data: pd.DataFrame, formula: str, treatment: str, reference: object | None
) -> tuple[_Projection, pd.DataFrame, object]:
    if treatment not in data.columns:
        raise ExactTestError(f"treatment column {treatment!r} not found in the data")
    present = sorted(data[treatment].dropna().unique().tolist())
    if len(present) != 2:
        raise ExactTestError(
            f"the test compares two arms; {treatment!r} has levels {present}: subset the data"
        )
    if reference is None:
        reference = present[0]
    if reference not in present:
        raise ExactTestError(f"reference {reference!r} is not a level of {treatment!r}: {present}")
    active = present[1] if present[0] == reference else present[0]
    prepared = prepare_data(data, formula, levels={treatment: [reference, active]}, extra=["_row"])
    y, x, spec = design_matrices(prepared)
    terms = {str(t): list(i) for t, i in spec.term_indices.items()}
    if treatment not in terms:
        raise ExactTestError(f"treatment {treatment!r} is not a main effect of {formula!r}")
    mixed = [t for t in terms if treatment in t.split(":") and t != treatment]
    if mixed:
        raise ExactTestError(f"treatment {treatment!r} interacts with other terms: {mixed}")
    (col,) = terms[treatment]
    z = np.delete(x, col, axis=1)
    q, r = np.linalg.qr(z)
    keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, np.abs(np.diag(r)).max())
    basis = q[:, keep]
    df = len(y) - basis.shape[1] - 1
    if df < 1:
        raise ExactTestError(f"{len(y)} analysed subjects leave no residual df")
    resid = y - basis @ (basis.T @ y)
    projection = _Projection(resid, basis, df, x[:, col].copy())
    return projection, prepared.frame, active


def _check_choice(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise ExactTestError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def _extreme(null: np.ndarray, observed: float, alternative: str) -> np.ndarray:
    tol = TIE_TOLERANCE * max(1.0, abs(observed))
    if alternative == "two-sided":
        return np.abs(null) >= abs(observed) - tol
    if alternative == "greater":
        return null >= observed - tol
    return null <= observed + tol


def _resolve_seed(seed: int | None) -> int:
    return int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed)


def permutation_test(
    data: pd.DataFrame,
    formula: str,
    *,
    treatment: str,
    reference: object | None = None,
    strata: str | None = None,
    statistic: str = "t",
    alternative: str = "two-sided",
    max_enumerations: int = 1_000_000,
    n_resamples: int = 100_000,
    seed: int | None = None,
) -> PermutationTestResult:
    """Permutation test of the ANCOVA treatment effect.

    The reference set is every reallocation of the observed treatment labels among the
    analysed subjects (group sizes fixed), within each level of ``strata`` when given.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, two treatment arms.
    formula : str
        ANCOVA formula with the treatment as a main effect, e.g.
        ``"CHG ~ BASE + SITE + ARM"`` (``"CHG ~ ARM"`` compares means).
    treatment : str
        Treatment column.
    reference : object, optional
        Control arm; the effect is active minus reference. Default: the first sorted level.
    strata : str, optional
        Permute within the levels of this column (e.g. the site).
    statistic : {"t", "estimate"}
        Studentized effect (default) or the raw adjusted difference.
    alternative : {"two-sided", "less", "greater"}
        ``"two-sided"`` counts ``|T*| >= |T|``.
    max_enumerations : int
        Enumerate every allocation when there are at most this many.
    n_resamples : int
        Monte Carlo draws otherwise.
    seed : int, optional
        Seed of the Monte Carlo draws; drawn from OS entropy and recorded when None.

    Returns
    -------
    PermutationTestResult

    Examples
    --------
    >>> df = pd.DataFrame({"y": [3.1, 2.0, 4.2, 5.5, 6.1, 5.0], "arm": list("PPPAAA")})
    >>> res = permutation_test(df, "y ~ arm", treatment="arm", reference="P")
    >>> res.method, res.n_allocations, res.p_value
    ('exact', 20, 0.1)
    """
    _check_choice(statistic, STATISTICS, "statistic")
    _check_choice(alternative, ALTERNATIVES, "alternative")
    if strata is not None and strata not in data.columns:
        raise ExactTestError(f"strata column {strata!r} not found in the data")
    work = data.assign(_row=np.arange(len(data)))
    projection, frame, _active = _projection(work, formula, treatment, reference)
    groups = _strata_positions(data, frame, strata)
    observed = projection.observed
    sizes = [(len(pos), int(observed[pos].sum())) for pos in groups]
    total = math.prod(math.comb(n, k) for n, k in sizes)
    obs_stat = float(projection.score(observed[None, :], statistic)[0])
    obs_est = float(projection.score(observed[None, :], "estimate")[0])
    if not np.isfinite(obs_stat):
        raise ExactTestError("the observed treatment effect is not estimable")
    if total <= max_enumerations:
        null = np.concatenate(
            [
                projection.score(batch, statistic)
                for batch in _enumerate_permutations(groups, sizes, len(observed))
            ]
        )
        method, used_seed = "exact", None
    else:
        if n_resamples < 1:
            raise ExactTestError(f"n_resamples must be >= 1, got {n_resamples}")
        used_seed = _resolve_seed(seed)
        rng = np.random.default_rng(used_seed)
        null = np.concatenate(
            [
                projection.score(_shuffle_within(observed, groups, size, rng), statistic)
                for size in _batch_sizes(n_resamples)
            ]
        )
        method = "monte carlo"
    reference_set = "stratified permutation" if strata is not None else "permutation"
    return _summarize(
        null,
        weights=None,
        obs_stat=obs_stat,
        obs_est=obs_est,
        statistic=statistic,
        alternative=alternative,
        method=method,
        reference_set=reference_set,
        total=total,
        seed=used_seed,
    )


def _summarize(
    null: np.ndarray,
    *,
    weights: np.ndarray | None,
    obs_stat: float,
    obs_est: float,
    statistic: str,
    alternative: str,
    method: str,
    reference_set: str,
    total: int | None,
    seed: int | None,
) -> PermutationTestResult:
    valid = np.isfinite(null)
    extreme = _extreme(null[valid], obs_stat, alternative)
    if method == "exact":
        w = np.ones(valid.sum()) if weights is None else weights[valid]
        p_value = float(w[extreme].sum() / w.sum())
        mc_error = 0.0
    else:
        b = int(valid.sum())
        p_value = (1.0 + int(extreme.sum())) / (1.0 + b)
        mc_error = math.sqrt(p_value * (1 - p_value) / b)
    return PermutationTestResult(
        estimate=obs_est,
        statistic=obs_stat,
        statistic_name=statistic,
        p_value=min(p_value, 1.0),
        alternative=alternative,
        method=method,
        reference_set=reference_set,
        n_allocations=len(null),
        total_allocations=total,
        mc_error=mc_error,
        seed=seed,
        n_degenerate=int((~valid).sum()),
        null_distribution=null,
    )


def _strata_positions(
    data: pd.DataFrame, frame: pd.DataFrame, strata: str | None
) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(len(frame))]
    labels = data[strata].to_numpy()[frame["_row"].to_numpy()]
    if pd.isna(labels).any():
        raise ExactTestError(f"strata column {strata!r} has missing values")
    codes, _ = pd.factorize(labels, sort=True)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def _combinations(n: int, k: int) -> np.ndarray:
    flat = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(n), k)),
        dtype=np.int32,
        count=math.comb(n, k) * k,
    )
    rows = np.zeros((math.comb(n, k), n), np.int8)
    if k:
        rows[np.repeat(np.arange(len(rows)), k), flat] = 1
    return rows


def _enumerate_permutations(
    groups: list[np.ndarray], sizes: list[tuple[int, int]], n: int
) -> Iterator[np.ndarray]:
    choices = [_combinations(m, k) for m, k in sizes]
    yield from _product_batches(groups, choices, n)


def _product_batches(
    groups: list[np.ndarray], choices: list[np.ndarray], n: int
) -> Iterator[np.ndarray]:
    shape = tuple(len(c) for c in choices)
    total = math.prod(shape)
    for start in range(0, total, _BATCH):
        flat = np.arange(start, min(start + _BATCH, total))
        index = np.unravel_index(flat, shape)
        batch = np.zeros((len(flat), n), np.float64)
        for pos, rows, idx in zip(groups, choices, index, strict=True):
            batch[:, pos] = rows[idx]
        yield batch


def _product_weights(probs: list[np.ndarray]) -> np.ndarray:
    weights = np.ones(1)
    for p in probs:
        weights = np.outer(weights, p).ravel()
    return weights


def _batch_sizes(total: int) -> Iterator[int]:
    for start in range(0, total, _BATCH):
        yield min(_BATCH, total - start)


def _shuffle_within(
    observed: np.ndarray, groups: list[np.ndarray], size: int, rng: np.random.Generator
) -> np.ndarray:
    batch = np.zeros((size, len(observed)))
    for pos in groups:
        batch[:, pos] = rng.permuted(np.tile(observed[pos], (size, 1)), axis=1)
    return batch


def rerandomization_test(
    data: pd.DataFrame,
    formula: str,
    *,
    treatment: str,
    scheme: BlockScheme,
    reference: object | None = None,
    stratum: str | None = None,
    order: str | None = None,
    statistic: str = "t",
    alternative: str = "two-sided",
    max_enumerations: int = 1_000_000,
    n_resamples: int = 100_000,
    seed: int | None = None,
) -> PermutationTestResult:
    """Re-randomization test: re-draw whole allocation lists from the trial's own scheme.

    Every randomized subject (row) takes part in the re-draw, including those whose outcome
    is missing; the statistic is then computed on the analysed subjects. Within a stratum,
    subjects are taken in randomization order (``order``, else row order), so the ``j``-th
    subject of a stratum receives the ``j``-th entry of each re-drawn list.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per randomized subject.
    formula : str
        ANCOVA formula with the treatment as a main effect.
    treatment : str
        Treatment column; its values must be the arms of ``scheme``.
    scheme : BlockScheme
        The randomization scheme (two arms), e.g. 2:1 in blocks of 3 and 6.
    reference : object, optional
        Control arm. Default: the last arm of ``scheme``.
    stratum : str, optional
        Stratification column (site); one list per level.
    order : str, optional
        Randomization order within stratum (randomization number or date-time).
    statistic, alternative : str
        As in :func:`permutation_test`.
    max_enumerations : int
        Weight and enumerate every combination of the strata's possible lists when there are
        at most this many; Monte Carlo otherwise.
    n_resamples : int
        Monte Carlo draws.
    seed : int, optional
        Seed of the Monte Carlo draws; drawn and recorded when None.

    Returns
    -------
    PermutationTestResult

    Examples
    --------
    >>> scheme = BlockScheme(("A", "P"), (2, 1), (3, 6))
    >>> df = pd.DataFrame({"y": [5.0, 6.1, 2.2, 5.8, 1.9, 6.3], "arm": list("AAPAPA")})
    >>> res = rerandomization_test(df, "y ~ arm", treatment="arm", scheme=scheme)
    >>> res.method, res.reference_set, round(res.p_value, 3)
    ('exact', 're-randomization', 0.078)
    """
    _check_choice(statistic, STATISTICS, "statistic")
    _check_choice(alternative, ALTERNATIVES, "alternative")
    if len(scheme.arms) != 2:
        raise ExactTestError(f"the test compares two arms; the scheme has {scheme.arms}")
    for column in (treatment, stratum, order):
        if column is not None and column not in data.columns:
            raise ExactTestError(f"column {column!r} not found in the data")
    reference = scheme.arms[-1] if reference is None else reference
    if reference not in scheme.arms:
        raise ExactTestError(f"reference {reference!r} is not an arm of the scheme {scheme.arms}")
    unknown = sorted(set(data[treatment].dropna()) - set(scheme.arms))
    if unknown or data[treatment].isna().any():
        raise ExactTestError(
            f"{treatment!r} must hold only the scheme's arms {scheme.arms}; found {unknown or 'NA'}"
        )
    active_code = scheme.arms.index(next(a for a in scheme.arms if a != reference))
    ordered = _randomization_order(data, stratum, order)
    projection, frame, _active = _projection(ordered, formula, treatment, reference)
    analysed = frame["_row"].to_numpy()
    strata_rows = _stratum_rows(ordered, stratum)
    obs_stat = float(projection.score(projection.observed[None, :], statistic)[0])
    obs_est = float(projection.score(projection.observed[None, :], "estimate")[0])
    if not np.isfinite(obs_stat):
        raise ExactTestError("the observed treatment effect is not estimable")
    n_rows = len(ordered)

    def to_active(lists: np.ndarray) -> np.ndarray:
        return (lists[:, analysed] == active_code).astype(float)

    tables = _scheme_tables(scheme, [len(r) for r in strata_rows])
    total = math.prod(len(t[0]) for t in tables) if tables is not None else None
    if total is not None and total <= max_enumerations:
        choices = [t[0] for t in tables]
        weights = _product_weights([t[1] for t in tables])
        null = np.concatenate(
            [
                projection.score(to_active(batch.astype(np.int8)), statistic)
                for batch in _product_batches(strata_rows, choices, n_rows)
            ]
        )
        return _summarize(
            null,
            weights=weights,
            obs_stat=obs_stat,
            obs_est=obs_est,
            statistic=statistic,
            alternative=alternative,
            method="exact",
            reference_set="re-randomization",
            total=total,
            seed=None,
        )
    if n_resamples < 1:
        raise ExactTestError(f"n_resamples must be >= 1, got {n_resamples}")
    used_seed = _resolve_seed(seed)
    rng = np.random.default_rng(used_seed)
    parts = []
    for size in _batch_sizes(n_resamples):
        lists = np.zeros((size, n_rows), np.int8)
        for rows in strata_rows:
            lists[:, rows] = draw_block_lists(scheme, len(rows), size, rng)
        parts.append(projection.score(to_active(lists), statistic))
    return _summarize(
        np.concatenate(parts),
        weights=None,
        obs_stat=obs_stat,
        obs_est=obs_est,
        statistic=statistic,
        alternative=alternative,
        method="monte carlo",
        reference_set="re-randomization",
        total=total,
        seed=used_seed,
    )


def _randomization_order(
    data: pd.DataFrame, stratum: str | None, order: str | None
) -> pd.DataFrame:
    keys = [c for c in (stratum, order) if c is not None]
    for key in keys:
        if data[key].isna().any():
            raise ExactTestError(f"column {key!r} has missing values")
    ordered = data.sort_values(keys, kind="stable") if keys else data
    return ordered.reset_index(drop=True).assign(_row=np.arange(len(data)))


def _stratum_rows(ordered: pd.DataFrame, stratum: str | None) -> list[np.ndarray]:
    if stratum is None:
        return [np.arange(len(ordered))]
    codes, _ = pd.factorize(ordered[stratum], sort=True)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def _scheme_tables(
    scheme: BlockScheme, sizes: list[int]
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    try:
        return [list_distribution(scheme, n) for n in sizes]
    except TooManyListsError:
        return None


@dataclass(frozen=True)
class RankSumResult:
    """Wilcoxon rank-sum (Mann-Whitney) test with the Hodges-Lehmann shift.

    Attributes
    ----------
    u : float
        Mann-Whitney U of ``x``: pairs with ``x > y`` plus half the tied pairs
        (as :func:`scipy.stats.mannwhitneyu`).
    rank_sum : float
        Wilcoxon W, the sum of the (mid)ranks of ``x``.
    p_value : float
        Exact p value from the permutation distribution of the rank sum given the ties.
        Two-sided: twice the smaller one-sided p value, at most 1.
    alternative : str
        ``"two-sided"``, ``"less"`` or ``"greater"`` (location of ``x`` relative to ``y``).
    ties : bool
        Whether the pooled sample has ties.
    hodges_lehmann : float
        Median of the ``m * n`` differences ``x_i - y_j``.
    lower, upper : float
        Exact two-sided confidence interval of the shift (may be infinite for tiny samples).
    conf_level : float
        Confidence level the interval achieves, ``1 - 2 P(U <= c - 1)`` (at least the one
        asked for, without ties).
    """

    u: float
    rank_sum: float
    p_value: float
    alternative: str
    ties: bool
    hodges_lehmann: float
    lower: float
    upper: float
    conf_level: float


def _subset_sum_distribution(scores: np.ndarray, m: int) -> np.ndarray:
    """P(sum of a random m-subset of integer ``scores`` = s) for s = 0..sum(scores)."""
    total = int(scores.sum())
    counts = np.zeros((m + 1, total + 1))
    counts[0, 0] = 1.0
    for s in scores:
        s = int(s)
        counts[1:, s:] += counts[:-1, : total + 1 - s].copy()
    return counts[m] / special.comb(len(scores), m, exact=False)


def wilcoxon_rank_sum(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> RankSumResult:
    """Exact Wilcoxon rank-sum test, Hodges-Lehmann estimate and exact interval.

    The p value is exact also with ties: midranks are scored and their permutation
    distribution is counted exactly (conditional on the tie pattern).

    Hodges-Lehmann definition used with ties: the estimate is the median of all ``m * n``
    pairwise differences ``x_i - y_j`` with every pair counted once, tied differences kept
    (the mean of the two middle ones when ``m * n`` is even). The interval is
    ``[D_(c), D_(mn + 1 - c)]`` of the ordered differences with ``c`` the largest integer
    such that ``P(U <= c - 1) <= alpha / 2`` under the exact tie-free null distribution of U
    (Bauer 1972); it is the set of shifts the exact two-sided test does not reject. With
    ties in the data the interval keeps this construction and its coverage is approximate.

    Parameters
    ----------
    x, y : array_like
        The two samples (e.g. active and placebo changes). Missing values are dropped.
    alternative : {"two-sided", "less", "greater"}
        Alternative for the p value.
    alpha : float
        The interval is at level ``1 - alpha`` (two-sided whatever ``alternative`` is).

    Returns
    -------
    RankSumResult

    Examples
    --------
    >>> res = wilcoxon_rank_sum([-3.0, -4.5, -2.0, -5.0, -1.0], [0.5, -1.5, 1.0, 0.0])
    >>> res.u, round(res.p_value, 4), res.hodges_lehmann
    (1.0, 0.0317, -3.0)
    """
    _check_choice(alternative, ALTERNATIVES, "alternative")
    if not 0 < alpha < 1:
        raise ExactTestError(f"alpha must lie in (0, 1), got {alpha}")
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ExactTestError(f"both samples need values, got sizes {m} and {n}")
    if math.comb(m + n, m) > 1e290:
        raise ExactTestError(f"samples of {m} and {n} are too large for exact counting")
    ranks = stats.rankdata(np.concatenate([x, y]))
    scores = np.rint(2 * ranks).astype(np.int64)
    dist = _subset_sum_distribution(scores, m)
    observed = int(scores[:m].sum())
    p_less = float(dist[: observed + 1].sum())
    p_greater = float(dist[observed:].sum())
    p_value = {
        "less": p_less,
        "greater": p_greater,
        "two-sided": min(1.0, 2 * min(p_less, p_greater)),
    }[alternative]
    rank_sum = float(ranks[:m].sum())
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    lower, upper, level = _shift_interval(diffs, m, n, alpha)
    return RankSumResult(
        u=rank_sum - m * (m + 1) / 2,
        rank_sum=rank_sum,
        p_value=min(p_value, 1.0),
        alternative=alternative,
        ties=len(np.unique(ranks)) < m + n,
        hodges_lehmann=float(np.median(diffs)),
        lower=lower,
        upper=upper,
        conf_level=level,
    )


def _shift_interval(diffs: np.ndarray, m: int, n: int, alpha: float) -> tuple[float, float, float]:
    u_dist = _subset_sum_distribution(np.arange(1, m + n + 1), m)[m * (m + 1) // 2 :]
    cdf = np.cumsum(u_dist)  # cdf[u] = P(U <= u)
    # c - 1 = largest u with P(U <= u) <= alpha / 2
    c = int(np.searchsorted(cdf, alpha / 2 * (1 + 1e-12), side="right"))
    if c == 0:
        return -math.inf, math.inf, 1.0
    level = 1.0 - 2.0 * float(cdf[c - 1])
    return float(diffs[c - 1]), float(diffs[m * n - c]), level


@dataclass(frozen=True)
class FisherResult:
    """Fisher's exact test of a 2x2 table.

    Attributes
    ----------
    p_value : float
        Two-sided: sum of the hypergeometric probabilities not larger than the observed
        table's (relative tolerance 1e-7), as R and SciPy.
    alternative : str
        ``"two-sided"``, ``"less"`` or ``"greater"`` (odds ratio below / above 1).
    odds_ratio : float
        Sample odds ratio ``(a d) / (b c)``.
    cmle_odds_ratio : float
        Conditional maximum likelihood estimate (R ``fisher.test``'s estimate).
    lower, upper : float
        Exact confidence interval of the odds ratio (conditional).
    """

    p_value: float
    alternative: str
    odds_ratio: float
    cmle_odds_ratio: float
    lower: float
    upper: float


def fisher_exact(
    table: Sequence[Sequence[int]] | np.ndarray,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> FisherResult:
    """Fisher's exact test of a 2x2 table ``[[a, b], [c, d]]``.

    Parameters
    ----------
    table : array_like
        Counts, rows = arms, columns = outcome yes / no.
    alternative : {"two-sided", "less", "greater"}
        Alternative for the p value and the interval.
    alpha : float
        The interval is at level ``1 - alpha``.

    Returns
    -------
    FisherResult

    Examples
    --------
    >>> res = fisher_exact([[7, 9], [1, 7]])
    >>> round(res.p_value, 4), round(res.odds_ratio, 3)
    (0.1893, 5.444)
    """
    _check_choice(alternative, ALTERNATIVES, "alternative")
    counts = np.asarray(table)
    if counts.shape != (2, 2):
        raise ExactTestError(f"table must be 2x2, got shape {counts.shape}")
    if (counts < 0).any() or not np.all(np.equal(np.mod(counts, 1), 0)):
        raise ExactTestError(f"table must hold non-negative integer counts, got {counts.tolist()}")
    counts = counts.astype(np.int64)
    if counts.sum(axis=0).min() == 0 or counts.sum(axis=1).min() == 0:
        raise ExactTestError(f"table {counts.tolist()} has an empty row or column")
    a = int(counts[0, 0])
    row1, col1, total = int(counts[0].sum()), int(counts[:, 0].sum()), int(counts.sum())
    dist = stats.hypergeom(total, col1, row1)
    support = np.arange(max(0, row1 + col1 - total), min(row1, col1) + 1)
    pmf = dist.pmf(support)
    p_obs = dist.pmf(a)
    p_value = {
        "less": float(dist.cdf(a)),
        "greater": float(dist.sf(a - 1)),
        "two-sided": float(pmf[pmf <= p_obs * (1 + 1e-7)].sum()),
    }[alternative]
    b, c, d = int(counts[0, 1]), int(counts[1, 0]), int(counts[1, 1])
    with np.errstate(divide="ignore"):
        sample_or = np.float64(a * d) / np.float64(b * c) if b * c else math.inf
    conditional = odds_ratio(counts, kind="conditional")
    ci = conditional.confidence_interval(confidence_level=1 - alpha, alternative=alternative)
    return FisherResult(
        p_value=min(p_value, 1.0),
        alternative=alternative,
        odds_ratio=float(sample_or) if a * d or b * c else math.nan,
        cmle_odds_ratio=float(conditional.statistic),
        lower=float(ci.low),
        upper=float(ci.high),
    )
