"""Safety summaries (trialdesk.analysis.safety) on hand-made bundles: every count by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from trialdesk.analysis import safety
from trialdesk.analysis.datasets import AnalysisDataset, DatasetBundle

#: Subject: (arm, safety flag, doses, days on treatment, compliance %).
SUBJECTS = {
    "S1": ("DUPI", "Y", 9, 99, 100.0),
    "S2": ("DUPI", "Y", 7, 85, 77.8),
    "S3": ("DUPI", "Y", 9, 99, 100.0),
    "S4": ("PBO", "Y", 9, 99, 100.0),
    "S5": ("PBO", "Y", 8, 92, 88.9),
    "S6": ("DUPI", "N", 0, None, 0.0),
}
#: (subject, SOC, term, TE, serious, severe, related, AESI, withdrawn, death).
EVENTS = [
    ("S1", "Eye disorders", "Conjunctivitis", "Y", "N", None, "Y", "Y", None, None),
    ("S1", "Eye disorders", "Conjunctivitis", "Y", "N", None, "Y", "Y", None, None),
    ("S1", "Eye disorders", "Keratitis", "Y", "N", None, None, "Y", None, None),
    ("S2", "Eye disorders", "Conjunctivitis", "Y", "N", None, None, "Y", None, None),
    ("S2", "Nervous system disorders", "Headache", "Y", "Y", "Y", None, None, "Y", None),
    ("S4", "Nervous system disorders", "Headache", "Y", "N", None, None, None, None, None),
    ("S5", "Infections and infestations", "Cellulitis", "Y", "Y", "Y", None, "Y", None, "Y"),
    # Not treatment-emergent, and a subject outside the safety population: never counted.
    ("S3", "Nervous system disorders", "Headache", None, "N", None, None, None, None, None),
    ("S6", "Eye disorders", "Conjunctivitis", "Y", "N", None, None, None, None, None),
]
#: (subject, test, baseline flag, post-baseline flag, grade).
LABS = [
    ("S1", "ALT", "Y", None, 0),
    ("S1", "ALT", None, "Y", 1),
    ("S1", "ALT", None, "Y", 2),
    ("S2", "ALT", "Y", None, 1),
    ("S2", "ALT", None, "Y", 1),
    ("S3", "ALT", None, "Y", 3),  # no baseline
    ("S4", "ALT", "Y", None, 0),
    ("S4", "ALT", None, "Y", None),  # not gradable
    ("S5", "ALT", "Y", None, 0),
    ("S5", "ALT", None, "Y", 0),
    ("S1", "HGB", "Y", None, 0),
    ("S6", "ALT", "Y", None, 0),  # not in the safety population
]


def _bundle(*, blinded: bool) -> DatasetBundle:
    adsl = pd.DataFrame(
        [
            {
                "USUBJID": s,
                "TRT01A": arm if flag == "Y" else None,
                "SAFFL": flag,
                "NDOSES": doses,
                "TRTDURD": days,
                "COMPLPCT": pct,
            }
            for s, (arm, flag, doses, days, pct) in SUBJECTS.items()
        ]
    )
    adae = pd.DataFrame(
        EVENTS,
        columns=[
            "USUBJID",
            "AEBODSYS",
            "AEDECOD",
            "TRTEMFL",
            "AESER",
            "AESEVFL",
            "AERELFL",
            "AESIFL",
            "AEDISFL",
            "AESDTH",
        ],
    )
    adlb = pd.DataFrame(LABS, columns=["USUBJID", "PARAMCD", "ABLFL", "ANL01FL", "ATOXGR"])
    adlb["ATOXGR"] = adlb["ATOXGR"].astype(float)
    if blinded:
        adsl = adsl.drop(columns="TRT01A")
    else:
        arm = {s: v[0] for s, v in SUBJECTS.items()}
        adae.insert(1, "ARM", adae["USUBJID"].map(arm))
        adlb.insert(1, "ARM", adlb["USUBJID"].map(arm))
    frames = {"ADSL": adsl, "ADAE": adae, "ADLB": adlb}
    return DatasetBundle(
        "ns-dupi", blinded, {name: AnalysisDataset(name, f) for name, f in frames.items()}
    )


def _cell(frame, column, **where):
    mask = pd.Series(True, index=frame.index)
    for key, value in where.items():
        mask &= frame[key] == value
    rows = frame.loc[mask]
    assert len(rows) == 1, where
    return rows.iloc[0][column]


def test_ae_by_soc_by_arm_counts_subjects_and_events():
    table = safety.ae_by_soc(_bundle(blinded=False))
    assert list(table.columns) == [
        "AEBODSYS",
        "AEDECOD",
        "ARM",
        "N",
        "SUBJECTS",
        "EVENTS",
        "PCT",
    ]
    assert set(table["ARM"]) == {"DUPI", "PBO"}
    any_dupi = table.iloc[0]
    assert (any_dupi["AEBODSYS"], any_dupi["AEDECOD"], any_dupi["ARM"]) == ("ANY", "ANY", "DUPI")
    assert (any_dupi["N"], any_dupi["SUBJECTS"], any_dupi["EVENTS"]) == (3, 2, 5)
    assert any_dupi["PCT"] == pytest.approx(200 / 3)
    assert _cell(table, "SUBJECTS", AEBODSYS="ANY", ARM="PBO") == 2
    eye = {"AEBODSYS": "Eye disorders"}
    assert _cell(table, "SUBJECTS", **eye, AEDECOD="ANY", ARM="DUPI") == 2
    assert _cell(table, "EVENTS", **eye, AEDECOD="ANY", ARM="DUPI") == 4
    assert _cell(table, "SUBJECTS", **eye, AEDECOD="Conjunctivitis", ARM="DUPI") == 2
    assert _cell(table, "EVENTS", **eye, AEDECOD="Conjunctivitis", ARM="DUPI") == 3
    assert _cell(table, "SUBJECTS", **eye, AEDECOD="Conjunctivitis", ARM="PBO") == 0
    assert _cell(table, "PCT", **eye, AEDECOD="Conjunctivitis", ARM="PBO") == 0.0
    # S3's headache is not treatment-emergent, S6 is not in the safety population.
    nervous = {"AEBODSYS": "Nervous system disorders", "AEDECOD": "Headache"}
    assert _cell(table, "SUBJECTS", **nervous, ARM="DUPI") == 1
    assert _cell(table, "SUBJECTS", **nervous, ARM="PBO") == 1


def test_ae_by_soc_orders_classes_then_terms_by_frequency():
    table = safety.ae_by_soc(_bundle(blinded=False))
    pairs = list(dict.fromkeys(zip(table["AEBODSYS"], table["AEDECOD"], strict=True)))
    assert pairs == [
        ("ANY", "ANY"),
        ("Eye disorders", "ANY"),
        ("Eye disorders", "Conjunctivitis"),
        ("Eye disorders", "Keratitis"),
        ("Infections and infestations", "ANY"),
        ("Infections and infestations", "Cellulitis"),
        ("Nervous system disorders", "ANY"),
        ("Nervous system disorders", "Headache"),
    ]


def test_ae_by_soc_pooled_is_the_sum_of_the_arms_for_event_counts():
    by_arm = safety.ae_by_soc(_bundle(blinded=False))
    pooled = safety.ae_by_soc(_bundle(blinded=True))
    assert set(pooled["ARM"]) == {safety.POOLED}
    assert set(pooled["N"]) == {5}
    summed = by_arm.groupby(["AEBODSYS", "AEDECOD"], sort=False)[["EVENTS", "SUBJECTS"]].sum()
    merged = pooled.set_index(["AEBODSYS", "AEDECOD"])[["EVENTS", "SUBJECTS"]]
    # A subject is in one arm, so subjects add up too.
    pd.testing.assert_frame_equal(merged, summed)
    assert _cell(pooled, "PCT", AEBODSYS="ANY", AEDECOD="ANY") == pytest.approx(80.0)


def test_ae_overview_categories_by_arm():
    table = safety.ae_overview(_bundle(blinded=False))
    expected = {
        "ANY": ((2, 5), (2, 2)),
        "RELATED": ((1, 2), (0, 0)),
        "SERIOUS": ((1, 1), (1, 1)),
        "SEVERE": ((1, 1), (1, 1)),
        "AESI": ((2, 4), (1, 1)),
        "DISCONTINUED": ((1, 1), (0, 0)),
        "DEATH": ((0, 0), (1, 1)),
    }
    assert list(dict.fromkeys(table["CATEGORY"])) == list(expected)
    for category, (dupi, pbo) in expected.items():
        row = table.loc[table["CATEGORY"] == category].set_index("ARM")
        assert (row.loc["DUPI", "SUBJECTS"], row.loc["DUPI", "EVENTS"]) == dupi, category
        assert (row.loc["PBO", "SUBJECTS"], row.loc["PBO", "EVENTS"]) == pbo, category
        assert row.loc["DUPI", "N"] == 3 and row.loc["PBO", "N"] == 2
    assert all(table["LABEL"].str.len() > 0)


def test_ae_overview_pooled():
    table = safety.ae_overview(_bundle(blinded=True)).set_index("CATEGORY")
    assert set(table["ARM"]) == {"All"}
    assert table.loc["ANY", "SUBJECTS"] == 4 and table.loc["ANY", "EVENTS"] == 7
    assert table.loc["ANY", "PCT"] == pytest.approx(80.0)
    assert table.loc["DEATH", "SUBJECTS"] == 1


def test_lab_shifts_baseline_by_worst_grade():
    table = safety.lab_shifts(_bundle(blinded=False))
    assert list(table.columns) == ["PARAMCD", "ARM", "BTOXGR", "WTOXGR", "SUBJECTS", "N"]
    alt = table.loc[table["PARAMCD"] == "ALT"]
    got = {(r.ARM, r.BTOXGR, r.WTOXGR): r.SUBJECTS for r in alt.itertuples()}
    assert got == {
        ("DUPI", "0", "2"): 1,  # S1: worst of 1 and 2
        ("DUPI", "1", "1"): 1,  # S2
        ("DUPI", "Missing", "3"): 1,  # S3: no baseline
        ("PBO", "0", "Missing"): 1,  # S4: post-baseline not gradable
        ("PBO", "0", "0"): 1,  # S5
    }
    hgb = table.loc[table["PARAMCD"] == "HGB"]
    got = {(r.ARM, r.BTOXGR, r.WTOXGR): r.SUBJECTS for r in hgb.itertuples()}
    assert got == {
        ("DUPI", "0", "Missing"): 1,
        ("DUPI", "Missing", "Missing"): 2,
        ("PBO", "Missing", "Missing"): 2,
    }


def test_lab_shift_counts_add_up_to_the_arm_for_every_test():
    for blinded in (False, True):
        table = safety.lab_shifts(_bundle(blinded=blinded))
        sums = table.groupby(["PARAMCD", "ARM"])["SUBJECTS"].sum()
        ns = table.groupby(["PARAMCD", "ARM"])["N"].first()
        pd.testing.assert_series_equal(sums, ns, check_names=False)
        assert set(ns.to_dict().values()) == ({5} if blinded else {3, 2})


def test_lab_shifts_orders_grades_with_missing_last():
    table = safety.lab_shifts(_bundle(blinded=True))
    alt = table.loc[table["PARAMCD"] == "ALT"]
    assert list(zip(alt["BTOXGR"], alt["WTOXGR"], strict=True)) == [
        ("0", "0"),
        ("0", "2"),
        ("0", "Missing"),
        ("1", "1"),
        ("Missing", "3"),
    ]


def test_exposure_summaries_by_arm_and_pooled():
    table = safety.exposure(_bundle(blinded=False))
    doses = table.loc[table["PARAMCD"] == "NDOSES"].set_index("ARM")
    assert doses.loc["DUPI", "N"] == 3
    assert doses.loc["DUPI", "MEAN"] == pytest.approx(25 / 3)
    assert doses.loc["DUPI", "SD"] == pytest.approx(
        math.sqrt(((2 / 3) ** 2 * 2 + (4 / 3) ** 2) / 2)
    )
    assert (doses.loc["DUPI", "MEDIAN"], doses.loc["DUPI", "MIN"], doses.loc["DUPI", "MAX"]) == (
        9,
        7,
        9,
    )
    pooled = safety.exposure(_bundle(blinded=True)).set_index("PARAMCD")
    assert set(pooled["ARM"]) == {"All"}
    assert pooled.loc["TRTDURD", "N"] == 5
    assert pooled.loc["TRTDURD", "MEAN"] == pytest.approx((99 * 3 + 85 + 92) / 5)
    assert pooled.loc["COMPLPCT", "MIN"] == pytest.approx(77.8)


def test_summaries_of_a_trial_without_events_or_labs_are_zero_not_errors():
    bundle = _bundle(blinded=False)
    frames = {name: d.frame for name, d in bundle.datasets.items()}
    frames["ADAE"] = frames["ADAE"].iloc[0:0]
    frames["ADLB"] = frames["ADLB"].iloc[0:0]
    empty = DatasetBundle(
        "ns-dupi", False, {name: AnalysisDataset(name, f) for name, f in frames.items()}
    )
    by_soc = safety.ae_by_soc(empty)
    assert list(by_soc["AEBODSYS"]) == ["ANY", "ANY"] and set(by_soc["SUBJECTS"]) == {0}
    overview = safety.ae_overview(empty)
    assert len(overview) == 14 and set(overview["SUBJECTS"]) == {0}
    assert safety.lab_shifts(empty).empty
