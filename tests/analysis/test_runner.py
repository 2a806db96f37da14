"""``trialdesk analyze``: results equal direct calls to trialdesk.stats; provenance; blinding."""

from __future__ import annotations

import json
import math
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.analysis.conftest import NASA
from tests.analysis.test_datasets import ALLOCATION_TABLES
from trialdesk import stats

SCHEME = stats.BlockScheme(arms=("DUPI", "PBO"), ratio=(2, 1), block_sizes=(3, 6))


def _w16(bundle, flag="ITTFL", *, keep_missing=False):
    """W16 NASA rows with the arm, built here without the runner's helpers."""
    adsl = bundle["ADSL"].frame
    nasa = bundle["ADNASA"].frame
    nasa = nasa.loc[nasa["AVISIT"] == "W16"]
    if not keep_missing:
        nasa = nasa.loc[nasa["CHG"].notna()]
    subjects = adsl.loc[adsl[flag] == "Y", ["USUBJID", "STRATUM", "TRT01P", "RANDSEQ"]]
    return subjects.merge(nasa, on="USUBJID").sort_values(["RANDSEQ", "USUBJID"])


def _results(run):
    return {r.analysis_id: r for r in run.results.all()}


def _close(stored, expected):
    assert stored == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


def test_an_unblinded_run_equals_direct_calls_and_records_its_provenance(trial, ns_dupi, plan, ugo):
    from trialdesk.analysis.datasets import build_datasets
    from trialdesk.analysis.runner import context_of, run_analysis, run_plan
    from trialdesk.audit.models import AuditEvent

    run = run_plan(ns_dupi, plan, blinded=False, user=ugo, seed=7)
    bundle = build_datasets(ns_dupi, plan, blinded=False, user=ugo)
    results = _results(run)

    # provenance
    assert run.dataset_hashes == bundle.hashes()
    assert run.study_sha256 == ns_dupi.current_version.sha256
    assert run.study_version_label == "1.0"
    assert run.plan_sha256 == plan.sha256 and run.plan_version == plan.version
    assert run.code_version == version("trialdesk")
    assert (run.seed, run.blinded, run.requested_by) == (7, False, ugo)
    assert run.started_at <= run.finished_at
    assert list(results) == [a.id for a in plan.analyses]
    for result in results.values():
        assert result.dataset_sha256 == run.dataset_hashes[result.dataset]
    event = AuditEvent.objects.get(action="analysis.run", entity_id=str(run.pk))
    changes = json.loads(event.changes)
    assert changes["seed"] == 7 and changes["datasets"] == run.dataset_hashes

    # primary ANCOVA, ITT and per-protocol
    for analysis_id, flag in (("NASA_ANCOVA", "ITTFL"), ("NASA_ANCOVA_PP", "PPROTFL")):
        data = _w16(bundle, flag)
        fit = stats.fit_ancova(
            data, "CHG ~ BASE + SITEID + TRT01P", treatment="TRT01P", reference="PBO"
        )
        stored = results[analysis_id].tables["differences"][0]
        assert stored["contrast"] == "DUPI - PBO"
        for key in ("estimate", "se", "p", "lower", "upper"):
            _close(stored[key], fit.differences.iloc[0][key])
        assert results[analysis_id].n_subjects == len(data)
    assert results["NASA_ANCOVA"].n_subjects == 7
    assert results["NASA_ANCOVA_PP"].n_subjects == 5

    # Bayesian posterior from the ANCOVA
    diff = stats.fit_ancova(
        _w16(bundle), "CHG ~ BASE + SITEID + TRT01P", treatment="TRT01P", reference="PBO"
    ).differences.iloc[0]
    post = stats.normal_posterior(diff["estimate"], diff["se"])
    stored = results["NASA_BAYES"].tables["posterior"][0]
    _close(stored["prob_below_threshold"], post.prob_below(-1.0))
    _close(stored["posterior_mean"], post.mean)

    # Wilcoxon and Hodges-Lehmann
    data = _w16(bundle)
    rank = stats.wilcoxon_rank_sum(
        data.loc[data["TRT01P"] == "DUPI", "CHG"], data.loc[data["TRT01P"] == "PBO", "CHG"]
    )
    stored = results["NASA_HODGES_LEHMANN"].tables["test"][0]
    _close(stored["hodges_lehmann"], rank.hodges_lehmann)
    _close(stored["p_value"], rank.p_value)

    # re-randomization test over every ITT subject, missing outcomes included
    everyone = _w16(bundle, keep_missing=True)
    assert len(everyone) == 9
    test = stats.rerandomization_test(
        everyone,
        "CHG ~ BASE + SITEID + TRT01P",
        treatment="TRT01P",
        scheme=SCHEME,
        reference="PBO",
        stratum="STRATUM",
        order="RANDSEQ",
        seed=7,
    )
    stored = results["NASA_RERANDOMIZATION"].tables["test"][0]
    _close(stored["p_value"], test.p_value)
    _close(stored["estimate"], test.estimate)
    assert stored["method"] == test.method

    # tipping point: delta 0 imputes the control mean for both missing subjects
    imputed = everyone.dropna(subset=["BASE"]).copy()
    control_mean = imputed.loc[imputed["TRT01P"] == "PBO", "CHG"].mean()
    imputed["CHG"] = imputed["CHG"].fillna(control_mean)
    fit = stats.fit_ancova(
        imputed, "CHG ~ BASE + SITEID + TRT01P", treatment="TRT01P", reference="PBO"
    )
    first = results["NASA_TIPPING_POINT"].tables["deltas"][0]
    assert (first["delta"], first["n_imputed"]) == (0.0, 2)
    _close(first["estimate"], fit.differences.iloc[0]["estimate"])
    deltas = results["NASA_TIPPING_POINT"].tables["deltas"]
    assert [d["estimate"] for d in deltas] == sorted(d["estimate"] for d in deltas)
    assert results["NASA_TIPPING_POINT"].tables["summary"][0]["n_imputed"] == 2

    # infections: Poisson with follow-up years as exposure
    adsl = bundle["ADSL"].frame
    inf = adsl[["USUBJID", "TRT01P"]].merge(bundle["ADINF"].frame, on="USUBJID")
    inf = inf.loc[inf["ANL01FL"] == "Y"]
    rate = stats.fit_rate_model(
        inf, "AVAL ~ SITEID + TRT01P", exposure="EXPYRS", treatment="TRT01P", reference="PBO"
    )
    stored = results["INFECTIONS_RATE"].tables["rate_ratios"][0]
    _close(stored["ratio"], rate.rate_ratios.iloc[0]["ratio"])

    # what cannot run is stored with its reason
    for analysis_id in ("DLQI_W16", "TEWL_W16", "IGE_W16", "TCS_ANCOVA", "PRURITUS_MMRM"):
        assert results[analysis_id].status == "not_run"
        assert "too little data" in results[analysis_id].reason
        assert results[analysis_id].tables == {}

    # an MMRM over the visits that have data equals a direct fit
    mmrm = plan.analysis("PRURITUS_MMRM").model_copy(update={"visits": ["W2", "W16"]})
    outcome = run_analysis(bundle, mmrm, context_of(ns_dupi, plan, 7))
    pruritus = adsl[["USUBJID", "TRT01P", "ITTFL"]].merge(bundle["ADPRUR"].frame, on="USUBJID")
    pruritus = pruritus.loc[pruritus["AVISIT"].isin(["W2", "W16"]) & pruritus["CHG"].notna()]
    pruritus = pruritus.assign(
        AVISIT=pd.Categorical(pruritus["AVISIT"], categories=["W2", "W16"], ordered=True),
        TRT01P=pd.Categorical(pruritus["TRT01P"], categories=["PBO", "DUPI"]),
    )
    fit = stats.fit_mmrm(
        pruritus,
        "CHG ~ BASE + SITEID + TRT01P * AVISIT",
        subject="USUBJID",
        visit="AVISIT",
        df_method="kenward-roger",
    )
    expected = fit.contrasts("TRT01P", by="AVISIT", reference="PBO")
    stored = outcome.tables["differences"]
    assert [row["AVISIT"] for row in stored] == ["W2", "W16"]
    for row, (_, exp) in zip(stored, expected.iterrows(), strict=True):
        for key in ("estimate", "se", "df", "p"):
            assert row[key] == pytest.approx(float(exp[key]), rel=1e-6)


