"""Properties of the MMRM likelihood and fit that must hold whatever the data.

Analytic gradient and Hessian against finite differences, both storage forms of the
sufficient statistics, invariance to the order of rows and to the subject labels, and the
compound-symmetry MMRM against statsmodels' random-intercept model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import optimize

from trialdesk.stats import fit_mmrm
from trialdesk.stats.mmrm import MmrmFit, example_data
from trialdesk.stats.mmrm.covariance import make_structure
from trialdesk.stats.mmrm.likelihood import LikelihoodObjective, evaluate, hessian_tensor
from trialdesk.stats.mmrm.patterns import reduce_to_patterns

FORMULA = "FEV1 ~ RACE + SEX + ARMCD * AVISIT"


@pytest.fixture(scope="module")
def fev(refdata_dir: Path) -> pd.DataFrame:
    data = pd.read_csv(refdata_dir / "fev_data.csv")
    data["AVISIT"] = pd.Categorical(data["AVISIT"], categories=["VIS1", "VIS2", "VIS3", "VIS4"])
    data["ARMCD"] = pd.Categorical(data["ARMCD"], categories=["PBO", "TRT"])
    data["SEX"] = pd.Categorical(data["SEX"], categories=["Male", "Female"])
    return data


@pytest.fixture(scope="module")
def fit(fev: pd.DataFrame) -> MmrmFit:
    return fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT")


def statistics(fit: MmrmFit, threshold: int | None = None):
    d = fit.data
    return reduce_to_patterns(
        d.subject_codes, d.visit_codes, d.x, d.y, len(d.visits), moment_threshold=threshold
    )


@pytest.mark.parametrize("structure", ["us", "cs", "csh", "ar1", "ar1h", "toep", "toeph"])
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(fit: MmrmFit, structure: str, reml: bool) -> None:
    cov = make_structure(structure, fit.data.visits)
    objective = LikelihoodObjective(statistics(fit), cov, reml=reml)
    # away from the optimum, where the gradient is large
    theta = cov.theta_from_covariance(fit.state.sigma) + np.linspace(-0.3, 0.3, cov.n_theta)
    numeric = optimize.approx_fprime(theta, objective.fun, 1e-6)
    analytic = objective.jac(theta)
    assert np.max(np.abs(analytic)) > 1.0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("structure", ["us", "ar1h", "toeph"])
@pytest.mark.parametrize("reml", [True, False])
def test_hessian_matches_finite_differences(fit: MmrmFit, structure: str, reml: bool) -> None:
    cov = make_structure(structure, fit.data.visits)
    objective = LikelihoodObjective(statistics(fit), cov, reml=reml)
    theta = cov.theta_from_covariance(fit.state.sigma) + np.linspace(-0.2, 0.2, cov.n_theta)
    h = 1e-5
    numeric = np.array(
        [
            (objective.jac(theta + h * e) - objective.jac(theta - h * e)) / (2 * h)
            for e in np.eye(theta.size)
        ]
    )
    np.testing.assert_allclose(objective.hess(theta), numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("reml", [True, False])
def test_moments_and_raw_rows_give_the_same_likelihood(fit: MmrmFit, reml: bool) -> None:
    sigma = fit.state.sigma * 1.3 + 2.0 * np.eye(4)
    forms = [statistics(fit, 0), statistics(fit, 10**9), statistics(fit, 20)]
    assert forms[0].raw_rows.shape[0] == 0 and forms[1].moments.shape[0] == 0
    assert forms[2].raw_rows.shape[0] > 0 and forms[2].moments.shape[0] > 0
    evs = [evaluate(st, sigma, reml=reml) for st in forms]
    hess = [hessian_tensor(st, ev)[0] for st, ev in zip(forms, evs, strict=True)]
    for ev, h in zip(evs[1:], hess[1:], strict=True):
        assert ev.value == pytest.approx(evs[0].value, rel=1e-12)
        np.testing.assert_allclose(ev.gradient, evs[0].gradient, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(h, hess[0], rtol=1e-9, atol=1e-9)


def assert_same_fit(a: MmrmFit, b: MmrmFit) -> None:
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-6)
    pd.testing.assert_frame_equal(a.coefficients, b.coefficients, rtol=1e-6)
    pd.testing.assert_frame_equal(a.type3(), b.type3(), rtol=1e-6)


@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward-roger"])
def test_fit_is_invariant_to_row_order(fev: pd.DataFrame, fit: MmrmFit, df_method: str) -> None:
    shuffled = fev.sample(frac=1.0, random_state=3)
    other = fit_mmrm(shuffled, FORMULA, subject="USUBJID", visit="AVISIT", df_method=df_method)
    assert_same_fit(fit.with_df_method(df_method), other)


def test_fit_is_invariant_to_relabelling_subjects(fev: pd.DataFrame, fit: MmrmFit) -> None:
    rng = np.random.default_rng(11)
    subjects = fev["USUBJID"].unique()
    mapping = dict(zip(subjects, rng.permutation(len(subjects)) * 7 + 1000, strict=True))
    relabelled = fev.assign(USUBJID=fev["USUBJID"].map(mapping))
    assert_same_fit(fit, fit_mmrm(relabelled, FORMULA, subject="USUBJID", visit="AVISIT"))


def test_compound_symmetry_equals_statsmodels_random_intercept(fev: pd.DataFrame) -> None:
    """CS MMRM and the random-intercept model are the same marginal model (rho >= 0)."""
    cs = fit_mmrm(fev, FORMULA, subject="USUBJID", visit="AVISIT", covariance="cs")
    complete = fev.dropna(subset=["FEV1"])
    mixed = smf.mixedlm(FORMULA, complete, groups=complete["USUBJID"]).fit(reml=True)
    assert mixed.converged
    assert cs.loglik == pytest.approx(mixed.llf, abs=1e-5)
    params = cs.covariance_parameters
    assert params["covariance"] == pytest.approx(float(mixed.cov_re.iloc[0, 0]), rel=1e-3)
    assert params["residual"] == pytest.approx(float(mixed.scale), rel=1e-3)
    ours = cs.coefficients
    assert list(mixed.fe_params.index) == list(ours.index)  # same coding and names
    np.testing.assert_allclose(ours["estimate"], mixed.fe_params.to_numpy(), atol=1e-4)
    # statsmodels' SEs come from the joint observed information of all parameters (not
    # Phi = (X'V^-1 X)^-1 as mmrm, nlme and SAS, checked against nlme at 1e-4 elsewhere)
    np.testing.assert_allclose(ours["se"], mixed.bse_fe.to_numpy(), rtol=5e-3)


def test_example_data_fits_with_every_df_method() -> None:
    data = example_data()
    fit = fit_mmrm(data, "y ~ base + arm * visit", subject="id", visit="visit")
    for method in ("residual", "satterthwaite", "kenward-roger", "kenward-roger-linear"):
        other = fit.with_df_method(method)
        table = other.coefficients
        assert table["se"].gt(0).all() and table["df"].gt(0).all()
        assert other.type3()["p"].between(0, 1).all()
    residual = fit.with_df_method("residual").coefficients["df"]
    assert (residual == fit.n_obs - len(fit.data.column_names)).all()


def test_type3_with_a_covariate_interaction_is_sas_style() -> None:
    """Factor tests at covariate zero; the covariate's test averages its slopes."""
    from trialdesk.stats.mmrm.inference import type3_matrices

    fit = fit_mmrm(example_data(), "y ~ base * visit + arm", subject="id", visit="visit")
    names = fit.data.column_names
    hyp = type3_matrices(fit.data)
    slope_cols = [i for i, n in enumerate(names) if n.startswith("base:")]
    assert np.allclose(hyp["visit"][:, slope_cols], 0.0)
    base = hyp["base"]
    assert base.shape[0] == 1
    assert base[0, names.index("base")] == pytest.approx(1.0)
    np.testing.assert_allclose(base[0, slope_cols], 1.0 / 3.0)
    np.testing.assert_allclose(hyp["base:visit"][:, slope_cols], np.eye(2))
