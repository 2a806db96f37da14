"""The analysis plan file: NS-DUPI's plan and what the schema refuses."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from trialdesk.analysis.plan import PLAN_FILE, AnalysisPlanFile, PlanError, load_plan

MINIMAL = """
study: mini
version: "1.0"
control_arm: P
per_protocol: {min_dosing_visits: 1, required_dataset: ADNASA, required_param: NASA,
               required_visit: W16}
analyses:
  - {id: A1, label: primary, kind: primary, dataset: ADNASA, param: NASA, visits: [W16],
     method: ancova}
"""


def _write(tmp_path, text):
    (tmp_path / PLAN_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_ns_dupi_declares_the_analyses_of_the_protocol(studies_dir):
    plan = load_plan(studies_dir / "ns-dupi")
    methods = {a.id: a.method for a in plan.analyses}
    assert methods["NASA_ANCOVA"] == "ancova"
    assert methods["NASA_RERANDOMIZATION"] == "rerandomization"
    assert methods["NASA_HODGES_LEHMANN"] == "hodges_lehmann"
    assert methods["NASA_BAYES"] == "bayes_posterior"
    assert plan.analysis("NASA_BAYES").threshold == -1.0
    assert plan.analysis("NASA_ANCOVA_PP").population == "PP"
    assert methods["NASA_TIPPING_POINT"] == "tipping_point"
    for mmrm in ("PRURITUS_MMRM", "PAIN_MMRM"):
        analysis = plan.analysis(mmrm)
        assert (analysis.method, analysis.covariance, analysis.df_method) == (
            "mmrm",
            "us",
            "kenward-roger",
        )
        assert analysis.visits[0] == "W2" and analysis.visits[-1] == "W28"
    assert plan.analysis("INFECTIONS_RATE").exposure == "EXPYRS"
    assert {"DLQI_W16", "DLQI_W28", "TEWL_W16", "IGE_W16", "TCS_ANCOVA"} <= set(methods)
    assert plan.per_protocol.min_dosing_visits == 7
    assert plan.analysis("NASA_ANCOVA").covariates == ["BASE", "SITEID"]


def test_the_hash_follows_the_content_not_the_layout(tmp_path):
    plan = load_plan(_write(tmp_path, MINIMAL))
    assert len(plan.sha256) == 64
    relaid = load_plan(_write(tmp_path, "# comment\n" + MINIMAL.replace("P\n", "'P'\n")))
    assert relaid.sha256 == plan.sha256
    changed = load_plan(
        _write(tmp_path, MINIMAL.replace("min_dosing_visits: 1", "min_dosing_visits: 2"))
    )
    assert changed.sha256 != plan.sha256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("method: ancova", "method: rate_model"), "needs exposure"),
        (("method: ancova", "method: bayes_posterior"), "needs threshold"),
        (("method: ancova", "method: tipping_point"), "needs deltas"),
        (("method: ancova", "method: anova"), "analyses.0.method"),
        (("visits: [W16]", "visits: [W2, W16]"), "analyses one visit"),
        (("param: NASA, visits", "param: NASA, colour: red, visits"), "colour"),
        (("id: A1", "id: a1"), "analyses.0.id"),
    ],
)
def test_an_invalid_plan_is_refused_naming_the_key(tmp_path, change, message):
    with pytest.raises(PlanError, match=message):
        load_plan(_write(tmp_path, MINIMAL.replace(*change)))


def test_an_analysis_declared_twice_is_refused():
    content = AnalysisPlanFile.model_validate(YAML(typ="safe").load(MINIMAL)).model_dump()
    content["analyses"] = content["analyses"] * 2
    with pytest.raises(ValueError, match="declared twice"):
        AnalysisPlanFile.model_validate(content)


def test_a_missing_or_broken_file_is_named(tmp_path):
    with pytest.raises(PlanError, match="no analysis plan file"):
        load_plan(tmp_path)
    other = tmp_path / "other_plan.yaml"
    other.write_text(MINIMAL, encoding="utf-8")
    assert load_plan(other).study == "mini"
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(_write(tmp_path, "analyses: [unclosed"))