def test_a_blinded_command_run_stores_pooled_summaries_without_reading_the_allocation(
    trial, ns_dupi, simon
):
    from trialdesk.analysis.commands import analyze
    from trialdesk.analysis.models import AnalysisRun
    from trialdesk.analysis.runner import latest_run

    with CaptureQueriesContext(connection) as queries:
        result = CliRunner().invoke(analyze, ["--study", "ns-dupi", "--seed", "3", "--by", "simon"])
    assert result.exit_code == 0, result.output
    sql = " ".join(q["sql"] for q in queries.captured_queries).lower()
    for table in ALLOCATION_TABLES:
        assert table not in sql
    run = AnalysisRun.objects.get()
    assert (run.blinded, run.seed, run.requested_by) == (True, 3, simon)
    assert set(run.dataset_hashes) == {
        "ADSL",
        "ADNASA",
        "ADPRUR",
        "ADPAIN",
        "ADDLQI",
        "ADTEWL",
        "ADIGE",
        "ADINF",
        "ADTCS",
        "ADMARK",
        "ADAE",
        "ADLB",
    }
    statuses = {r.status for r in run.results.all()}
    assert statuses == {"blinded"}
    pooled = run.results.get(analysis_id="NASA_ANCOVA").tables["pooled"]
    changes = pd.Series([w16 - d0 for d0, w16 in NASA.values() if w16 is not None])
    assert pooled == [
        {
            "visit": "W16",
            "n": len(changes),
            "mean": pytest.approx(changes.mean()),
            "sd": pytest.approx(changes.std()),
            "median": changes.median(),
            "min": changes.min(),
            "max": changes.max(),
        }
    ]
    assert "NASA_ANCOVA" in result.output and "run " in result.output

    refused = CliRunner().invoke(analyze, ["--study", "ns-dupi", "--unblinded", "--by", "simon"])
    assert refused.exit_code == 1 and "may not see the allocations" in refused.output
    no_user = CliRunner().invoke(analyze, ["--study", "ns-dupi", "--unblinded"])
    assert no_user.exit_code == 2 and "--by" in no_user.output
    assert AnalysisRun.objects.count() == 1
    assert latest_run(ns_dupi, blinded=True) == run
    assert latest_run(ns_dupi, blinded=False) is None


