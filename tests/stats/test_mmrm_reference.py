"""MMRM against R (mmrm 0.3.18, nlme, emmeans) and SAS PROC MIXED on fev_data.

References: ``refdata/r-results/mmrm_fev.json`` (computed by ``02_mmrm_fev.R`` beside it)
and ``refdata/r-results/sas_proc_mixed_transcribed.json`` (SAS listings, copied by hand).
Tolerances are those of ``refdata/README.md``: logLik 1e-5 absolute, coefficients 1e-4
absolute, SE 1e-4 relative, df 0.1, covariance 1e-3 relative; SAS numbers at 1e-3.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialdesk.stats import fit_mmrm
from trialdesk.stats.mmrm import MmrmFit
from trialdesk.stats.mmrm.df import kenward_roger

FORMULA = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
FACTORS = ("RACE", "SEX", "ARMCD", "AVISIT")
LOGLIK_ABS = 1e-5
COEF_ABS = 1e-4
SE_REL = 1e-4
DF_ABS = 0.1
COV_REL = 1e-3
SAS_ABS = 1e-3


@pytest.fixture(scope="module")
def ref(refdata_dir: Path) -> dict:
    return json.loads((refdata_dir / "r-results" / "mmrm_fev.json").read_text())


@pytest.fixture(scope="module")
def sas(refdata_dir: Path) -> dict:
    return json.loads((refdata_dir / "r-results" / "sas_proc_mixed_transcribed.json").read_text())


@pytest.fixture(scope="module")
def fev(refdata_dir: Path, ref: dict) -> pd.DataFrame:
    data = pd.read_csv(refdata_dir / "fev_data.csv")
    for name, levels in ref["meta"]["factor_levels"].items():
        data[name] = pd.Categorical(data[name], categories=levels)
    return data


@pytest.fixture(scope="module")
def sat(fev: pd.DataFrame) -> MmrmFit:
    return fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT")


@pytest.fixture(scope="module")
def fits(fev: pd.DataFrame, sat: MmrmFit) -> dict[str, MmrmFit]:
    """Fits keyed by the reference block they reproduce."""
    return {
        "mmrm_satterthwaite": sat,
        "mmrm_kenward_roger_linear": sat.with_df_method("kenward-roger-linear"),
        # mmrm's (non-linear) Kenward-Roger: second derivatives in its log-Cholesky theta
        "mmrm_kenward_roger": dataclasses.replace(
            sat, engine=kenward_roger.build(sat.state, "unconstrained")
        ),
        "mmrm_ml_satterthwaite": fit_mmrm(
            fev, FORMULA, subject="USUBJID", visit="AVISIT", method="ml"
        ),
        "cs_mmrm_reml": fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT", covariance="cs"),
        "simple_us_reml": fit_mmrm(fev, "FEV1 ~ 1", subject="USUBJID", visit="AVISIT"),
        "armcd_us_reml_kr_linear": fit_mmrm(
            fev, "FEV1 ~ ARMCD", subject="USUBJID", visit="AVISIT", df_method="kenward-roger"
        ),
    }


def r_name(name: str) -> str:
    """R's coefficient name (``ARMCDTRT:AVISITVIS2``) as formulaic's."""
    if name == "(Intercept)":
        return "Intercept"
    parts = []
    for part in name.split(":"):
        factor = next(f for f in FACTORS if part.startswith(f))
        parts.append(f"{factor}[T.{part[len(factor) :]}]")
    return ":".join(parts)


def r_coefficients(block: dict) -> pd.DataFrame:
    table = pd.DataFrame(block["coefficients"]).T
    table.index = [r_name(n) for n in table.index]
    return table


def r_matrix(block: dict) -> np.ndarray:
    return np.array(block["values"], dtype=float)


BLOCKS = [
    "mmrm_satterthwaite",
    "mmrm_kenward_roger_linear",
    "mmrm_kenward_roger",
    "mmrm_ml_satterthwaite",
    "cs_mmrm_reml",
    "simple_us_reml",
    "armcd_us_reml_kr_linear",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_loglik_matches_mmrm(fits: dict[str, MmrmFit], ref: dict, block: str) -> None:
    assert fits[block].loglik == pytest.approx(ref[block]["logLik"], abs=LOGLIK_ABS)


@pytest.mark.parametrize("block", BLOCKS)
def test_coefficients_match_mmrm(fits: dict[str, MmrmFit], ref: dict, block: str) -> None:
    ours = fits[block].coefficients
    theirs = r_coefficients(ref[block])
    ours = ours.loc[theirs.index]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], rtol=0, atol=COEF_ABS)
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=SE_REL)
    np.testing.assert_allclose(ours["df"], theirs["df"], rtol=0, atol=DF_ABS)
    np.testing.assert_allclose(ours["t"], theirs["t"], rtol=SE_REL)
    np.testing.assert_allclose(ours["p"], theirs["p"], rtol=1e-3, atol=1e-8)


@pytest.mark.parametrize("block", BLOCKS)
def test_covariance_matches_mmrm(fits: dict[str, MmrmFit], ref: dict, block: str) -> None:
    cov = fits[block].covariance
    assert list(cov.index) == ref[block]["covariance"]["rownames"]
    np.testing.assert_allclose(cov.to_numpy(), r_matrix(ref[block]["covariance"]), rtol=COV_REL)


@pytest.mark.parametrize("block", BLOCKS)
def test_vcov_of_estimates_matches_mmrm(fits: dict[str, MmrmFit], ref: dict, block: str) -> None:
    """Includes the Kenward-Roger adjusted covariance for the KR blocks."""
    colnames = ref[block]["vcov_beta"]["colnames"]
    names = [r_name(n) for n in ([colnames] if isinstance(colnames, str) else colnames)]
    ours = fits[block].vcov.loc[names, names].to_numpy()
    theirs = r_matrix(ref[block]["vcov_beta"]).reshape(ours.shape)
    scale = np.sqrt(np.outer(np.diag(theirs), np.diag(theirs)))
    np.testing.assert_allclose(ours / scale, theirs / scale, rtol=0, atol=2 * SE_REL)


def test_aic_and_bic_match_mmrm(sat: MmrmFit, ref: dict) -> None:
    assert sat.aic == pytest.approx(ref["mmrm_satterthwaite"]["AIC"], abs=LOGLIK_ABS)
    assert sat.bic == pytest.approx(ref["mmrm_satterthwaite"]["BIC"], abs=LOGLIK_ABS)
    assert (sat.n_obs, sat.n_subjects) == (537, 197)


def test_loglik_matches_nlme_gls(sat: MmrmFit, ref: dict) -> None:
    """nlme::gls (corSymm + varIdent) is the same model by an independent code path."""
    gls = ref["gls_corSymm_varIdent"]
    assert sat.loglik == pytest.approx(gls["logLik_nlme"], abs=LOGLIK_ABS)
    theirs = pd.DataFrame(gls["coefficients"]).T
    ours = sat.coefficients.loc[[r_name(n) for n in theirs.index]]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], atol=COEF_ABS)
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=SE_REL)


EMMEANS_BLOCKS = ["mmrm_satterthwaite", "mmrm_kenward_roger", "mmrm_kenward_roger_linear"]


@pytest.mark.parametrize("block", EMMEANS_BLOCKS)
@pytest.mark.parametrize("weights", ["equal", "proportional"])
def test_lsmeans_match_emmeans(
    fits: dict[str, MmrmFit], ref: dict, block: str, weights: str
) -> None:
    ours = fits[block].lsmeans("ARMCD", by="AVISIT", weights=weights)
    theirs = pd.DataFrame(ref[block]["emmeans"][f"lsmeans_{weights}"])
    assert list(ours.columns[:2]) == ["AVISIT", "ARMCD"]
    both = ours.astype({"AVISIT": str, "ARMCD": str}).merge(theirs, on=["AVISIT", "ARMCD"])
    assert len(both) == 8
    np.testing.assert_allclose(both["estimate"], both["emmean"], atol=COEF_ABS)
    np.testing.assert_allclose(both["se"], both["SE"], rtol=SE_REL)
    np.testing.assert_allclose(both["df_x"], both["df_y"], atol=DF_ABS)
    np.testing.assert_allclose(both["lower"], both["lower.CL"], atol=COEF_ABS)
    np.testing.assert_allclose(both["upper"], both["upper.CL"], atol=COEF_ABS)


@pytest.mark.parametrize("block", EMMEANS_BLOCKS)
@pytest.mark.parametrize("weights", ["equal", "proportional"])
def test_contrasts_match_emmeans(
    fits: dict[str, MmrmFit], ref: dict, block: str, weights: str
) -> None:
    ours = fits[block].contrasts("ARMCD", by="AVISIT", reference="PBO", weights=weights)
    assert list(ours.columns) == [
        "AVISIT", "contrast", "estimate", "se", "df", "t", "p", "lower", "upper",
    ]  # fmt: skip
    theirs = pd.DataFrame(ref[block]["emmeans"][f"diff_TRT_minus_PBO_{weights}"])
    both = ours.astype({"AVISIT": str}).merge(theirs, on="AVISIT")
    assert (both["contrast_x"] == both["contrast_y"]).all()
    np.testing.assert_allclose(both["estimate_x"], both["estimate_y"], atol=COEF_ABS)
    np.testing.assert_allclose(both["se"], both["SE"], rtol=SE_REL)
    np.testing.assert_allclose(both["df_x"], both["df_y"], atol=DF_ABS)
    np.testing.assert_allclose(both["p"], both["p.value"], rtol=1e-3)
    np.testing.assert_allclose(both["lower"], both["lower.CL"], atol=COEF_ABS)


@pytest.mark.parametrize("block", ["mmrm_satterthwaite", "mmrm_kenward_roger"])
@pytest.mark.parametrize("section", ["term_tests_df_md", "type3_main_effects_df_md"])
def test_type3_matches_mmrm_df_md(
    fits: dict[str, MmrmFit], ref: dict, block: str, section: str
) -> None:
    table = fits[block].type3()
    for term, expected in ref[block][section].items():
        row = table.loc[term]
        assert row["num_df"] == expected["num_df"]
        assert row["den_df"] == pytest.approx(expected["denom_df"], abs=DF_ABS)
        assert row["F"] == pytest.approx(expected["F"], rel=SE_REL)
        assert row["p"] == pytest.approx(expected["p"], rel=1e-3)


def test_type3_hypotheses_are_those_of_the_reference(sat: MmrmFit, ref: dict) -> None:
    """ARMCD and AVISIT main effects use the equally weighted marginal means' contrasts."""
    from trialdesk.stats.mmrm.inference import type3_matrices

    ours = type3_matrices(sat.data)
    names = [r_name(n) for n in ref["mmrm_satterthwaite"]["coefficients"]]
    order = [sat.data.column_names.index(n) for n in names]
    for term in ("ARMCD", "AVISIT"):
        expected = np.array(ref["mmrm_satterthwaite"]["type3_main_effects_df_md"][term]["L"])
        np.testing.assert_allclose(ours[term][:, order], expected, atol=1e-12)


