"""Exact and randomization tests against SciPy, brute force and R's documented values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from trialdesk.stats.allocation import BlockScheme
from trialdesk.stats.exact import (
    ExactTestError,
    fisher_exact,
    permutation_test,
    rerandomization_test,
    wilcoxon_rank_sum,
)

NS_DUPI = BlockScheme(arms=("DUPI", "PBO"), ratio=(2, 1), block_sizes=(3, 6))


def _trial(n_per_site=12, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * n_per_site
    df = pd.DataFrame(
        {
            "ARM": np.tile(["DUPI", "DUPI", "PBO"], n // 3 + 1)[:n],
            "SITE": np.repeat(["TLS", "NCK"], n_per_site),
            "RANDNO": np.arange(n),
            "BASE": rng.normal(8, 2, n),
        }
    )
    df["CHG"] = -1.5 * (df["ARM"] == "DUPI") - 0.5 * (df["BASE"] - 8) + rng.normal(0, 2.5, n)
    return df


def _ols_t(y, x_cov, a):
    """t statistic of the allocation column by a plain least-squares fit (the oracle)."""
    x = np.column_stack([x_cov, a])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    df = len(y) - x.shape[1]
    cov = resid @ resid / df * np.linalg.inv(x.T @ x)
    return beta[-1] / np.sqrt(cov[-1, -1])


# ----------------------------------------------------------------- permutation test


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_difference_in_means_equals_scipy_permutation_test(alternative):
    rng = np.random.default_rng(11)
    active, placebo = rng.normal(-1, 1, 8), rng.normal(0, 1, 6)
    df = pd.DataFrame({"y": np.r_[active, placebo], "arm": ["A"] * 8 + ["P"] * 6})
    ours = permutation_test(
        df, "y ~ arm", treatment="arm", reference="P", statistic="estimate", alternative=alternative
    )
    theirs = stats.permutation_test(
        (active, placebo),
        lambda a, b: np.mean(a) - np.mean(b),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative=alternative,
    )
    assert ours.method == "exact"
    assert ours.n_allocations == math.comb(14, 6)
    assert ours.estimate == pytest.approx(active.mean() - placebo.mean())
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-12)


def test_two_sided_counts_absolute_values_like_scipy_on_abs():
    rng = np.random.default_rng(12)
    active, placebo = rng.normal(-1, 1, 7), rng.normal(0, 1, 5)
    df = pd.DataFrame({"y": np.r_[active, placebo], "arm": ["A"] * 7 + ["P"] * 5})
    ours = permutation_test(df, "y ~ arm", treatment="arm", reference="P", statistic="estimate")
    theirs = stats.permutation_test(
        (active, placebo),
        lambda a, b: abs(np.mean(a) - np.mean(b)),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative="greater",
    )
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-12)


def test_ancova_statistic_equals_brute_force_least_squares():
    df = _trial(n_per_site=5, seed=3)
    result = permutation_test(df, "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO")
    y = df["CHG"].to_numpy()
    x_cov = np.column_stack([np.ones(10), df["BASE"], df["SITE"] == "TLS"]).astype(float)
    observed = _ols_t(y, x_cov, (df["ARM"] == "DUPI").to_numpy(float))
    k = int((df["ARM"] == "DUPI").sum())
    null = []
    for chosen in itertools.combinations(range(10), k):
        a = np.zeros(10)
        a[list(chosen)] = 1
        null.append(_ols_t(y, x_cov, a))
    null = np.array(null)
    assert result.statistic == pytest.approx(observed, rel=1e-10)
    assert result.p_value == pytest.approx(np.mean(np.abs(null) >= abs(observed) - 1e-9))
    np.testing.assert_allclose(np.sort(result.null_distribution), np.sort(null), rtol=1e-9)


def test_ns_dupi_size_is_enumerated_in_full():
    result = permutation_test(_trial(), "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO")
    assert result.method == "exact"
    assert result.n_allocations == result.total_allocations == math.comb(24, 8) == 735_471
    assert result.mc_error == 0.0 and result.seed is None


def test_monte_carlo_beyond_the_enumeration_limit_agrees_with_exact():
    df = _trial(n_per_site=6, seed=5)
    exact = permutation_test(df, "CHG ~ BASE + ARM", treatment="ARM", reference="PBO")
    mc = permutation_test(
        df, "CHG ~ BASE + ARM", treatment="ARM", reference="PBO", max_enumerations=100,
        n_resamples=20_000, seed=42,
    )  # fmt: skip
    assert mc.method == "monte carlo" and mc.seed == 42 and mc.n_allocations == 20_000
    assert mc.mc_error == pytest.approx(math.sqrt(mc.p_value * (1 - mc.p_value) / 20_000))
    assert abs(mc.p_value - exact.p_value) < 4 * mc.mc_error + 1 / 20_000
    again = permutation_test(
        df, "CHG ~ BASE + ARM", treatment="ARM", reference="PBO", max_enumerations=100,
        n_resamples=20_000, seed=42,
    )  # fmt: skip
    assert again.p_value == mc.p_value


def test_monte_carlo_without_seed_records_one():
    df = _trial(n_per_site=6, seed=5)
    mc = permutation_test(
        df, "CHG ~ ARM", treatment="ARM", reference="PBO", max_enumerations=10, n_resamples=100
    )
    assert isinstance(mc.seed, int)


def test_stratified_permutation_keeps_arm_counts_within_strata():
    df = _trial(n_per_site=6, seed=8)
    result = permutation_test(
        df, "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO", strata="SITE"
    )
    per_site = df.groupby("SITE")["ARM"].apply(lambda a: (a == "DUPI").sum())
    expected = math.prod(math.comb(6, int(k)) for k in per_site)
    assert result.total_allocations == result.n_allocations == expected
    assert result.reference_set == "stratified permutation"


def test_missing_outcomes_are_left_out_of_the_permutation():
    df = _trial(n_per_site=5, seed=2)
    df.loc[[0, 7], "CHG"] = np.nan
    result = permutation_test(df, "CHG ~ ARM", treatment="ARM", reference="PBO")
    analysed = df.dropna(subset=["CHG"])
    k = int((analysed["ARM"] == "DUPI").sum())
    assert result.n_allocations == math.comb(len(analysed), k)


def test_permutation_test_refuses_three_arms_and_interactions():
    df = _trial(n_per_site=6)
    three = df.assign(ARM=np.resize(["A", "B", "C"], len(df)))
    with pytest.raises(ExactTestError, match="two arms"):
        permutation_test(three, "CHG ~ ARM", treatment="ARM")
    with pytest.raises(ExactTestError, match="interacts"):
        permutation_test(df, "CHG ~ BASE * ARM", treatment="ARM", reference="PBO")
    with pytest.raises(ExactTestError, match="alternative"):
        permutation_test(df, "CHG ~ ARM", treatment="ARM", alternative="bigger")
    with pytest.raises(ExactTestError, match="'CENTRE'"):
        permutation_test(df, "CHG ~ ARM", treatment="ARM", strata="CENTRE")


# ------------------------------------------------------------- re-randomization test


def _scheme_lists(n):
    """Every list of n subjects with its probability, by brute force over blocks."""
    out = {}

    def grow(prefix, p):
        if len(prefix) >= n:
            key = prefix[:n]
            out[key] = out.get(key, 0.0) + p
            return
        for size in (3, 6):
            contents = [0] * (2 * size // 3) + [1] * (size // 3)
            perms = list(itertools.permutations(contents))
            for perm in perms:
                grow(prefix + perm, p * 0.5 / len(perms))

    grow((), 1.0)
    return out


def test_exact_rerandomization_equals_brute_force_over_the_scheme():
    df = _trial(n_per_site=4, seed=4)
    df.loc[2, "CHG"] = np.nan  # randomized but not analysed
    result = rerandomization_test(
        df, "CHG ~ BASE + SITE + ARM", treatment="ARM", scheme=NS_DUPI, stratum="SITE",
        order="RANDNO",
    )  # fmt: skip
    ordered = df.sort_values(["SITE", "RANDNO"], kind="stable").reset_index(drop=True)
    keep = ordered["CHG"].notna().to_numpy()
    y = ordered.loc[keep, "CHG"].to_numpy()
    x_cov = np.column_stack(
        [np.ones(keep.sum()), ordered.loc[keep, "BASE"], ordered.loc[keep, "SITE"] == "TLS"]
    ).astype(float)
    observed = _ols_t(y, x_cov, (ordered.loc[keep, "ARM"] == "DUPI").to_numpy(float))
    lists = _scheme_lists(4)
    p_extreme, p_valid = 0.0, 0.0
    for first, p1 in lists.items():
        for second, p2 in lists.items():
            a = (np.array(first + second)[keep] == 0).astype(float)
            if a.sum() in (0, len(a)):
                continue
            t = _ols_t(y, x_cov, a)
            if not np.isfinite(t):
                continue
            p_valid += p1 * p2
            p_extreme += p1 * p2 * (abs(t) >= abs(observed) - 1e-9)
    assert result.method == "exact"
    assert result.statistic == pytest.approx(observed, rel=1e-10)
    assert result.p_value == pytest.approx(p_extreme / p_valid, rel=1e-9)


def test_monte_carlo_rerandomization_agrees_with_exact():
    df = _trial(n_per_site=12, seed=6)
    kwargs = dict(treatment="ARM", scheme=NS_DUPI, stratum="SITE", order="RANDNO")
    exact = rerandomization_test(df, "CHG ~ BASE + SITE + ARM", **kwargs)
    mc = rerandomization_test(
        df, "CHG ~ BASE + SITE + ARM", max_enumerations=1, n_resamples=50_000, seed=7, **kwargs
    )
    assert exact.method == "exact" and exact.total_allocations == 531**2
    assert mc.method == "monte carlo" and mc.seed == 7
    assert abs(mc.p_value - exact.p_value) < 4 * mc.mc_error + 1 / 50_000


def test_rerandomization_follows_the_order_column_not_the_row_order():
    df = _trial(n_per_site=6, seed=9)
    kwargs = dict(treatment="ARM", scheme=NS_DUPI, stratum="SITE", order="RANDNO")
    a = rerandomization_test(df, "CHG ~ BASE + ARM", **kwargs)
    b = rerandomization_test(df.sample(frac=1.0, random_state=1), "CHG ~ BASE + ARM", **kwargs)
    assert a.p_value == pytest.approx(b.p_value, rel=1e-12)


def test_rerandomization_refuses_arms_outside_the_scheme():
    df = _trial(n_per_site=6).assign(ARM=lambda d: d["ARM"].replace("PBO", "placebo"))
    with pytest.raises(ExactTestError, match="scheme's arms"):
        rerandomization_test(df, "CHG ~ ARM", treatment="ARM", scheme=NS_DUPI)


# ------------------------------------------------------------------------ rank sum


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_sum_without_ties_equals_scipy_exact(alternative, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 1, 9), rng.normal(0.8, 1, 7)
    ours = wilcoxon_rank_sum(x, y, alternative=alternative)
    theirs = stats.mannwhitneyu(x, y, alternative=alternative, method="exact")
    assert ours.u == theirs.statistic
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-10)
    assert not ours.ties


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_rank_sum_with_ties_equals_the_permutation_distribution_of_midranks(alternative):
    x = np.array([3, 5, 5, 6, 2, 5, 7, 4], float)
    y = np.array([1, 2, 2, 3, 5, 4, 1], float)
    ours = wilcoxon_rank_sum(x, y, alternative=alternative)
    ranks = stats.rankdata(np.r_[x, y])
    theirs = stats.permutation_test(
        (ranks[:8], ranks[8:]),
        lambda a, b: np.sum(a),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative=alternative,
    )
    assert ours.ties
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    x = [1.0, 2.0, 2.0, 5.0]
    y = [0.0, 2.0, 3.0]
    diffs = sorted(a - b for a in x for b in y)  # 12 differences: mean of 6th and 7th
    assert wilcoxon_rank_sum(x, y).hodges_lehmann == (diffs[5] + diffs[6]) / 2


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(4, 9),
    n=st.integers(4, 9),
    seed=st.integers(0, 2**32 - 1),
    delta=st.floats(-2, 2),
)
def test_shift_interval_is_the_set_of_shifts_the_exact_test_accepts(m, n, seed, delta):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 1, m), rng.normal(0, 1, n)
    res = wilcoxon_rank_sum(x, y, alpha=0.1)
    assume(np.isfinite(res.lower))
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    assume(np.min(np.abs(diffs - delta)) > 1e-6)  # no tie after shifting
    p = stats.mannwhitneyu(x - delta, y, method="exact").pvalue
    inside = res.lower < delta < res.upper
    assert inside == (p > 0.1)
    assert res.conf_level >= 0.9


def test_tiny_samples_give_an_unbounded_interval():
    res = wilcoxon_rank_sum([1.0, 2.0], [3.0])
    assert (res.lower, res.upper, res.conf_level) == (-math.inf, math.inf, 1.0)


def test_rank_sum_refuses_empty_samples():
    with pytest.raises(ExactTestError, match="sizes 0 and 2"):
        wilcoxon_rank_sum([np.nan], [1.0, 2.0])


# -------------------------------------------------------------------------- Fisher


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(st.integers(0, 12), min_size=4, max_size=4),
    alternative=st.sampled_from(["two-sided", "less", "greater"]),
)
def test_fisher_equals_scipy(cells, alternative):
    table = np.array(cells).reshape(2, 2)
    assume(table.sum(axis=0).min() > 0 and table.sum(axis=1).min() > 0)
    ours = fisher_exact(table, alternative=alternative)
    theirs = stats.fisher_exact(table, alternative=alternative)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    if np.isfinite(theirs.statistic):
        assert ours.odds_ratio == pytest.approx(theirs.statistic)


def _conditional_mle(table):
    """Odds ratio at which the noncentral hypergeometric mean equals the observed count."""
    (a, b), (c, d) = table
    support = np.arange(max(0, a + b + c + d - (b + d) - (c + d)), min(a + b, a + c) + 1)
    base = np.array([math.comb(a + b, k) * math.comb(c + d, a + c - k) for k in support], float)

    def mean_minus_observed(log_or):
        w = base * np.exp(support * log_or)
        return (support * w).sum() / w.sum() - a

    return math.exp(optimize.brentq(mean_minus_observed, -20, 20, xtol=1e-14))


def test_fisher_reproduces_r_tea_tasting():
    # R: fisher.test(matrix(c(3, 1, 1, 3), 2), alternative = "greater")
    res = fisher_exact([[3, 1], [1, 3]], alternative="greater")
    assert res.p_value == pytest.approx(0.2428571, abs=1e-7)
    # R finds the root with uniroot's default tolerance; the exact root agrees to ~2e-6
    assert res.cmle_odds_ratio == pytest.approx(6.408309, rel=1e-5)
    assert res.cmle_odds_ratio == pytest.approx(_conditional_mle([[3, 1], [1, 3]]), rel=1e-8)
    assert res.lower == pytest.approx(0.3135693, rel=1e-4)
    # the exact bound: P(X >= 3 | odds ratio = lower) = 0.05 under the noncentral law
    support = np.arange(0, 5)
    w = np.array([math.comb(4, k) * math.comb(4, 4 - k) for k in support]) * res.lower**support
    assert w[3:].sum() / w.sum() == pytest.approx(0.05, rel=1e-6)
    assert res.upper == math.inf


def test_fisher_refuses_bad_tables():
    with pytest.raises(ExactTestError, match="2x2"):
        fisher_exact([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ExactTestError, match="non-negative"):
        fisher_exact([[1, -2], [3, 4]])
    with pytest.raises(ExactTestError, match="empty"):
        fisher_exact([[0, 0], [3, 4]])