def test_records_are_json_safe():
    from trialdesk.analysis.runner import records

    frame = pd.DataFrame(
        {"a": [np.int64(2), np.int64(3)], "b": [np.nan, math.inf], "c": ["x", None]}
    )
    assert records(frame) == [{"a": 2, "b": None, "c": "x"}, {"a": 3, "b": None, "c": None}]


def test_the_headline_names_the_effect():
    from trialdesk.analysis.commands import headline

    tables = {"differences": [{"contrast": "DUPI - PBO", "estimate": -2.5, "p": 0.0312}]}
    assert headline(tables) == "DUPI - PBO -2.5, p 0.0312"
    summary = {"tipping_delta": 1.5, "note": "significance lost at this delta"}
    assert headline({"summary": [summary]}) == "tipping delta 1.5 (significance lost at this delta)"
    assert headline({}) == ""


@pytest.mark.parametrize(
    ("p_values", "delta", "note"),
    [
        ([0.01, 0.03, 0.2, 0.01], 1.0, "significance lost at this delta"),
        ([0.2, 0.01, 0.3, 0.4], None, "not significant without a shift"),
        ([0.001, 0.01, 0.02, 0.049], None, "significant at every delta tried"),
    ],
)
def test_the_tipping_delta_is_the_first_that_loses_significance(p_values, delta, note):
    from trialdesk.analysis.runner import _tipping

    rows = [{"delta": d, "p": p} for d, p in zip([0.0, 0.5, 1.0, 1.5], p_values, strict=True)]
    tipping = _tipping(rows, _analysis())
    assert tipping == {"tipping_delta": delta, "note": note}


def _analysis():
    from trialdesk.analysis.plan import Analysis

    return Analysis(
        id="TP",
        label="tipping",
        kind="sensitivity",
        dataset="ADNASA",
        param="NASA",
        visits=["W16"],
        method="tipping_point",
        deltas=[0.0, 0.5, 1.0, 1.5],
    )


