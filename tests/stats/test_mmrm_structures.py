"""Covariance structures: derivatives, positive definiteness, and fits against nlme::gls.

The nlme references (``data/mmrm_structures_nlme.json``) come from
``data/mmrm_structures_nlme.R`` beside them (R 4.2.2, nlme 3.1-162): the same fixed effects
as the mmrm reference with compound symmetry, AR(1), Toeplitz (corARMA p=3 on 4 visits)
and their heterogeneous variants (varIdent by visit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialdesk.stats import fit_mmrm
from trialdesk.stats.mmrm import COVARIANCE_STRUCTURES, MmrmFit
from trialdesk.stats.mmrm.covariance import make_structure

VISITS = ["V1", "V2", "V3", "V4", "V5"]
STRUCTURES = list(COVARIANCE_STRUCTURES)
FORMULA = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
NLME = json.loads((Path(__file__).parent / "data" / "mmrm_structures_nlme.json").read_text())


def random_theta(name: str, seed: int = 1) -> np.ndarray:
    structure = make_structure(name, VISITS)
    return np.random.default_rng(seed).normal(0.0, 0.6, structure.n_theta)


@pytest.mark.parametrize("name", STRUCTURES)
def test_covariance_is_positive_definite_for_any_theta(name: str) -> None:
    structure = make_structure(name, VISITS)
    rng = np.random.default_rng(7)
    for _ in range(20):
        sigma = structure.covariance(rng.normal(0.0, 2.0, structure.n_theta))
        assert np.allclose(sigma, sigma.T)
        assert np.linalg.eigvalsh(sigma)[0] > 0


@pytest.mark.parametrize("name", STRUCTURES)
def test_theta_derivatives_match_finite_differences(name: str) -> None:
    structure = make_structure(name, VISITS)
    theta = random_theta(name)
    deriv = structure.theta_derivatives(theta)
    h = 1e-6
    for k in range(theta.size):
        step = np.zeros_like(theta)
        step[k] = h
        plus = structure.theta_derivatives(theta + step)
        minus = structure.theta_derivatives(theta - step)
        np.testing.assert_allclose(
            (plus.sigma - minus.sigma) / (2 * h), deriv.d1[k], rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(
            (plus.d1 - minus.d1) / (2 * h), deriv.d2[k], rtol=1e-5, atol=1e-7
        )


@pytest.mark.parametrize("name", STRUCTURES)
def test_natural_derivatives_match_finite_differences(name: str) -> None:
    structure = make_structure(name, VISITS)
    natural = structure.natural(random_theta(name))
    values = natural.values
    d1 = natural.derivatives.d1
    d2 = natural.derivatives.d2
    h = 1e-6
    for k in range(values.size):
        step = np.zeros_like(values)
        step[k] = h
        plus = structure.natural_matrices(values + step)
        minus = structure.natural_matrices(values - step)
        np.testing.assert_allclose((plus.sigma - minus.sigma) / (2 * h), d1[k], atol=1e-7)
        second = np.zeros_like(d1) if d2 is None else d2[k]
        np.testing.assert_allclose((plus.d1 - minus.d1) / (2 * h), second, atol=1e-6)


@pytest.mark.parametrize("name", STRUCTURES)
def test_start_from_a_member_of_the_family_recovers_it(name: str) -> None:
    structure = make_structure(name, VISITS[:4])
    theta = random_theta(name)[: structure.n_theta] * 0.5
    sigma = structure.covariance(theta)
    if name in ("us", "cs", "csh"):  # exact projections
        np.testing.assert_allclose(
            structure.covariance(structure.theta_from_covariance(sigma)), sigma
        )
    else:
        assert np.all(np.isfinite(structure.theta_from_covariance(sigma)))


@pytest.fixture(scope="module")
def fev(refdata_dir: Path) -> pd.DataFrame:
    data = pd.read_csv(refdata_dir / "fev_data.csv")
    data["AVISIT"] = pd.Categorical(data["AVISIT"], categories=["VIS1", "VIS2", "VIS3", "VIS4"])
    data["ARMCD"] = pd.Categorical(data["ARMCD"], categories=["PBO", "TRT"])
    data["SEX"] = pd.Categorical(data["SEX"], categories=["Male", "Female"])
    return data


@pytest.fixture(scope="module")
def structured_fits(fev: pd.DataFrame) -> dict[str, MmrmFit]:
    return {
        name: fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT", covariance=name)
        for name in STRUCTURES
    }


def nlme_name(name: str) -> str:
    if name == "(Intercept)":
        return "Intercept"
    parts = []
    for part in name.split(":"):
        factor = next(f for f in ("RACE", "SEX", "ARMCD", "AVISIT") if part.startswith(f))
        parts.append(f"{factor}[T.{part[len(factor) :]}]")
    return ":".join(parts)


@pytest.mark.parametrize("name", ["cs", "csh", "ar1", "ar1h", "toep", "toeph"])
def test_structured_fit_matches_nlme_gls(structured_fits: dict[str, MmrmFit], name: str) -> None:
    fit = structured_fits[name]
    ref = NLME[name]
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-5)
    np.testing.assert_allclose(fit.covariance.to_numpy(), np.array(ref["covariance"]), rtol=1e-3)
    theirs = pd.DataFrame(ref["coefficients"]).T
    ours = fit.coefficients.loc[[nlme_name(n) for n in theirs.index]]
    np.testing.assert_allclose(ours["estimate"], theirs["estimate"], atol=1e-4)
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=1e-4)


def test_nested_structures_order_the_likelihood(structured_fits: dict[str, MmrmFit]) -> None:
    ll = {name: fit.loglik for name, fit in structured_fits.items()}
    tol = 1e-6
    for smaller, larger in [
        ("cs", "csh"), ("ar1", "ar1h"), ("toep", "toeph"), ("ar1", "toep"), ("cs", "toep"),
        ("csh", "toeph"), ("ar1h", "toeph"), ("toeph", "us"), ("csh", "us"),
    ]:  # fmt: skip
        assert ll[smaller] <= ll[larger] + tol, (smaller, larger)


def test_sas_kenward_roger_differs_from_linear_only_for_nonlinear_structures(
    structured_fits: dict[str, MmrmFit],
) -> None:
    for name, fit in structured_fits.items():
        kr = fit.with_df_method("kenward-roger").vcov.to_numpy()
        linear = fit.with_df_method("kenward-roger-linear").vcov.to_numpy()
        if name in ("us", "cs", "toep"):  # linear in the natural parameters
            np.testing.assert_allclose(kr, linear, rtol=1e-10)
        else:
            assert not np.allclose(kr, linear, rtol=1e-8), name


def test_covariance_parameters_are_named_naturally(structured_fits: dict[str, MmrmFit]) -> None:
    assert list(structured_fits["cs"].covariance_parameters.index) == ["covariance", "residual"]
    assert list(structured_fits["ar1"].covariance_parameters.index) == ["variance", "rho"]
    params = structured_fits["us"].covariance_parameters
    assert params["cov(VIS2,VIS1)"] == pytest.approx(structured_fits["us"].covariance.iloc[1, 0])


# -- SAS ddfm=kr and kr(linear) for structured covariances ---------------------------------
# SAS PROC MIXED output stored in the mmrm repository (transcribed with provenance in
# data/mmrm_sas_kr_covtypes.json), FEV1 ~ ARMCD. For the non-linear ar(1) and arh(1) SAS's kr
# and kr(linear) differ in the SE: the second-derivative term in SAS's natural parameters.
SAS_KR = json.loads((Path(__file__).parent / "data" / "mmrm_sas_kr_covtypes.json").read_text())


@pytest.fixture(scope="module")
def armcd_fits(fev: pd.DataFrame) -> dict[str, MmrmFit]:
    return {
        name: fit_mmrm(
            fev,
            "FEV1 ~ ARMCD",
            subject="USUBJID",
            visit="AVISIT",
            covariance=name,
            df_method="kenward-roger",
        )  # fmt: skip
        for name in ("ar1", "ar1h", "toep", "toeph")
    }


@pytest.mark.parametrize(
    ("name", "variant"),
    [("ar1", "kr"), ("ar1", "kr_linear"), ("ar1h", "kr"), ("ar1h", "kr_linear"), ("toep", "kr")],
)
def test_kenward_roger_matches_sas_for_structures(
    armcd_fits: dict[str, MmrmFit], name: str, variant: str
) -> None:
    """Full-precision SAS output: SAS's own optimum differs slightly (estimates ~2e-5)."""
    method = {"kr": "kenward-roger", "kr_linear": "kenward-roger-linear"}[variant]
    diff = armcd_fits[name].with_df_method(method).contrasts("ARMCD").iloc[0]
    expected = SAS_KR[name][variant]
    assert diff["estimate"] == pytest.approx(expected["estimate"], abs=1e-4)
    assert diff["se"] == pytest.approx(expected["se"], rel=1e-4)
    assert diff["df"] == pytest.approx(expected["df"], abs=0.1)
    assert diff["lower"] == pytest.approx(expected["lower"], abs=1e-3)


