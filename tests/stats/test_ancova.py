"""ANCOVA against CDISC pilot Table 14-3.01 and the glucose ANCOVA (R lm + emmeans)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialdesk.stats.ancova import dose_response, fit_ancova
from trialdesk.stats.linear import (
    MissingColumnError,
    ModelSpecError,
    NonNumericOutcomeError,
    SingularDesignError,
)

REL = 1e-9  # R wrote 15-17 significant digits; both sides solve the same least squares


@pytest.fixture(scope="module")
def reference(refdata_dir):
    return json.loads((refdata_dir / "r-results" / "pilot_ancova.json").read_text())


@pytest.fixture(scope="module")
def adas_week24(refdata_dir):
    adas = pd.read_csv(refdata_dir / "cdiscpilot01" / "adam" / "adadas.csv", dtype={"SITEGR1": str})
    pop = adas.query(
        "EFFFL == 'Y' and ITTFL == 'Y' and PARAMCD == 'ACTOT' and ANL01FL == 'Y' and AVISITN == 24"
    ).copy()
    pop["TRTPCD"] = pop["TRTPN"].map({0: "Pbo", 54: "Xan_Lo", 81: "Xan_Hi"})
    return pop


@pytest.fixture(scope="module")
def glucose_week20(refdata_dir):
    adam = refdata_dir / "cdiscpilot01" / "adam"
    adsl = pd.read_csv(adam / "adsl.csv")
    lab = pd.read_csv(adam / "adlbc_gluc.csv")
    itt = adsl.loc[adsl["ITTFL"] == "Y", ["STUDYID", "USUBJID"]]
    lab = lab.merge(itt, on=["STUDYID", "USUBJID"])
    lab = lab[lab["TRTPN"].isin([0, 81]) & (lab["PARAMCD"] == "GLUC") & lab["AVISITN"].notna()]
    lab = lab.assign(TRTPN=np.where(lab["TRTPN"] == 0, 99, lab["TRTPN"]))
    return lab[lab["AVISITN"] == 20]


def _pilot_fit(data, weights="equal"):
    return fit_ancova(
        data,
        "CHG ~ TRTPCD + SITEGR1 + BASE",
        treatment="TRTPCD",
        reference="Pbo",
        levels=["Xan_Hi", "Xan_Lo", "Pbo"],
        weights=weights,
    )


def test_population_has_the_published_size(adas_week24):
    assert adas_week24["TRTPCD"].value_counts().to_dict() == {
        "Xan_Lo": 81,
        "Pbo": 79,
        "Xan_Hi": 74,
    }


def test_dose_response_reproduces_table_14_3_01(adas_week24, reference):
    ref = reference["dose_response"]
    result = dose_response(adas_week24, "CHG ~ TRTPN + SITEGR1 + BASE", dose="TRTPN")
    assert result.slope == pytest.approx(ref["slope_TRTPN"], rel=REL)
    assert result.se == pytest.approx(ref["se_TRTPN"], rel=REL)
    assert result.F == pytest.approx(ref["F"], rel=REL)
    assert (result.num_df, result.den_df) == (ref["num_df"], ref["den_df"])
    assert result.p == pytest.approx(ref["p_value"], rel=REL)
    assert round(result.p, 3) == reference["published_table_14_3_01"]["p_dose_response"]


def test_type3_of_the_dose_model_matches_drop1(adas_week24, reference):
    table = dose_response(adas_week24, "CHG ~ TRTPN + SITEGR1 + BASE", dose="TRTPN").model.type3()
    for term, ref in reference["dose_response"]["type3_all_terms"].items():
        assert table.loc[term, "num_df"] == ref["df"]
        assert table.loc[term, "sum_sq"] == pytest.approx(ref["sum_sq"], rel=REL)
        assert table.loc[term, "F"] == pytest.approx(ref["F"], rel=REL)
        assert table.loc[term, "p"] == pytest.approx(ref["p"], rel=REL)


@pytest.mark.parametrize(
    ("weights", "key"),
    [("equal", "lsmeans_equal_weights"), ("proportional", "lsmeans_proportional")],
)
def test_lsmeans_match_emmeans(adas_week24, reference, weights, key):
    lsmeans = _pilot_fit(adas_week24, weights).lsmeans.set_index("level")
    for ref in reference[key]:
        row = lsmeans.loc[ref["arm"]]
        assert row["estimate"] == pytest.approx(ref["lsmean"], rel=REL)
        assert row["se"] == pytest.approx(ref["se"], rel=REL)
        assert row["df"] == ref["df"]
        assert row["lower"] == pytest.approx(ref["lower95"], rel=REL)
        assert row["upper"] == pytest.approx(ref["upper95"], rel=REL)


@pytest.mark.parametrize("weights", ["equal", "proportional"])
def test_pairwise_differences_reproduce_table_14_3_01(adas_week24, reference, weights):
    pairwise = _pilot_fit(adas_week24, weights).pairwise().set_index("contrast")
    for ref in reference["pairwise_equal_weights"]:
        row = pairwise.loc[ref["contrast"]]
        for ours, theirs in [("estimate", "estimate"), ("se", "se"), ("t", "t"), ("p", "p")]:
            assert row[ours] == pytest.approx(ref[theirs], rel=REL)
        assert row["lower"] == pytest.approx(ref["lower95"], rel=REL)
        assert row["upper"] == pytest.approx(ref["upper95"], rel=REL)
    published = reference["published_table_14_3_01"]
    for label, key in [
        ("Xan_Lo - Pbo", "low_vs_placebo"),
        ("Xan_Hi - Pbo", "high_vs_placebo"),
        ("Xan_Hi - Xan_Lo", "high_vs_low"),
    ]:
        assert round(pairwise.loc[label, "p"], 3) == published[key]["p"]
        assert round(pairwise.loc[label, "estimate"], 1) == published[key]["diff"]
        assert round(pairwise.loc[label, "se"], 2) == published[key]["se"]
        assert [round(pairwise.loc[label, b], 1) for b in ("lower", "upper")] == published[key][
            "ci"
        ]


def test_differences_are_against_the_reference(adas_week24):
    diff = _pilot_fit(adas_week24).differences
    assert diff["contrast"].tolist() == ["Xan_Hi - Pbo", "Xan_Lo - Pbo"]


def test_glucose_ancova_reproduces_the_published_table(glucose_week20, reference):
    ref = reference["glucose_week20"]
    fit = fit_ancova(
        glucose_week20, "CHG ~ BASE + TRTPN", treatment="TRTPN", reference=99, levels=[81, 99]
    )
    assert fit.model.n == ref["n_week20"]
    assert fit.model.sigma == pytest.approx(ref["sigma_residual"], rel=REL)
    assert fit.model.coefficients.loc["BASE", "estimate"] == pytest.approx(
        ref["coef"]["BASE"], rel=REL
    )
    lsmeans = fit.lsmeans.set_index("level")
    for row in ref["lsmeans"]:
        assert lsmeans.loc[row["TRTPN"], "estimate"] == pytest.approx(row["lsmean"], rel=REL)
        assert lsmeans.loc[row["TRTPN"], "se"] == pytest.approx(row["se"], rel=REL)
        assert lsmeans.loc[row["TRTPN"], "lower"] == pytest.approx(row["lower95"], rel=REL)
    diff = fit.differences.iloc[0]
    hp = ref["high_minus_placebo"]
    for key in ("estimate", "se", "t", "p"):
        assert diff[key] == pytest.approx(hp[key], rel=REL)
    assert diff["df"] == hp["df"]
    assert round(diff["p"], 3) == ref["published"]["p"]


def test_trend_with_dose_scores_is_a_linear_contrast_of_lsmeans(adas_week24):
    fit = _pilot_fit(adas_week24)
    doses = {"Pbo": 0.0, "Xan_Lo": 54.0, "Xan_Hi": 81.0}
    trend = fit.trend(doses).iloc[0]
    lsm = fit.lsmeans.set_index("level")["estimate"]
    centred = {k: v - np.mean(list(doses.values())) for k, v in doses.items()}
    assert trend["estimate"] == pytest.approx(sum(centred[k] * lsm[k] for k in doses))
    rescaled = fit.trend({k: 2 * v + 7 for k, v in doses.items()}).iloc[0]
    assert rescaled["p"] == pytest.approx(trend["p"])
    assert 0 < trend["p"] < 1


def test_default_trend_scores_are_equally_spaced():
    df = pd.DataFrame({"y": [1.0, 2, 4, 5, 7, 8, 2, 6], "dose": list("LLMMHHLH")})
    fit = fit_ancova(df, "y ~ dose", treatment="dose", levels=["L", "M", "H"])
    assert fit.trend().iloc[0]["estimate"] == pytest.approx(
        fit.contrast({"H": 1, "L": -1}, "H - L").iloc[0]["estimate"]
    )


def test_covariates_are_held_at_their_mean():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(5, 2, 30), "arm": ["a", "b", "c"] * 10})
    df["y"] = (
        1.0 + 0.5 * df["x"] + df["arm"].map({"a": 0.0, "b": 1.0, "c": 3.0}) + rng.normal(0, 0.1, 30)
    )
    fit = fit_ancova(df, "y ~ x + arm", treatment="arm")
    coef = fit.model.estimate
    assert fit.lsmeans.iloc[0]["estimate"] == pytest.approx(coef[0] + coef[1] * df["x"].mean())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_results_do_not_depend_on_row_order(seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "CHG": rng.normal(size=18),
            "BASE": rng.normal(8, 2, 18),
            "SITE": ["TLS", "NCK"] * 9,
            "ARM": ["DUPI", "DUPI", "PBO"] * 6,
        }
    )
    shuffled = df.sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    a = fit_ancova(df, "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO")
    b = fit_ancova(shuffled, "CHG ~ BASE + SITE + ARM", treatment="ARM", reference="PBO")
    pd.testing.assert_frame_equal(a.lsmeans, b.lsmeans, rtol=1e-9)
    pd.testing.assert_frame_equal(a.differences, b.differences, rtol=1e-9)


def test_a_formula_naming_a_missing_column_is_refused():
    df = pd.DataFrame({"CHG": [1.0, 2.0], "ARM": ["a", "b"]})
    with pytest.raises(MissingColumnError, match="'BASE'"):
        fit_ancova(df, "CHG ~ BASE + ARM", treatment="ARM")


def test_a_non_numeric_outcome_is_refused():
    df = pd.DataFrame({"CHG": ["x", "y", "z"], "ARM": ["a", "b", "a"]})
    with pytest.raises(NonNumericOutcomeError, match="'CHG'"):
        fit_ancova(df, "CHG ~ ARM", treatment="ARM")


def test_an_unknown_reference_is_refused():
    df = pd.DataFrame({"CHG": [1.0, 2.0, 3.0], "ARM": ["a", "b", "a"]})
    with pytest.raises(ModelSpecError, match="'PBO'"):
        fit_ancova(df, "CHG ~ ARM", treatment="ARM", reference="PBO")


def test_a_treatment_outside_the_formula_is_refused():
    df = pd.DataFrame({"CHG": [1.0, 2.0, 3.0], "ARM": ["a", "b", "a"], "X": [1.0, 2, 3]})
    with pytest.raises(ModelSpecError, match="'ARM'"):
        fit_ancova(df, "CHG ~ X", treatment="ARM")


def test_an_aliased_design_is_refused():
    df = pd.DataFrame(
        {
            "CHG": [1.0, 2, 3, 4, 5],
            "ARM": list("aabbb"),
            "SITE": list("xxyyy"),
            "B": [1.0, 2, 3, 4, 6],
        }
    )
    with pytest.raises(SingularDesignError, match="SITE"):
        fit_ancova(df, "CHG ~ B + ARM + SITE", treatment="ARM")


def test_a_numeric_column_turned_into_a_factor_in_the_formula_is_refused():
    df = pd.DataFrame(
        {"CHG": [1.0, 2, 3, 4, 5, 6], "ARM": list("ababab"), "SITE": [1, 1, 2, 2, 3, 3]}
    )
    with pytest.raises(ModelSpecError, match="SITE"):
        fit_ancova(df, "CHG ~ C(SITE) + ARM", treatment="ARM")


def test_unknown_weights_are_refused():
    df = pd.DataFrame({"CHG": [1.0, 2.0, 3.0], "ARM": ["a", "b", "a"]})
    with pytest.raises(ModelSpecError, match="'cells'"):
        fit_ancova(df, "CHG ~ ARM", treatment="ARM", weights="cells")


def test_dose_must_be_numeric():
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "dose": ["0", "1", "0", "1"]})
    with pytest.raises(ModelSpecError, match="'dose'"):
        dose_response(df, "y ~ dose", dose="dose")
