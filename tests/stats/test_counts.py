"""Rate models: closed-form Poisson oracle, statsmodels' own NB2 fit, edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.discrete.discrete_model import NegativeBinomial

from trialdesk.stats.ancova import fit_ancova
from trialdesk.stats.counts import CountModelError, fit_rate_model


@pytest.fixture(scope="module")
def overdispersed():
    rng = np.random.default_rng(3)
    n = 300
    arm = rng.choice(["DUPI", "PBO"], n)
    site = rng.choice(["TLS", "NCK"], n)
    days = rng.uniform(80, 120, n)
    mu = days / 100 * np.exp(0.8 - 0.6 * (arm == "DUPI") + 0.3 * (site == "TLS"))
    count = rng.negative_binomial(1 / 0.7, 1 / (1 + 0.7 * mu))
    return pd.DataFrame({"N": count, "ARM": arm, "SITE": site, "DAYS": days})


def test_poisson_rate_ratio_equals_the_ratio_of_crude_rates():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "N": rng.poisson(2.0, 24),
            "DAYS": rng.uniform(90, 120, 24),
            "ARM": ["DUPI", "DUPI", "PBO"] * 8,
        }
    )
    fit = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM", reference="PBO")
    rate = df.groupby("ARM").apply(lambda g: g["N"].sum() / g["DAYS"].sum(), include_groups=False)
    assert fit.rate_ratios["ratio"].iloc[0] == pytest.approx(rate["DUPI"] / rate["PBO"], rel=1e-8)
    # Wald SE of a log rate ratio with one factor: sqrt(1/events_1 + 1/events_0)
    events = df.groupby("ARM")["N"].sum()
    se = math.sqrt(1 / events["DUPI"] + 1 / events["PBO"])
    assert fit.coefficients.loc["ARM[T.DUPI]", "se"] == pytest.approx(se, rel=1e-6)
    lower = rate["DUPI"] / rate["PBO"] * math.exp(-1.959963984540054 * se)
    assert fit.rate_ratios["lower"].iloc[0] == pytest.approx(lower, rel=1e-6)


def test_negative_binomial_equals_statsmodels_maximum_likelihood(overdispersed):
    df = overdispersed
    fit = fit_rate_model(
        df, "N ~ SITE + ARM", exposure="DAYS", treatment="ARM", reference="PBO",
        family="negative-binomial",
    )  # fmt: skip
    x = np.column_stack([np.ones(len(df)), df["SITE"] == "TLS", df["ARM"] == "DUPI"]).astype(float)
    theirs = NegativeBinomial(
        df["N"].to_numpy(), x, loglike_method="nb2", offset=np.log(df["DAYS"].to_numpy())
    ).fit(disp=0, method="newton", maxiter=200)
    assert theirs.mle_retvals["converged"]
    np.testing.assert_allclose(fit.coefficients["estimate"], theirs.params[:3], rtol=1e-5)
    assert fit.dispersion == pytest.approx(theirs.params[3], rel=1e-4)
    assert fit.loglik == pytest.approx(theirs.llf, rel=1e-9)
    # expected (ours, as glm.nb) versus observed information (statsmodels): close, not equal
    np.testing.assert_allclose(fit.coefficients["se"], theirs.bse[:3], rtol=0.01)
    assert fit.converged and fit.messages == ()
    assert fit.aic == pytest.approx(theirs.aic, rel=1e-9)


def test_negative_binomial_recovers_the_simulated_rate_ratio(overdispersed):
    fit = fit_rate_model(
        overdispersed, "N ~ SITE + ARM", exposure="DAYS", treatment="ARM", reference="PBO",
        family="negative-binomial",
    )  # fmt: skip
    row = fit.rate_ratios.iloc[0]
    assert row["lower"] < math.exp(-0.6) < row["upper"]
    poisson = fit_rate_model(
        overdispersed, "N ~ SITE + ARM", exposure="DAYS", treatment="ARM", reference="PBO"
    )
    assert poisson.pearson_dispersion > 1.5  # overdispersion shows in the Poisson fit
    assert poisson.coefficients["se"].iloc[2] < fit.coefficients["se"].iloc[2]


def test_no_overdispersion_falls_back_to_poisson_and_says_so():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"N": rng.poisson(3.0, 60), "DAYS": np.full(60, 100.0), "ARM": ["A", "B"] * 30}
    )
    df["N"] = np.minimum(df["N"], 4)  # underdispersed
    nb = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM", family="negative-binomial")
    poisson = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM")
    assert nb.dispersion is None
    assert "lower bound" in nb.messages[0]
    assert nb.rate_ratios["ratio"].iloc[0] == pytest.approx(poisson.rate_ratios["ratio"].iloc[0])


def test_exposure_scales_rates_not_ratios():
    rng = np.random.default_rng(5)
    df = pd.DataFrame(
        {"N": rng.poisson(2, 30), "DAYS": rng.uniform(50, 150, 30), "ARM": ["A", "B", "C"] * 10}
    )
    days = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM")
    weeks = fit_rate_model(
        df.assign(DAYS=df["DAYS"] / 7), "N ~ ARM", exposure="DAYS", treatment="ARM"
    )
    pd.testing.assert_frame_equal(days.rate_ratios, weeks.rate_ratios, rtol=1e-8)
    assert days.rate_ratios["contrast"].tolist() == ["B / A", "C / A"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"N": -1}, "non-negative integer"),
        ({"N": 1.5}, "non-negative integer"),
        ({"DAYS": 0.0}, "'DAYS' must be > 0"),
    ],
)
def test_invalid_counts_and_exposure_are_refused(change, match):
    df = pd.DataFrame({"N": [1.0, 2, 0, 3], "DAYS": [10.0, 12, 11, 9], "ARM": list("ABAB")})
    for column, value in change.items():
        df.loc[0, column] = value
    with pytest.raises(CountModelError, match=match):
        fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM")


def test_unknown_family_is_refused():
    df = pd.DataFrame({"N": [1, 2, 0, 3], "DAYS": [10.0, 12, 11, 9], "ARM": list("ABAB")})
    with pytest.raises(CountModelError, match="'zip'"):
        fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM", family="zip")


def test_corticosteroid_grams_are_analysed_by_ancova():
    rng = np.random.default_rng(8)
    df = pd.DataFrame(
        {
            "ARM": ["DUPI", "DUPI", "PBO"] * 8,
            "SITE": np.repeat(["TLS", "NCK"], 12),
            "BASE_GRAMS": rng.gamma(4, 25, 24),
        }
    )
    df["GRAMS"] = 0.8 * df["BASE_GRAMS"] - 30 * (df["ARM"] == "DUPI") + rng.normal(0, 10, 24)
    fit = fit_ancova(df, "GRAMS ~ BASE_GRAMS + SITE + ARM", treatment="ARM", reference="PBO")
    row = fit.differences.iloc[0]
    assert row["lower"] < -30 < row["upper"]
    assert row["df"] == 24 - 4


@pytest.mark.parametrize("family", ["poisson", "negative-binomial"])
@pytest.mark.parametrize("empty_arm", ["DUPI", "PBO"])
def test_an_arm_without_events_is_not_estimable_and_says_so(family, empty_arm):
    df = pd.DataFrame(
        {
            "N": [0, 0, 0, 0, 0, 0, 1, 3, 0, 2, 1, 4],
            "DAYS": [112.0, 110, 115, 98, 112, 113, 111, 112, 105, 112, 114, 112],
            "ARM": [empty_arm] * 6 + [{"DUPI": "PBO", "PBO": "DUPI"}[empty_arm]] * 6,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow on the way
        fit = fit_rate_model(
            df, "N ~ ARM", exposure="DAYS", treatment="ARM", reference="PBO", family=family
        )
    row = fit.rate_ratios.iloc[0]
    assert row["contrast"] == "DUPI / PBO"
    assert all(math.isnan(row[k]) for k in ("ratio", "lower", "upper", "p"))
    assert any(f"no events in ARM={empty_arm!r}" in m for m in fit.messages)


def test_events_in_every_arm_give_no_separation_message():
    df = pd.DataFrame(
        {"N": [0, 1, 0, 2, 1, 3], "DAYS": [100.0] * 6, "ARM": ["DUPI"] * 3 + ["PBO"] * 3}
    )
    fit = fit_rate_model(df, "N ~ ARM", exposure="DAYS", treatment="ARM", reference="PBO")
    assert not any("no events" in m for m in fit.messages)
    assert fit.rate_ratios["ratio"].iloc[0] == pytest.approx((1 / 300) / (6 / 300))  # crude rates