def test_sas_kr_and_kr_linear_differ_as_in_sas(armcd_fits: dict[str, MmrmFit]) -> None:
    for name in ("ar1", "ar1h"):
        ours = [
            armcd_fits[name].with_df_method(m).contrasts("ARMCD").iloc[0]["se"]
            for m in ("kenward-roger", "kenward-roger-linear")
        ]
        theirs = [SAS_KR[name][v]["se"] for v in ("kr", "kr_linear")]
        assert ours[1] - ours[0] == pytest.approx(theirs[1] - theirs[0], rel=0.01)


@pytest.mark.parametrize("variant", ["kr", "kr_linear"])
def test_heterogeneous_toeplitz_matches_sas_listing(
    armcd_fits: dict[str, MmrmFit], variant: str
) -> None:
    """Printed precision (4 decimals, integer df, F with 2 decimals)."""
    fit = armcd_fits["toeph"]
    expected = SAS_KR["toeph"]
    assert -2 * fit.loglik == pytest.approx(expected["minus2_res_loglik"], abs=1e-3)
    for param, value in expected["covariance_parameters"].items():
        assert fit.covariance_parameters[param] == pytest.approx(value, abs=2e-4 * max(1, value))
    method = {"kr": "kenward-roger", "kr_linear": "kenward-roger-linear"}[variant]
    other = fit.with_df_method(method)
    diff = other.contrasts("ARMCD").iloc[0]
    for key in ("estimate", "se", "lower", "upper"):
        assert diff[key] == pytest.approx(expected[variant][key], abs=6e-5)
    assert diff["df"] == pytest.approx(expected[variant]["df"], abs=0.6)
    assert other.type3().loc["ARMCD", "F"] == pytest.approx(expected[variant]["F"], abs=0.005)
