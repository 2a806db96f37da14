"""Trial simulator: analytic power, least squares per trial, permutation test, bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from trialdesk.stats.exact import permutation_test
from trialdesk.stats.power import (
    AnalysisPlan,
    Scenario,
    SimulationError,
    TrialDesign,
    _permutation_block,
    batched_ols,
    simulate_trials,
)

NS_DUPI = TrialDesign.balanced(24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(3, 6))
T_TEST = AnalysisPlan(adjust_baseline=False, adjust_site=False, outcome="followup")


def test_simulated_t_test_power_matches_the_analytic_value():
    # blocks of 6 only: every trial has exactly 16 active and 8 control subjects
    design = TrialDesign.balanced(24, sites=("TLS", "NCK"), ratio=(2, 1), block_sizes=(6,))
    result = simulate_trials(design, Scenario(effect=-2.0, sd=2.5), 200_000, 11, analysis=T_TEST)
    analytic = TTestIndPower().power(effect_size=2.0 / 2.5, nobs1=16, ratio=0.5, alpha=0.05)
    ncp = 2.0 / (2.5 * math.sqrt(1 / 16 + 1 / 8))
    crit = stats.t.isf(0.025, 22)
    noncentral = stats.nct.sf(crit, 22, ncp) + stats.nct.cdf(-crit, 22, ncp)
    assert analytic == pytest.approx(noncentral, abs=1e-6)
    assert abs(result.power - analytic) < 4 * result.power_mcse
    assert abs(result.type1_error - 0.05) < 4 * result.type1_mcse
    assert result.n_valid == result.n_sims


def test_ancova_is_unbiased_and_its_interval_covers():
    result = simulate_trials(NS_DUPI, Scenario(effect=-2.0, sd=2.5, dropout=0.1), 100_000, 3)
    assert abs(result.bias) < 4 * result.bias_mcse
    assert abs(result.coverage - 0.95) < 4 * result.coverage_mcse
    assert result.mean_se == pytest.approx(result.empirical_sd, rel=0.03)
    assert result.coverage == pytest.approx(1 - result.type1_error * result.n_sims / result.n_valid)


def test_baseline_adjustment_gains_power_when_baseline_predicts():
    scenario = Scenario(effect=-2.0, sd=2.5, correlation=0.7)
    adjusted = simulate_trials(NS_DUPI, scenario, 50_000, 5)
    unadjusted = simulate_trials(
        NS_DUPI,
        scenario,
        50_000,
        5,
        analysis=AnalysisPlan(adjust_baseline=False, outcome="followup"),
    )
    # residual SD 2.5 * sqrt(1 - 0.7**2) = 1.79 instead of 2.5
    assert adjusted.power > unadjusted.power + 0.15


def _random_trials(n_trials, n, p, seed, dropout=0.2):
    rng = np.random.default_rng(seed)
    x = np.concatenate(
        [np.ones((n_trials, n, 1)), rng.normal(size=(n_trials, n, p - 2)),
         rng.integers(0, 2, (n_trials, n, 1))], axis=2,
    )  # fmt: skip
    y = rng.normal(size=(n_trials, n))
    w = (rng.random((n_trials, n)) > dropout).astype(float)
    return x, y, w


def test_batched_least_squares_equals_one_fit_per_trial():
    x, y, w = _random_trials(25, 24, 4, seed=1)
    estimate, se, df = batched_ols(x, y, w)
    for i in range(25):
        keep = w[i] == 1
        xi, yi = x[i][keep], y[i][keep]
        beta, *_ = np.linalg.lstsq(xi, yi, rcond=None)
        resid = yi - xi @ beta
        cov = resid @ resid / (keep.sum() - 4) * np.linalg.inv(xi.T @ xi)
        assert estimate[i] == pytest.approx(beta[-1], rel=1e-9, abs=1e-12)
        assert se[i] == pytest.approx(math.sqrt(cov[-1, -1]), rel=1e-9)
        assert df[i] == keep.sum() - 4


def test_singular_trials_are_flagged_not_fatal():
    x, y, w = _random_trials(3, 6, 3, seed=2, dropout=0.0)
    x[0, :, -1] = 1.0  # everybody treated: aliased with the intercept
    w[1, :4] = 0.0  # two subjects left for three coefficients
    estimate, se, _ = batched_ols(x, y, w)
    assert np.isnan(estimate[:2]).all() and np.isnan(se[:2]).all()
    assert np.isfinite(estimate[2])


def test_heavy_dropout_leaves_invalid_trials_out():
    tiny = TrialDesign.balanced(6, sites=("A", "B"), ratio=(2, 1), block_sizes=(3,))
    result = simulate_trials(tiny, Scenario(effect=1.0, sd=1.0, dropout=0.5), 5_000, 8)
    assert 0 < result.n_valid < result.n_sims
    assert 0 <= result.power <= 1


def test_permutation_decisions_match_the_exact_permutation_test():
    x, y, w = _random_trials(40, 12, 3, seed=4, dropout=0.15)
    y = y - 1.2 * x[..., -1]  # some trials with an effect
    rejected = _permutation_block(
        x, y0=y, w=w, effect=0.0, n_perm=1999, alpha=0.05, rng=np.random.default_rng(0)
    )[:, 0]
    checked = 0
    for i in range(40):
        keep = w[i] == 1
        df = pd.DataFrame({"y": y[i][keep], "b": x[i][keep, 1], "arm": x[i][keep, 2]})
        if df["arm"].nunique() < 2:
            continue
        exact = permutation_test(df, "y ~ b + arm", treatment="arm", reference=0.0).p_value
        if exact < 0.03 or exact > 0.08:  # away from alpha, Monte Carlo error ~0.005
            assert rejected[i] == (exact <= 0.05)
            checked += 1
    assert checked >= 25


def test_permutation_test_holds_its_level_in_simulated_trials():
    result = simulate_trials(
        NS_DUPI, Scenario(effect=-2.0, sd=2.5, dropout=0.1), 2_000, 9,
        analysis=AnalysisPlan(permutation_resamples=199),
    )  # fmt: skip
    assert result.permutation_type1 < 0.05 + 4 * result.permutation_type1_mcse
    assert abs(result.permutation_power - result.power) < 0.05


def test_same_seed_same_result_whatever_the_number_of_workers():
    many = 3 * (1 << 16) // 2  # two chunks
    a = simulate_trials(NS_DUPI, Scenario(effect=-1.0, sd=2.5), many, 21)
    b = simulate_trials(NS_DUPI, Scenario(effect=-1.0, sd=2.5), many, 21, workers=2)
    assert (a.power, a.bias, a.coverage) == (b.power, b.bias, b.coverage)
    c = simulate_trials(NS_DUPI, Scenario(effect=-1.0, sd=2.5), many, 22)
    assert c.bias != a.bias


def test_a_missing_seed_is_drawn_and_recorded():
    result = simulate_trials(NS_DUPI, Scenario(effect=-1.0, sd=2.5), 500)
    again = simulate_trials(NS_DUPI, Scenario(effect=-1.0, sd=2.5), 500, result.seed)
    assert again.power == result.power


def test_power_curve_uses_the_same_trials():
    result = simulate_trials(NS_DUPI, Scenario(effect=-2.0, sd=2.5), 20_000, 4)
    curve = result.power_curve([0.0, -1.0, -2.0, -3.0])
    assert curve["power"].iloc[0] == result.type1_error
    assert curve["power"].iloc[2] == result.power
    assert curve["power"].is_monotonic_increasing


def test_progress_reports_every_trial():
    seen = []
    simulate_trials(NS_DUPI, Scenario(effect=-2.0, sd=2.5), 70_000, 1, progress=seen.append)
    assert sum(seen) == 70_000 and len(seen) == 2


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Scenario(effect=1.0, sd=0.0), "sd"),
        (lambda: Scenario(effect=1.0, sd=1.0, correlation=1.0), "correlation"),
        (lambda: Scenario(effect=1.0, sd=1.0, dropout=1.0), "dropout"),
        (lambda: AnalysisPlan(outcome="last"), "outcome"),
        (lambda: AnalysisPlan(alpha=0.0), "alpha"),
        (
            lambda: TrialDesign.balanced(1, sites=("A", "B"), ratio=(1, 1), block_sizes=(2,)),
            "n_subjects",
        ),
        (lambda: simulate_trials(NS_DUPI, Scenario(effect=1.0, sd=1.0), 0), "n_sims"),
    ],
)
def test_invalid_input_is_refused(build, match):
    with pytest.raises(SimulationError, match=match):
        build()


def test_progress_is_reported_within_a_chunk_when_permuting():
    seen = []
    simulate_trials(
        NS_DUPI, Scenario(effect=-2.0, sd=2.5), 1_000, 1, progress=seen.append,
        analysis=AnalysisPlan(permutation_resamples=999),
    )  # fmt: skip
    assert sum(seen) == 1_000 and len(seen) > 1
