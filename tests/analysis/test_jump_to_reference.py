"""The jump-to-reference analysis of the plan: schema, runner, storage by ``trialdesk analyze``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from trialdesk import stats

PLAN = """
study: mini
version: "1.0"
control_arm: PBO
per_protocol: {min_dosing_visits: 1, required_dataset: ADNASA, required_param: NASA,
               required_visit: W16}
analyses:
  - {id: J2R, label: j2r, kind: sensitivity, dataset: ADNASA, param: NASA, visits: [W16],
     covariates: [BASE, SITEID], method: jump_to_reference, imputations: 50}
"""


def _analysis(**update):
    from trialdesk.analysis.plan import Analysis

    fields = {
        "id": "NASA_J2R",
        "label": "j2r",
        "kind": "sensitivity",
        "dataset": "ADNASA",
        "param": "NASA",
        "visits": ["W16"],
        "covariates": ["BASE", "SITEID"],
        "method": "jump_to_reference",
        "imputations": 200,
    }
    fields.update(update)
    return Analysis(**fields)


def _context(seed=11):
    from trialdesk.analysis.runner import Context

    scheme = stats.BlockScheme(arms=("DUPI", "PBO"), ratio=(2, 1), block_sizes=(3, 6))
    return Context(active="DUPI", control="PBO", scheme=scheme, seed=seed)


def _bundle():
    """24 subjects (16 DUPI, 8 PBO) at two sites, 5 W16 NASA values missing; no database."""
    from trialdesk.analysis.datasets import AnalysisDataset, DatasetBundle

    rng = np.random.default_rng(4)
    n = 24
    arms = ["DUPI", "DUPI", "PBO"] * 8
    subjects = [f"{'TLS' if i < 12 else 'NCK'}-{i % 12 + 1:03d}" for i in range(n)]
    adsl = pd.DataFrame(
        {
            "USUBJID": subjects,
            "STRATUM": [s[:3] for s in subjects],
            "TRT01P": arms,
            "RANDSEQ": [i % 12 + 1 for i in range(n)],
            "ITTFL": ["Y"] * n,
            "PPROTFL": ["Y"] * n,
            "SAFFL": ["Y"] * n,
        }
    )
    base = rng.integers(5, 11, n).astype(float)
    w16 = base - 1 - np.where(np.array(arms) == "DUPI", 2.5, 0) + rng.normal(0, 1.2, n)
    w16[[0, 1, 5, 13, 20]] = np.nan  # three DUPI, two PBO missing
    rows = []
    for i, subject in enumerate(subjects):
        for visit, week, aval in (("D0", 0.0, base[i]), ("W16", 16 / 7, w16[i])):
            is_base = visit == "D0"
            rows.append(
                {
                    "USUBJID": subject,
                    "SITEID": subject[:3],
                    "PARAMCD": "NASA",
                    "AVISIT": visit,
                    "AVISITN": week,
                    "AVAL": aval,
                    "BASE": base[i],
                    "CHG": None if is_base or np.isnan(aval) else aval - base[i],
                    "ABLFL": "Y" if is_base else None,
                    "ANL01FL": "Y" if is_base or not np.isnan(aval) else None,
                }
            )
    adnasa = pd.DataFrame(rows)
    adnasa["CHG"] = adnasa["CHG"].astype(float)
    frames = {"ADSL": adsl, "ADNASA": adnasa}
    return DatasetBundle("ns-dupi", False, {k: AnalysisDataset(k, v) for k, v in frames.items()})


def test_the_plan_declares_nasa_j2r(studies_dir):
    from trialdesk.analysis.plan import load_plan

    plan = load_plan(studies_dir / "ns-dupi")
    j2r = plan.analysis("NASA_J2R")
    assert (j2r.method, j2r.kind, j2r.population) == ("jump_to_reference", "sensitivity", "ITT")
    assert (j2r.imputations, j2r.pooling_df) == (1000, "barnard-rubin")
    assert (j2r.dataset, j2r.param, j2r.visits, j2r.covariates) == (
        "ADNASA",
        "NASA",
        ["W16"],
        ["BASE", "SITEID"],
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("imputations: 50", "pooling_df: rubin", "needs imputations"),
        ("imputations: 50", "imputations: 1", "imputations"),
        ("imputations: 50", "imputations: 50, pooling_df: reiter", "pooling_df"),
    ],
)
def test_the_schema_refuses_a_j2r_without_imputations(tmp_path, old, new, message):
    from trialdesk.analysis.plan import PLAN_FILE, PlanError, load_plan

    (tmp_path / PLAN_FILE).write_text(PLAN.replace(old, new), encoding="utf-8")
    with pytest.raises(PlanError, match=message):
        load_plan(tmp_path)
    (tmp_path / PLAN_FILE).write_text(PLAN, encoding="utf-8")
    assert load_plan(tmp_path).analysis("J2R").imputations == 50


def test_the_runner_equals_a_direct_call_with_the_run_seed():
    from trialdesk.analysis.runner import analysis_data, run_analysis

    bundle, analysis = _bundle(), _analysis()
    outcome = run_analysis(bundle, analysis, _context(seed=11))
    assert outcome.status == "done", outcome.reason
    data = analysis_data(bundle, analysis).sort_values(["RANDSEQ", "USUBJID"], kind="stable")
    assert len(data) == 24 and data["CHG"].isna().sum() == 5
    direct = stats.jump_to_reference(
        data.reset_index(drop=True),
        "CHG ~ BASE + SITEID + TRT01P",
        treatment="TRT01P",
        reference="PBO",
        levels=["DUPI", "PBO"],
        m=200,
        seed=11,
    )
    stored = outcome.tables["differences"][0]
    expected = direct.differences.iloc[0]
    assert stored["contrast"] == "DUPI - PBO"
    for key in ("estimate", "se", "df", "t", "p", "lower", "upper", "riv", "lambda"):
        assert stored[key] == pytest.approx(float(expected[key]), rel=1e-12), key
    summary = outcome.tables["imputation"][0]
    assert summary == {
        "reference": "PBO",
        "imputations": 200,
        "seed": 11,
        "n": 24,
        "n_imputed_active": 3,
        "n_imputed_control": 2,
        "n_excluded": 0,
        "df_complete": 20,
        "df_method": "barnard-rubin",
    }
    assert outcome.n_subjects == 24
    # Another seed, other draws.
    other = run_analysis(bundle, analysis, _context(seed=12)).tables["differences"][0]
    assert other["estimate"] != stored["estimate"]


def test_the_runner_pools_with_rubin_df_when_the_plan_says_so():
    from trialdesk.analysis.runner import run_analysis

    bundle = _bundle()
    barnard = run_analysis(bundle, _analysis(), _context()).tables["differences"][0]
    rubin = run_analysis(bundle, _analysis(pooling_df="rubin"), _context()).tables
    assert rubin["imputation"][0]["df_method"] == "rubin"
    assert rubin["differences"][0]["estimate"] == barnard["estimate"]
    assert rubin["differences"][0]["df"] > barnard["df"]


def test_a_reference_arm_too_small_to_model_is_not_run_with_the_reason():
    from trialdesk.analysis.runner import run_analysis

    bundle = _bundle()
    adnasa = bundle["ADNASA"].frame
    pbo = set(bundle["ADSL"].frame.query("TRT01P == 'PBO'")["USUBJID"])
    keep = {"TLS-003", "NCK-003"}  # one placebo subject with a W16 value per site
    drop = adnasa["USUBJID"].isin(pbo - keep) & (adnasa["AVISIT"] == "W16")
    adnasa.loc[drop, ["AVAL", "CHG"]] = np.nan
    adnasa.loc[drop, "ANL01FL"] = None
    outcome = run_analysis(bundle, _analysis(), _context())
    assert outcome.status == "not_run"
    assert outcome.reason.startswith(
        "ImputationError: TRT01P: the imputation model 'CHG ~ BASE + SITEID' cannot be fitted "
        "to the 2 subject(s) of the reference 'PBO' with an observed CHG"
    )


def test_trialdesk_analyze_stores_the_j2r_result(trial, ns_dupi, plan, ugo):
    from trialdesk.analysis.commands import analyze
    from trialdesk.analysis.datasets import build_datasets
    from trialdesk.analysis.models import AnalysisRun
    from trialdesk.analysis.runner import analysis_data, run_plan

    result = CliRunner().invoke(
        analyze, ["--study", "ns-dupi", "--unblinded", "--seed", "5", "--by", "ugo"]
    )
    assert result.exit_code == 0, result.output
    run = AnalysisRun.objects.get()
    stored = run.results.get(analysis_id="NASA_J2R")
    assert (stored.method, stored.population, stored.dataset) == (
        "jump_to_reference",
        "ITT",
        "ADNASA",
    )
    assert stored.dataset_sha256 == run.dataset_hashes["ADNASA"]
    # The small test trial has two placebo subjects with a W16 value: too few for a model of
    # baseline and site, and the stored reason says so.
    assert stored.status == "not_run"
    assert "imputation model 'CHG ~ BASE + SITEID'" in stored.reason
    assert "2 subject(s) of the reference 'PBO'" in stored.reason

    # With the intercept-only imputation model the same data can be imputed: the stored result
    # equals a direct call with the run's seed.
    intercept_only = _analysis(covariates=[], imputations=100)
    small = plan.model_copy(update={"analyses": [intercept_only]})
    run = run_plan(ns_dupi, small, blinded=False, user=ugo, seed=9)
    stored = run.results.get(analysis_id="NASA_J2R")
    assert stored.status == "done", stored.reason
    bundle = build_datasets(ns_dupi, small, blinded=False, user=ugo)
    data = analysis_data(bundle, intercept_only).sort_values(["RANDSEQ", "USUBJID"])
    direct = stats.jump_to_reference(
        data.reset_index(drop=True),
        "CHG ~ TRT01P",
        treatment="TRT01P",
        reference="PBO",
        levels=["DUPI", "PBO"],
        m=100,
        seed=9,
    )
    row = stored.tables["differences"][0]
    for key in ("estimate", "se", "df", "p", "lower", "upper"):
        assert row[key] == pytest.approx(float(direct.differences.iloc[0][key]), rel=1e-12)
    assert stored.tables["imputation"][0]["n_imputed_active"] == 1  # NCK-002
    assert stored.tables["imputation"][0]["n_imputed_control"] == 1  # TLS-004
