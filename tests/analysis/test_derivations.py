"""Derivations the small trial of ``conftest.trial`` does not reach: sums, missing baseline."""

from __future__ import annotations

import math

import pytest

from tests.analysis import world

VISITS = ["W2", "W4", "W6", "W8", "W10", "W12", "W14", "W16"]


@pytest.fixture
def two_subjects(ns_dupi, stocked, new_subject, claire):
    """TLS-001 has every visit to W16 done (W4 five days late) with grams at each, no D0 NASA,
    IL-17A at D0 and twice at W16, S. aureus at W16; TLS-002 has W2 done only, no
    corticosteroid used."""
    full = world.randomized(new_subject, "TLS", claire)
    partial = world.randomized(new_subject, "TLS", claire)
    world.tcs(full, "D0", 15, claire)
    for index, code in enumerate(VISITS):
        world.visit_done(full, code, claire, shift=5 if code == "W4" else 0)
        world.tcs(full, code, 30 * (index + 1), claire)
    world.nasa(full, "W16", 4, claire)
    world.marker(full, "D0", "IL17A", 8.0, claire)
    world.marker(full, "W16", "IL17A", 3.0, claire)
    world.marker(full, "W16", "IL17A", 4.0, claire)
    world.marker(full, "W16", "S_AUREUS", 0.25, claire)
    world.visit_done(partial, "W2", claire)
    world.tcs(partial, "W2", 0, claire)
    return full, partial


def _row(frame, subject_id):
    return frame.loc[frame["USUBJID"] == subject_id].iloc[0]


def test_grams_are_summed_over_the_visits_and_flagged_only_when_complete(
    two_subjects, ns_dupi, plan
):
    from trialdesk.analysis.datasets import build_datasets

    bundle = build_datasets(ns_dupi, plan, blinded=True)
    tcs = bundle["ADTCS"].frame
    full = _row(tcs, "TLS-001")
    assert full["AVAL"] == pytest.approx(30 * sum(range(1, 9)))
    assert (full["BASE"], full["NVISREC"], full["ANL01FL"]) == (15, 8, "Y")
    assert full["EXPDAYS"] == 112
    partial = _row(tcs, "TLS-002")
    assert (partial["AVAL"], partial["NVISREC"], partial["ANL01FL"]) == (0, 1, None)
    assert math.isnan(partial["BASE"])

    nasa = bundle["ADNASA"].frame
    w16 = nasa.loc[(nasa["USUBJID"] == "TLS-001") & (nasa["AVISIT"] == "W16")].iloc[0]
    assert w16["AVAL"] == 4
    assert math.isnan(w16["BASE"]) and math.isnan(w16["CHG"]) and w16["ANL01FL"] is None

    adsl = bundle["ADSL"].frame
    excluded = _row(adsl, "TLS-001")["PPEXCL"]
    assert "W4" not in excluded  # an out-of-window W4 is a minor deviation
    assert "0 dosing visits" in excluded
    assert _row(adsl, "TLS-001")["SAFFL"] == "N"
    assert math.isnan(_row(adsl, "TLS-001")["NASABL"])


def test_a_major_deviation_at_any_visit_when_the_plan_names_no_visit(two_subjects, ns_dupi, plan):
    from trialdesk.analysis.datasets import build_datasets
    from trialdesk.analysis.plan import MajorDeviation

    rule = plan.per_protocol.model_copy(
        update={"major_deviations": [MajorDeviation(kind="visit_out_of_window")]}
    )
    strict = plan.model_copy(update={"per_protocol": rule})
    adsl = build_datasets(ns_dupi, strict, blinded=True)["ADSL"].frame
    assert "major deviation visit_out_of_window at W4" in _row(adsl, "TLS-001")["PPEXCL"]
    assert "major deviation" not in _row(adsl, "TLS-002")["PPEXCL"]


def test_markers_are_one_parameter_per_code_averaged_over_records(two_subjects, ns_dupi, plan):
    from trialdesk.analysis.datasets import build_datasets

    marks = build_datasets(ns_dupi, plan, blinded=True)["ADMARK"].frame
    assert set(marks["PARAMCD"]) >= {"IL17A", "S_AUREUS", "SHANNON"}
    full = marks.loc[marks["USUBJID"] == "TLS-001"].set_index(["PARAMCD", "AVISIT"])
    il17 = full.loc[("IL17A", "W16")]
    assert (il17["AVAL"], il17["BASE"], il17["CHG"], il17["ANL01FL"]) == (3.5, 8.0, -4.5, "Y")
    assert full.loc[("IL17A", "D0")]["ABLFL"] == "Y"
    aureus = full.loc[("S_AUREUS", "W16")]
    assert aureus["AVAL"] == 0.25 and math.isnan(aureus["CHG"]) and aureus["ANL01FL"] is None
    assert full.loc[("IL17A", "W16")]["PARAM"] == "IL-17A"
