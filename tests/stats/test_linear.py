"""Least squares on a formula: data preparation and the fit, checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from trialdesk.stats.linear import (
    MissingColumnError,
    ModelSpecError,
    fit_linear_model,
    prepare_data,
)


@pytest.fixture
def trial():
    rng = np.random.default_rng(7)
    n = 40
    df = pd.DataFrame(
        {
            "BASE": rng.normal(8, 2, n),
            "SITE": rng.choice(["TLS", "NCK", "PAR"], n),
            "ARM": rng.choice(["DUPI", "PBO"], n),
        }
    )
    df["CHG"] = -0.4 * df["BASE"] - 1.5 * (df["ARM"] == "DUPI") + rng.normal(0, 1, n)
    df.loc[3, "CHG"] = np.nan
    df.loc[5, "BASE"] = np.nan
    return df


def test_fit_equals_statsmodels_ols(trial):
    ours = fit_linear_model(trial, "CHG ~ SITE + ARM + BASE", levels={"ARM": ["PBO", "DUPI"]})
    theirs = smf.ols("CHG ~ C(SITE) + C(ARM, Treatment('PBO')) + BASE", trial).fit()
    np.testing.assert_allclose(ours.estimate, theirs.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.vcov, theirs.cov_params().to_numpy(), rtol=1e-10)
    assert ours.df_resid == theirs.df_resid
    assert ours.n == theirs.nobs == 38
    np.testing.assert_allclose(
        ours.coefficients["p"].to_numpy(), theirs.pvalues.to_numpy(), rtol=1e-8
    )


def test_type3_equals_statsmodels_anova_without_interactions(trial):
    import statsmodels.api as sm

    ours = fit_linear_model(trial, "CHG ~ BASE + SITE + ARM").type3()
    theirs = sm.stats.anova_lm(smf.ols("CHG ~ BASE + C(SITE) + C(ARM)", trial).fit(), typ=3)
    assert ours.loc["SITE", "F"] == pytest.approx(theirs.loc["C(SITE)", "F"], rel=1e-10)
    assert ours.loc["BASE", "p"] == pytest.approx(theirs.loc["BASE", "PR(>F)"], rel=1e-10)


def test_incomplete_rows_are_dropped_and_counted(trial):
    prepared = prepare_data(trial, "CHG ~ BASE + ARM")
    assert prepared.n_dropped == 2
    assert prepared.frame["CHG"].notna().all()


def test_level_order_sets_the_reference(trial):
    prepared = prepare_data(trial, "CHG ~ ARM", levels={"ARM": ["PBO", "DUPI"]})
    assert prepared.factor_levels()["ARM"] == ("PBO", "DUPI")
    assert fit_linear_model(prepared).names == ("Intercept", "ARM[T.DUPI]")


def test_levels_must_cover_the_data(trial):
    with pytest.raises(ModelSpecError, match="'DUPI'"):
        prepare_data(trial, "CHG ~ ARM", levels={"ARM": ["PBO"]})
    with pytest.raises(ModelSpecError, match="'XYZ'"):
        prepare_data(trial, "CHG ~ ARM", levels={"ARM": ["PBO", "DUPI", "XYZ"]})


def test_all_missing_columns_are_named_at_once(trial):
    with pytest.raises(MissingColumnError) as err:
        fit_linear_model(trial, "CHG ~ AGE + ARM + WEIGHT")
    assert err.value.columns == ("AGE", "WEIGHT")


def test_a_formula_without_tilde_is_refused(trial):
    with pytest.raises(ModelSpecError, match="'~'"):
        fit_linear_model(trial, "CHG")


def test_no_residual_df_is_refused():
    df = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0]})
    with pytest.raises(ModelSpecError, match="no residual df"):
        fit_linear_model(df, "y ~ x")


def test_transforms_of_numpy_are_available(trial):
    fit = fit_linear_model(trial.assign(BASE=trial["BASE"].abs()), "CHG ~ np.log(BASE) + ARM")
    assert "np.log(BASE)" in fit.names