def test_compound_symmetry_matches_nlme_random_intercept(fits: dict[str, MmrmFit], ref: dict):
    cs = fits["cs_mmrm_reml"]
    lme = ref["random_intercept_lme_reml"]
    assert cs.loglik == pytest.approx(lme["logLik_nlme"], abs=LOGLIK_ABS)
    params = cs.covariance_parameters
    assert params["covariance"] == pytest.approx(lme["var_intercept"], rel=COV_REL)
    assert params["residual"] == pytest.approx(lme["var_residual"], rel=COV_REL)
    theirs = pd.DataFrame(lme["coefficients"]).T
    ours = cs.coefficients.loc[[r_name(n) for n in theirs.index]]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], atol=COEF_ABS)
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=SE_REL)


def test_compound_symmetry_ml_matches_nlme(fev: pd.DataFrame, ref: dict) -> None:
    lme = ref["random_intercept_lme_reml"]
    ml = fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT", covariance="cs", method="ml")
    assert ml.loglik == pytest.approx(lme["logLik_ML"], abs=LOGLIK_ABS)
    coef = ml.coefficients["estimate"]
    for name, value in lme["ML_coefficients"].items():
        assert coef[r_name(name)] == pytest.approx(value, abs=COEF_ABS)
    assert ml.covariance_parameters["covariance"] == pytest.approx(
        lme["ML_var_intercept"], rel=COV_REL
    )


