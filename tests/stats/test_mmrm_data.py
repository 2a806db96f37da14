"""MMRM data preparation: factor levels, reference levels, dropped rows, visit handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trialdesk.stats import fit_mmrm
from trialdesk.stats.mmrm import MmrmSpec, example_data
from trialdesk.stats.mmrm.data import prepare_data


@pytest.fixture
def data() -> pd.DataFrame:
    return example_data()


def test_string_levels_are_sorted_and_the_first_is_the_reference(data: pd.DataFrame) -> None:
    plain = data.assign(visit=data["visit"].astype(str))
    prepared = prepare_data(plain, MmrmSpec("y ~ arm * visit", subject="id", visit="visit"))
    assert prepared.factor_levels["arm"] == ("PBO", "TRT")
    assert prepared.visits == ("V1", "V2", "V3")
    assert "arm[T.TRT]" in prepared.column_names


def test_categorical_order_is_kept(data: pd.DataFrame) -> None:
    reordered = data.assign(
        arm=pd.Categorical(data["arm"], categories=["TRT", "PBO"]),
        visit=pd.Categorical(data["visit"].astype(str), categories=["V3", "V1", "V2"]),
    )
    fit = fit_mmrm(reordered, "y ~ arm * visit", subject="id", visit="visit")
    assert list(fit.covariance.index) == ["V3", "V1", "V2"]
    assert "arm[T.PBO]" in fit.coefficients.index
    assert fit.contrasts("arm", by="visit")["contrast"].unique().tolist() == ["PBO - TRT"]
    default = fit_mmrm(data, "y ~ arm * visit", subject="id", visit="visit")
    assert fit.loglik == pytest.approx(default.loglik, abs=1e-8)
    np.testing.assert_allclose(
        fit.covariance.loc[["V1", "V2", "V3"], ["V1", "V2", "V3"]], default.covariance, rtol=1e-6
    )


def test_unused_categories_of_a_factor_are_dropped(data: pd.DataFrame) -> None:
    extra = data.assign(arm=pd.Categorical(data["arm"], categories=["PBO", "LOW", "TRT"]))
    fit = fit_mmrm(extra, "y ~ arm * visit", subject="id", visit="visit")
    assert fit.data.factor_levels["arm"] == ("PBO", "TRT")


def test_a_numeric_visit_in_the_formula_stays_numeric(data: pd.DataFrame) -> None:
    numeric = data.assign(week=data["visit"].cat.codes * 4)
    fit = fit_mmrm(numeric, "y ~ arm + week", subject="id", visit="week", covariance="ar1")
    assert fit.coefficients.index.tolist() == ["Intercept", "arm[T.TRT]", "week"]
    assert fit.covariance.index.tolist() == ["0", "4", "8"]


def test_boolean_and_formula_coded_factors_get_ls_means(data: pd.DataFrame) -> None:
    extended = data.assign(high=data["base"] > 10, site=(np.arange(len(data)) // 3) % 3 + 1)
    fit = fit_mmrm(extended, "y ~ high + C(site) + arm * visit", subject="id", visit="visit")
    assert fit.lsmeans("high")["high"].tolist() == [False, True]
    assert fit.lsmeans("site")["site"].tolist() == [1, 2, 3]
    assert fit.type3().index.tolist() == ["high", "C(site)", "arm", "visit", "arm:visit"]


def test_ls_means_hold_covariates_at_their_mean(data: pd.DataFrame) -> None:
    fit = fit_mmrm(data, "y ~ base + arm", subject="id", visit="visit")
    coef = fit.coefficients["estimate"]
    mean_base = data.loc[data["y"].notna(), "base"].mean()
    ls = fit.lsmeans("arm").set_index("arm")["estimate"]
    assert ls["PBO"] == pytest.approx(coef["Intercept"] + coef["base"] * mean_base)
    assert ls["TRT"] - ls["PBO"] == pytest.approx(coef["arm[T.TRT]"])


def test_subjects_without_any_outcome_do_not_count(data: pd.DataFrame) -> None:
    fit = fit_mmrm(data, "y ~ arm * visit", subject="id", visit="visit")
    with_outcome = data.loc[data["y"].notna(), "id"].nunique()
    assert fit.n_subjects == with_outcome < data["id"].nunique()
    assert fit.n_obs == int(data["y"].notna().sum())
