"""The tables of the unblinded reports, laid out from hand-made results and safety frames."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def plan():
    from trialdesk.analysis.plan import load_plan

    return load_plan(REPO / "studies" / "ns-dupi")


def _result(analysis_id: str, tables: dict, n: int = 22, status: str = "done", reason: str = ""):
    from trialdesk.analysis.models import AnalysisResult

    population = "PP" if analysis_id.endswith("_PP") else "ITT"
    return AnalysisResult(
        analysis_id=analysis_id,
        status=status,
        reason=reason,
        population=population,
        n_subjects=n,
        tables=tables,
    )


DIFF = {
    "contrast": "DUPI - PBO",
    "estimate": -1.3651,
    "se": 1.0611,
    "lower": -3.5944,
    "upper": 0.8642,
    "p": 0.21457,
}


def test_the_primary_table_formats_each_method_and_says_why_one_did_not_run(plan):
    from trialdesk.reports.unblinded import _primary

    results = {
        "NASA_ANCOVA": _result("NASA_ANCOVA", {"differences": [DIFF]}),
        "NASA_RERANDOMIZATION": _result(
            "NASA_RERANDOMIZATION",
            {
                "test": [
                    {
                        "estimate": -1.3651,
                        "p_value": 0.21774,
                        "method": "exact",
                        "n_allocations": 286713,
                    }
                ]
            },
            n=24,
        ),
        "NASA_HODGES_LEHMANN": _result(
            "NASA_HODGES_LEHMANN",
            {
                "test": [
                    {
                        "hodges_lehmann": -1.0,
                        "lower": -3.0,
                        "upper": 1.0,
                        "conf_level": 0.95785,
                        "p_value": 0.34786,
                    }
                ]
            },
        ),
        "NASA_BAYES": _result(
            "NASA_BAYES",
            {
                "posterior": [
                    {
                        "posterior_mean": -1.3651,
                        "lower": -3.4448,
                        "upper": 0.7146,
                        "threshold": -1.0,
                        "prob_below_threshold": 0.63461,
                    }
                ]
            },
        ),
        "NASA_ANCOVA_PP": _result(
            "NASA_ANCOVA_PP", {}, status="not_run", reason="too little data: 1 subject in PBO"
        ),
        "NASA_J2R": _result(
            "NASA_J2R",
            {
                "differences": [{**DIFF, "estimate": -1.4353, "p": 0.205}],
                "imputation": [{"imputations": 1000, "reference": "PBO"}],
            },
            n=24,
        ),
        "PRURITUS_MMRM": _result("PRURITUS_MMRM", {"differences": [DIFF]}),
    }
    table = _primary(results, plan)
    rows = {row[0]: row[1:] for row in table.rows}
    label = {a.id: a.label for a in plan.analyses}
    assert rows[label["NASA_ANCOVA"]] == (
        "ITT",
        "22",
        "DUPI - PBO: -1.37 (-3.59 to 0.86)",
        "p = 0.215",
    )
    assert rows[label["NASA_RERANDOMIZATION"]][2:] == (
        "-1.37 (exact, 286,713 allocations)",
        "p = 0.218",
    )
    assert rows[label["NASA_HODGES_LEHMANN"]][2] == "HL shift -1.00 (-3.00 to 1.00) [95.8% CI]"
    assert rows[label["NASA_BAYES"]][3] == "P(diff < -1) = 0.635"
    assert rows[label["NASA_ANCOVA_PP"]] == (
        "PP",
        "-",
        "not run: too little data: 1 subject in PBO",
        "-",
    )
    assert rows[label["NASA_J2R"]][2] == (
        "DUPI - PBO: -1.44 (-3.59 to 0.86) [1000 imputations, reference PBO]"
    )
    assert label["PRURITUS_MMRM"] not in rows
    assert len(rows) == 6


def test_ae_by_soc_lists_the_total_each_class_and_its_terms_indented():
    from trialdesk.reports.tables import ae_by_soc_table

    rows = []
    for soc, term, dupi, pbo in (
        ("ANY", "ANY", (3, 4), (1, 1)),
        ("Eye disorders", "ANY", (2, 2), (0, 0)),
        ("Eye disorders", "Conjunctivitis", (2, 2), (0, 0)),
        ("Infections and infestations", "ANY", (1, 2), (1, 1)),
        ("Infections and infestations", "Skin infection", (1, 2), (1, 1)),
    ):
        for arm, n, (subjects, events) in (("DUPI", 4, dupi), ("PBO", 2, pbo)):
            rows.append((soc, term, arm, n, subjects, events, 100 * subjects / n))
    frame = pd.DataFrame(
        rows, columns=["AEBODSYS", "AEDECOD", "ARM", "N", "SUBJECTS", "EVENTS", "PCT"]
    )
    table = ae_by_soc_table(frame)
    assert table.columns == ("System organ class / preferred term", "DUPI (N=4)", "PBO (N=2)")
    assert table.rows == [
        ("Any treatment-emergent adverse event", "3 (75%) [4]", "1 (50%) [1]"),
        ("Eye disorders", "2 (50%) [2]", "0 (0%) [0]"),
        ("\u2003Conjunctivitis", "2 (50%) [2]", "0 (0%) [0]"),
        ("Infections and infestations", "1 (25%) [2]", "1 (50%) [1]"),
        ("\u2003Skin infection", "1 (25%) [2]", "1 (50%) [1]"),
    ]


def test_lab_shifts_keep_graded_tests_and_name_the_others():
    from trialdesk.reports.tables import lab_shift_table

    frame = pd.DataFrame(
        [
            ("alt", "DUPI", "0", "0", 3, 4),
            ("alt", "DUPI", "0", "3", 1, 4),
            ("alt", "PBO", "0", "0", 2, 2),
            ("hgb", "DUPI", "0", "0", 4, 4),
            ("hgb", "PBO", "0", "Missing", 2, 2),
        ],
        columns=["PARAMCD", "ARM", "BTOXGR", "WTOXGR", "SUBJECTS", "N"],
    )
    table = lab_shift_table(frame)
    assert table.columns == ("Test", "Arm", "Baseline grade", "n", "Worst 0", "Worst 3")
    assert table.rows == [("ALT", "DUPI", "0", "4", "3", "1"), ("ALT", "PBO", "0", "2", "2", "0")]
    assert "throughout in every subject: HGB." in table.note


def test_pooled_exposure_has_one_column():
    from trialdesk.reports.tables import exposure_table

    frame = pd.DataFrame(
        [("NDOSES", "Doses given (syringes)", "All", 3, 8.0, 1.0, 8.0, 7.0, 9.0)],
        columns=["PARAMCD", "LABEL", "ARM", "N", "MEAN", "SD", "MEDIAN", "MIN", "MAX"],
    )
    table = exposure_table(frame, [("All", 4)])
    assert table.columns == ("Safety population", "All")
    assert table.rows == [
        ("Subjects in the safety population", "4"),
        ("Doses given (syringes)", "8.0 (1.0); 8.0 (7.0-9.0); n=3"),
    ]