# -- SAS PROC MIXED ---------------------------------------------------------------------
# SAS prints rounded numbers (df as integers, F with two decimals) and stopped about 6e-6
# above the REML optimum in -2 logL: estimates at 1e-3, printed integers within rounding
# plus the df tolerance, F within rounding plus 1e-3 relative, covariance within 1e-3 of
# the largest entry.
SAS_DF_ABS = 0.5 + DF_ABS


def assert_sas_covariance(ours: pd.DataFrame, theirs: list[list[float]]) -> None:
    theirs_arr = np.array(theirs)
    scale = np.abs(theirs_arr).max()
    np.testing.assert_allclose(ours.to_numpy(), theirs_arr, rtol=0, atol=SAS_ABS * scale)


def test_full_model_matches_sas(sat: MmrmFit, sas: dict) -> None:
    s = sas["full_model_reml_satterthwaite"]
    assert -2 * sat.loglik == pytest.approx(s["minus2_res_loglik"], abs=SAS_ABS)
    assert_sas_covariance(sat.covariance, s["covariance_VIS1_to_VIS4"])
    coef = sat.coefficients
    for name, expected in s["fixed_effects_R_names"].items():
        row = coef.loc[r_name(name)]
        assert row["estimate"] == pytest.approx(expected["estimate"], abs=SAS_ABS)
        assert row["se"] == pytest.approx(expected["se"], abs=SAS_ABS)
        assert row["df"] == pytest.approx(expected["df"], abs=SAS_DF_ABS)


