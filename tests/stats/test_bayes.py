"""Conjugate normal model of the treatment effect, checked by numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from trialdesk.stats.bayes import BayesError, NormalPrior, normal_posterior


def _posterior_by_quadrature(estimate, se, prior, threshold):
    """P(theta < threshold | data): likelihood x prior on a fine grid, trapezoid rule."""
    theta = np.linspace(-60.0, 60.0, 400_001)
    log_density = stats.norm.logpdf(estimate, theta, se) + stats.norm.logpdf(
        theta, prior.mean, prior.sd
    )
    density = np.exp(log_density - log_density.max())
    cumulative = integrate.cumulative_trapezoid(density, theta, initial=0.0)
    return np.interp(threshold, theta, cumulative) / cumulative[-1]


@settings(max_examples=40, deadline=None)
@given(
    estimate=st.floats(-5, 5),
    se=st.floats(0.2, 3),
    prior_mean=st.floats(-3, 3),
    prior_sd=st.floats(0.3, 5),
    threshold=st.floats(-4, 4),
)
def test_closed_form_equals_quadrature(estimate, se, prior_mean, prior_sd, threshold):
    prior = NormalPrior(prior_mean, prior_sd)
    post = normal_posterior(estimate, se, prior)
    assert post.prob_below(threshold) == pytest.approx(
        _posterior_by_quadrature(estimate, se, prior, threshold), abs=1e-6
    )


def test_flat_prior_gives_the_likelihood():
    post = normal_posterior(-1.7, 0.9)
    assert (post.mean, post.sd) == pytest.approx((-1.7, 0.9), rel=1e-14)
    assert post.prob_below(0.0) == pytest.approx(stats.norm.cdf(1.7 / 0.9))


def test_a_wide_prior_tends_to_the_flat_one():
    post = normal_posterior(-1.7, 0.9, NormalPrior(0.0, 1e6))
    assert post.mean == pytest.approx(-1.7, abs=1e-9)


def test_sceptical_prior_puts_the_stated_tail_on_the_hoped_for_effect():
    prior = NormalPrior.sceptical(-2.0, tail=0.05)
    assert stats.norm.cdf(-2.0, prior.mean, prior.sd) == pytest.approx(0.05)
    enthusiastic = NormalPrior.enthusiastic(-2.0, tail=0.1)
    assert stats.norm.sf(0.0, enthusiastic.mean, enthusiastic.sd) == pytest.approx(0.1)


def test_posterior_shrinks_towards_the_prior_and_is_more_precise():
    post = normal_posterior(-3.0, 1.0, NormalPrior.sceptical(-2.0))
    assert -3.0 < post.mean < 0.0
    assert post.sd < min(1.0, NormalPrior.sceptical(-2.0).sd)
    assert post.prob_below(-1.0) + post.prob_above(-1.0) == pytest.approx(1.0)


def test_credible_interval_is_equal_tailed():
    lo, hi = normal_posterior(1.0, 2.0).interval(0.9)
    assert (lo, hi) == pytest.approx((1.0 - 1.6448536 * 2.0, 1.0 + 1.6448536 * 2.0))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: NormalPrior(0.0, 0.0), "sd"),
        (lambda: NormalPrior(math.nan, 1.0), "mean"),
        (lambda: NormalPrior.sceptical(0.0), "effect"),
        (lambda: NormalPrior.sceptical(-2.0, tail=0.7), "tail"),
        (lambda: normal_posterior(1.0, -1.0), "se"),
        (lambda: normal_posterior(1.0, 1.0).interval(1.5), "level"),
    ],
)
def test_invalid_input_is_refused_with_its_name(call, field):
    with pytest.raises(BayesError, match=field):
        call()


def test_posterior_of_an_ancova_difference():
    from trialdesk.stats.ancova import fit_ancova

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"ARM": ["DUPI", "DUPI", "PBO"] * 8, "BASE": rng.normal(8, 2, 24)})
    df["CHG"] = -2.0 * (df["ARM"] == "DUPI") + rng.normal(0, 2.5, 24)
    diff = fit_ancova(df, "CHG ~ BASE + ARM", treatment="ARM", reference="PBO").differences
    post = normal_posterior(diff["estimate"].iloc[0], diff["se"].iloc[0])
    assert post.prob_below(0.0) == pytest.approx(1 - diff["p"].iloc[0] / 2, abs=0.02)
