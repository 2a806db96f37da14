"""Rubin's rules against hand-computed values; jump to reference against its closed forms.

No external reference program for reference-based imputation is available beside the code
(R's rbmi / mice are not installed here), so the tests check what can be derived by hand:

* Rubin's rules on a small example computed with fractions (Rubin 1987; Barnard and Rubin 1999,
  as R's ``mice::pool`` computes them);
* with no missing outcome, jump to reference *is* the complete-data ANCOVA, exactly;
* the vectorized analysis of the completed data sets equals :func:`fit_ancova` on each one;
* the ANCOVA estimate is linear in the outcome, so over many imputations the pooled estimate
  converges to the ANCOVA of the data with each missing outcome replaced by the reference
  model's prediction (checked within 4 Monte Carlo standard errors);
* imputation never touches an observed value, a seed reproduces a result exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialdesk.stats.ancova import fit_ancova
from trialdesk.stats.linear import fit_linear_model
from trialdesk.stats.multiple_imputation import (
    ImputationError,
    jump_to_reference,
    rubin_rules,
)

FORMULA = "CHG ~ BASE + SITEID + TRT01P"
ARMS = ["DUPI", "PBO"]


def _trial(n: int = 24, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "USUBJID": [f"S{i:03d}" for i in range(n)],
            "BASE": rng.integers(4, 12, n).astype(float),
            "SITEID": np.where(np.arange(n) % 2 == 0, "TLS", "NCK"),
            "TRT01P": ["DUPI", "DUPI", "PBO"] * (n // 3),
        }
    )
    effect = np.where(frame["TRT01P"] == "DUPI", -2.0, 0.0)
    frame["CHG"] = 1.0 - 0.4 * frame["BASE"] + effect + rng.normal(0, 1, n)
    return frame


def _with_missing(frame: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    out = frame.copy()
    out.loc[rows, "CHG"] = np.nan
    return out


def _j2r(data: pd.DataFrame, **kwargs):
    options = {"treatment": "TRT01P", "reference": "PBO", "m": 50, "seed": 7, "levels": ARMS}
    options.update(kwargs)
    return jump_to_reference(data, FORMULA, **options)


# ---------------------------------------------------------------------------------------------
# Rubin's rules


def test_rubin_rules_on_a_hand_computed_example():
    # q = 1, 2, 3 and u = 0.5 each, m = 3:
    #   Q = 2, U = 1/2, B = 1, T = 1/2 + (4/3) 1 = 11/6,
    #   r = (4/3) / (1/2) = 8/3, lambda = (4/3) / (11/6) = 8/11,
    #   Rubin df = (m - 1) / lambda^2 = 2 * 121/64 = 121/32,
    #   Barnard-Rubin with df_com = 10: df_obs = 11/13 * 10 * 3/11 = 30/13,
    #   df = (121/32 * 30/13) / (121/32 + 30/13) = 3630/2533.
    classic = rubin_rules([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], df_method="rubin")
    assert classic.estimate == 2.0 and classic.m == 3
    assert classic.within == pytest.approx(0.5, abs=1e-15)
    assert classic.between == pytest.approx(1.0, abs=1e-15)
    assert classic.total == pytest.approx(11 / 6, rel=1e-14)
    assert classic.se == pytest.approx(math.sqrt(11 / 6), rel=1e-14)
    assert classic.riv == pytest.approx(8 / 3, rel=1e-14)
    assert classic.lambda_ == pytest.approx(8 / 11, rel=1e-14)
    assert classic.df == pytest.approx(121 / 32, rel=1e-13)
    t_crit = stats.t.ppf(0.975, 121 / 32)
    assert classic.lower == pytest.approx(2 - t_crit * math.sqrt(11 / 6), rel=1e-12)
    assert classic.upper == pytest.approx(2 + t_crit * math.sqrt(11 / 6), rel=1e-12)
    assert classic.t == pytest.approx(2 / math.sqrt(11 / 6), rel=1e-14)
    assert classic.p == pytest.approx(2 * stats.t.sf(2 / math.sqrt(11 / 6), 121 / 32), rel=1e-12)

    small = rubin_rules([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], df_complete=10)
    assert small.df_method == "barnard-rubin"
    assert small.df == pytest.approx(3630 / 2533, rel=1e-13)
    assert small.total == classic.total and small.estimate == classic.estimate


def test_rubin_rules_second_example_with_unequal_variances():
    # q = 0.4, 0.8, 0.6, 1.0 and u = 0.04, 0.06, 0.05, 0.05, m = 4:
    #   Q = 0.7, U = 0.05, B = (0.09 + 0.01 + 0.01 + 0.09) / 3 = 1/15,
    #   T = 0.05 + (5/4)(1/15) = 0.05 + 1/12 = 2/15, lambda = (1/12)/(2/15) = 5/8,
    #   Rubin df = 3 / (25/64) = 192/25 = 7.68.
    pooled = rubin_rules([0.4, 0.8, 0.6, 1.0], [0.04, 0.06, 0.05, 0.05], df_method="rubin")
    assert pooled.estimate == pytest.approx(0.7, rel=1e-14)
    assert pooled.between == pytest.approx(1 / 15, rel=1e-13)
    assert pooled.total == pytest.approx(2 / 15, rel=1e-13)
    assert pooled.lambda_ == pytest.approx(5 / 8, rel=1e-13)
    assert pooled.df == pytest.approx(7.68, rel=1e-12)
    # Barnard-Rubin never exceeds the complete-data df nor Rubin's df.
    br = rubin_rules([0.4, 0.8, 0.6, 1.0], [0.04, 0.06, 0.05, 0.05], df_complete=20)
    assert br.df < min(20, pooled.df)


def test_identical_imputations_pool_to_the_complete_data_values():
    pooled = rubin_rules([1.5] * 5, [0.25] * 5, df_method="rubin")
    assert (pooled.estimate, pooled.se, pooled.between, pooled.lambda_) == (1.5, 0.5, 0.0, 0.0)
    assert math.isinf(pooled.df)
    assert pooled.p == pytest.approx(2 * stats.norm.sf(3.0), rel=1e-12)
    br = rubin_rules([1.5] * 5, [0.25] * 5, df_complete=20)
    # Barnard-Rubin with B = 0: df_obs = (20 + 1) / (20 + 3) * 20, as mice computes it.
    assert br.df == pytest.approx(21 / 23 * 20, rel=1e-14)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1.0], [0.1]), {"df_complete": 5}, "estimates: 1 imputation"),
        (([1.0, 2.0], [0.1]), {"df_complete": 5}, "variances: 1 value"),
        (([1.0, float("nan")], [0.1, 0.1]), {"df_complete": 5}, "estimates: nan"),
        (([1.0, 2.0], [0.1, -0.1]), {"df_complete": 5}, "variances: -0.1"),
        (([1.0, 2.0], [0.1, 0.1]), {}, "df_complete: None"),
        (([1.0, 2.0], [0.1, 0.1]), {"df_complete": 0}, "df_complete: 0"),
        (([1.0, 2.0], [0.1, 0.1]), {"df_method": "reiter"}, "df_method: 'reiter'"),
        (([1.0, 2.0], [0.1, 0.1]), {"df_method": "rubin", "alpha": 1.5}, "alpha: 1.5"),
    ],
)
def test_rubin_rules_refuses_bad_input_naming_it(args, kwargs, message):
    with pytest.raises(ImputationError, match=message):
        rubin_rules(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Jump to reference


def test_with_no_missing_outcome_it_is_the_plain_ancova_exactly():
    data = _trial()
    result = _j2r(data)
    plain = fit_ancova(data, FORMULA, treatment="TRT01P", reference="PBO", levels=ARMS)
    columns = ["contrast", "estimate", "se", "df", "t", "p", "lower", "upper"]
    pd.testing.assert_frame_equal(result.differences[columns], plain.differences[columns])
    assert result.n_imputed == {"DUPI": 0, "PBO": 0} and result.n == 24
    assert result.df_complete == 20 and result.differences["lambda"].tolist() == [0.0]


def test_each_completed_data_set_is_analysed_as_fit_ancova_does():
    data = _with_missing(_trial(), [0, 1, 4, 2, 5])
    result = _j2r(data, m=5)
    assert result.estimates.shape == (5, 1) and result.completed.shape == (24, 5)
    for j in range(5):
        completed = data.assign(CHG=result.completed[:, j])
        fit = fit_ancova(completed, FORMULA, treatment="TRT01P", reference="PBO", levels=ARMS)
        row = fit.differences.iloc[0]
        assert result.estimates[j, 0] == pytest.approx(row["estimate"], rel=1e-10)
        assert math.sqrt(result.variances[j, 0]) == pytest.approx(row["se"], rel=1e-10)
    pooled = rubin_rules(result.estimates[:, 0], result.variances[:, 0], df_complete=20)
    assert result.differences.iloc[0]["estimate"] == pooled.estimate
    assert result.differences.iloc[0]["df"] == pooled.df


def test_observed_outcomes_are_never_changed_and_missing_ones_always_filled():
    data = _with_missing(_trial(), [0, 1, 4, 2])
    result = _j2r(data)
    observed = data["CHG"].notna().to_numpy()
    for j in range(result.m):
        assert np.array_equal(result.completed[observed, j], data["CHG"].to_numpy()[observed])
    assert np.isfinite(result.completed).all()
    assert result.n_imputed == {"DUPI": 3, "PBO": 1}
    # Imputed values differ between imputations (they are draws, not a single fill).
    assert len(set(result.completed[0].round(12))) == result.m


def test_a_seed_reproduces_the_result_and_another_seed_changes_it():
    data = _with_missing(_trial(), [0, 1, 4, 2])
    first, again, other = _j2r(data, seed=11), _j2r(data, seed=11), _j2r(data, seed=12)
    pd.testing.assert_frame_equal(first.differences, again.differences)
    assert np.array_equal(first.completed, again.completed)
    assert first.differences["estimate"].iloc[0] != other.differences["estimate"].iloc[0]
    assert first.seed == 11


def test_many_imputations_converge_to_the_reference_prediction():
    # The ANCOVA estimate is linear in the outcome and each draw has mean x_i beta_hat (the
    # reference model's prediction), so the mean over imputations tends to the ANCOVA of the
    # data with every missing outcome replaced by that prediction.
    data = _with_missing(_trial(n=30, seed=3), [0, 1, 3, 4, 6, 2, 5])
    result = _j2r(data, m=20000, seed=5)
    reference = data.loc[(data["TRT01P"] == "PBO") & data["CHG"].notna()]
    model = fit_linear_model(reference, "CHG ~ BASE + SITEID")
    missing = data["CHG"].isna()
    filled = data.copy()
    filled.loc[missing, "CHG"] = model.design(data.loc[missing]) @ model.estimate
    oracle = fit_ancova(filled, FORMULA, treatment="TRT01P", reference="PBO", levels=ARMS)
    target = oracle.differences["estimate"].iloc[0]
    pooled = result.pooled["DUPI - PBO"]
    mc_se = math.sqrt(pooled.between / pooled.m)
    assert abs(pooled.estimate - target) < 4 * mc_se
    # J2R pulls the imputed active subjects to the reference: the effect shrinks towards 0
    # compared with the complete-case estimate on these data.
    complete = fit_ancova(data.dropna(), FORMULA, treatment="TRT01P", reference="PBO", levels=ARMS)
    assert complete.differences["estimate"].iloc[0] < pooled.estimate < 0
    assert pooled.se > oracle.differences["se"].iloc[0]


def test_barnard_rubin_and_rubin_df_differ_only_in_the_df():
    data = _with_missing(_trial(), [0, 1, 4, 2])
    br, classic = _j2r(data), _j2r(data, df_method="rubin")
    assert br.differences["estimate"].iloc[0] == classic.differences["estimate"].iloc[0]
    assert br.differences["se"].iloc[0] == classic.differences["se"].iloc[0]
    assert br.differences["df"].iloc[0] < min(20, classic.differences["df"].iloc[0])


def test_rows_without_covariates_are_excluded_and_counted():
    data = _with_missing(_trial(), [0, 1])
    data.loc[3, "BASE"] = np.nan
    result = _j2r(data)
    assert result.n == 23 and result.n_excluded == 1


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (None, {"m": 1}, "m: 1 imputations"),
        (None, {"df_method": "reiter"}, "df_method: 'reiter'"),
        ("no_reference", {}, "TRT01P: no subject of the reference 'PBO'"),
        ("new_site", {}, "SITEID: 'LYS' has no observed CHG in the reference arm"),
        ("two_references", {}, "TRT01P: the imputation model 'CHG ~ BASE \\+ SITEID' cannot"),
    ],
)
def test_jump_to_reference_refuses_what_it_cannot_impute(change, kwargs, message):
    data = _with_missing(_trial(), [0, 1])
    if change == "no_reference":
        data.loc[data["TRT01P"] == "PBO", "CHG"] = np.nan
    if change == "two_references":
        data.loc[(data["TRT01P"] == "PBO") & (data.index > 8), "CHG"] = np.nan
    if change == "new_site":
        data.loc[0, "SITEID"] = "LYS"
    with pytest.raises(ImputationError, match=message):
        _j2r(data, **kwargs)


def test_the_treatment_must_be_a_main_effect_of_the_formula():
    data = _with_missing(_trial(), [0, 1])
    with pytest.raises(ImputationError, match="involves the treatment"):
        jump_to_reference(
            data,
            "CHG ~ BASE * TRT01P + SITEID",
            treatment="TRT01P",
            reference="PBO",
            m=5,
            seed=1,
        )
    with pytest.raises(ImputationError, match="does not contain the treatment"):
        jump_to_reference(data, "CHG ~ BASE", treatment="TRT01P", reference="PBO", m=5, seed=1)