def test_type3_matches_sas(sat: MmrmFit, sas: dict) -> None:
    table = sat.type3()
    for term, expected in sas["full_model_reml_satterthwaite"]["type3_tests"].items():
        row = table.loc[term]
        assert row["num_df"] == expected["num_df"]
        assert row["den_df"] == pytest.approx(expected["den_df"], abs=SAS_DF_ABS)
        assert row["F"] == pytest.approx(expected["F"], abs=0.005 + SAS_ABS * expected["F"])
        if "p" in expected:
            assert row["p"] == pytest.approx(expected["p"], abs=SAS_ABS)


def test_lsmeans_and_differences_match_sas(sat: MmrmFit, sas: dict) -> None:
    s = sas["full_model_reml_satterthwaite"]
    ls = sat.lsmeans("ARMCD", by="AVISIT").set_index(["AVISIT", "ARMCD"])
    for visit, arms in s["lsmeans"].items():
        for arm, expected in arms.items():
            row = ls.loc[(visit, arm)]
            assert row["estimate"] == pytest.approx(expected["estimate"], abs=SAS_ABS)
            assert row["se"] == pytest.approx(expected["se"], abs=SAS_ABS)
            assert row["df"] == pytest.approx(expected["df"], abs=SAS_DF_ABS)
    diffs = sat.contrasts("ARMCD", by="AVISIT", reference="PBO").set_index("AVISIT")
    for visit, expected in s["diff_TRT_minus_PBO"].items():
        row = diffs.loc[visit]
        for key in ("estimate", "se", "lower", "upper"):
            assert row[key] == pytest.approx(expected[key], abs=SAS_ABS)
        assert row["df"] == pytest.approx(expected["df"], abs=SAS_DF_ABS)
        assert row["t"] == pytest.approx(expected["t"], abs=0.005 + SAS_ABS * abs(expected["t"]))
        if "p" in expected:
            assert row["p"] == pytest.approx(expected["p"], abs=5e-5 + SAS_ABS * expected["p"])
        else:
            assert row["p"] < expected["p_lt"]


def test_intercept_only_model_matches_sas(fits: dict[str, MmrmFit], sas: dict) -> None:
    s = sas["intercept_only_us_reml"]
    fit = fits["simple_us_reml"]
    assert -2 * fit.loglik == pytest.approx(s["minus2_res_loglik"], abs=SAS_ABS)
    row = fit.coefficients.loc["Intercept"]
    assert row["estimate"] == pytest.approx(s["intercept"]["estimate"], abs=SAS_ABS)
    assert row["se"] == pytest.approx(s["intercept"]["se"], abs=SAS_ABS)
    assert row["df"] == pytest.approx(s["intercept"]["df"], abs=SAS_DF_ABS)
    assert row["t"] == pytest.approx(s["intercept"]["t"], rel=SAS_ABS)
    assert_sas_covariance(fit.covariance, s["covariance_VIS1_to_VIS4"])


def test_kenward_roger_matches_sas_ddfm_kr(fits: dict[str, MmrmFit], sas: dict) -> None:
    """SAS ``ddfm=kr`` for ``type=un`` (full precision in the SAS output)."""
    s = sas["armcd_us_reml_kenward_roger"]
    fit = fits["armcd_us_reml_kr_linear"]
    assert fit.df_method == "kenward-roger"
    assert -2 * fit.loglik == pytest.approx(s["minus2_res_loglik"], abs=SAS_ABS)
    diff = fit.contrasts("ARMCD").iloc[0]
    expected = s["diff_TRT_minus_PBO"]
    for key in ("estimate", "se", "t", "lower", "upper"):
        assert diff[key] == pytest.approx(expected[key], abs=SAS_ABS)
    assert diff["df"] == pytest.approx(expected["df"], abs=DF_ABS)
    # p ~ 4e-8: SAS's t differs in the 4th decimal, so compare p on the log scale
    assert np.log(diff["p"]) == pytest.approx(np.log(expected["p"]), abs=0.01)
    row = fit.coefficients.loc["Intercept"]
    assert row["estimate"] == pytest.approx(s["intercept"]["estimate"], abs=SAS_ABS)
    assert row["se"] == pytest.approx(s["intercept"]["se"], abs=SAS_ABS)
    assert row["df"] == pytest.approx(s["intercept"]["df"], abs=SAS_DF_ABS)


def test_sas_kr_equals_kr_linear_for_unstructured(sat: MmrmFit) -> None:
    """For ``us`` the natural parameters are linear: SAS kr and kr(linear) coincide."""
    kr = sat.with_df_method("kenward-roger")
    krl = sat.with_df_method("kenward-roger-linear")
    np.testing.assert_allclose(kr.vcov.to_numpy(), krl.vcov.to_numpy(), rtol=1e-12)
    mmrm_kr = kenward_roger.build(sat.state, "unconstrained")
    assert not np.allclose(mmrm_kr.vcov, kr.engine.vcov, rtol=1e-6)