def _hand_bundle():
    """Two arms of three subjects, pruritus at D0, W2 and W4, built by hand (no database)."""
    from trialdesk.analysis.datasets import AnalysisDataset, DatasetBundle

    arms = {"S1": "DUPI", "S2": "DUPI", "S3": "DUPI", "S4": "PBO", "S5": "PBO", "S6": "PBO"}
    adsl = pd.DataFrame(
        {
            "USUBJID": list(arms),
            "STRATUM": ["TLS"] * 6,
            "TRT01P": list(arms.values()),
            "RANDSEQ": range(1, 7),
            "ITTFL": ["Y"] * 6,
            "PPROTFL": ["Y"] * 6,
            "SAFFL": ["Y"] * 6,
        }
    )
    rows = []
    for index, subject in enumerate(arms):
        for week, visit in ((2, "W2"), (4, "W4")):
            rows.append(
                {
                    "USUBJID": subject,
                    "SITEID": "TLS",
                    "PARAMCD": "PRURITUS",
                    "AVISIT": visit,
                    "AVISITN": week,
                    "AVAL": 5.0 - index * 0.3 - week * 0.2,
                    "BASE": 6.0 + index % 2,
                    "CHG": -1.0 - index * 0.3 - week * 0.2,
                    "ANL01FL": "Y",
                }
            )
    datasets = {"ADSL": adsl, "ADPRUR": pd.DataFrame(rows)}
    return DatasetBundle("mini", False, {k: AnalysisDataset(k, v) for k, v in datasets.items()})


def _context():
    from trialdesk.analysis.runner import Context

    return Context(active="DUPI", control="PBO", scheme=SCHEME, seed=1)


def test_an_mmrm_that_does_not_converge_is_stored_with_its_reason(monkeypatch):
    from trialdesk.analysis import runner
    from trialdesk.stats.mmrm.errors import ConvergenceError

    def fails(*args, **kwargs):
        raise ConvergenceError("no optimizer converged")

    monkeypatch.setattr(runner.stats, "fit_mmrm", fails)
    analysis = _analysis().model_copy(
        update={"method": "mmrm", "param": "PRURITUS", "dataset": "ADPRUR", "visits": ["W2", "W4"]}
    )
    outcome = runner.run_analysis(_hand_bundle(), analysis, _context())
    assert outcome.status == "not_run"
    assert "ConvergenceError" in outcome.reason and outcome.tables == {}


def test_an_arm_with_too_few_subjects_is_not_run():
    from trialdesk.analysis.runner import run_analysis

    bundle = _hand_bundle()
    adsl = bundle["ADSL"].frame
    adsl.loc[adsl["USUBJID"].isin(["S5", "S6"]), "PPROTFL"] = "N"
    analysis = _analysis().model_copy(
        update={
            "method": "ancova",
            "param": "PRURITUS",
            "dataset": "ADPRUR",
            "visits": ["W4"],
            "population": "PP",
            "covariates": ["BASE"],
        }
    )
    outcome = run_analysis(bundle, analysis, _context())
    assert outcome.status == "not_run"
    assert outcome.reason.startswith("too little data: 1 analysable subject(s) in arm PBO")
    itt = run_analysis(bundle, analysis.model_copy(update={"population": "ITT"}), _context())
    assert itt.status == "done" and itt.n_subjects == 6


def test_the_cli_lists_analyze():
    from trialdesk.cli import COMMANDS

    assert ("trialdesk.analysis.commands", "analyze") in COMMANDS


def test_stored_runs_and_results_cannot_be_changed(ns_dupi, plan):
    from django.db import DatabaseError, transaction

    from trialdesk.analysis.models import AnalysisResult, AnalysisRun
    from trialdesk.analysis.runner import run_plan

    run = run_plan(ns_dupi, plan, blinded=True, seed=1)
    result = run.results.first()
    for model, pk, change in ((AnalysisRun, run.pk, {"seed": 2}), (AnalysisResult, result.pk, {})):
        table = model._meta.db_table
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            model.objects.filter(pk=pk).update(**(change or {"status": "done"}))
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])
    assert AnalysisRun.objects.get(pk=run.pk).seed == 1
