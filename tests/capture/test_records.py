"""save_form: types and ranges, computed items, hard and soft checks, reason for change, audit."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from trialdesk.audit.models import AuditEvent
from trialdesk.capture.models import FormRecord, ItemValue, Query
from trialdesk.capture.records import (
    CaptureError,
    CaptureNotAllowed,
    HardCheckFailed,
    ReasonRequired,
    save_form,
    values_of,
)
from trialdesk.capture.signals import form_saved
from trialdesk.randomization.models import Kit
from trialdesk.randomization.supply import record_administration

pytestmark = pytest.mark.django_db

DLQI = [f"dlqi_q{i}" for i in range(1, 11)]


@pytest.fixture
def subject(planned_subject):
    """Visits planned, no randomization: all that form capture needs (see conftest)."""
    return planned_subject


@pytest.fixture
def randomized(stocked, new_subject, claire, d0):
    """A randomized subject, with the D0 kits dispensed (for the days-since-dose item)."""
    from trialdesk.randomization.allocation import randomize

    subject = new_subject("TLS")
    randomize(subject, by=claire, on=d0)
    return subject


def _dlqi(subject, by, answers, **kwargs):
    data = dict(zip(DLQI, answers, strict=True))
    return save_form(subject, "DLQI", data, by=by, visit_code="D0", **kwargs).record


def _events(record):
    return AuditEvent.objects.filter(entity_type="capture.formrecord", entity_id=str(record.pk))


# --- types, ranges, required -----------------------------------------------------------------


def test_a_value_out_of_range_is_refused_naming_item_and_value(subject, claire):
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "NASA", {"nasa_total": 13}, by=claire, visit_code="D0")
    assert refused.value.field == "nasa_total"
    assert "13" in str(refused.value) and "maximum 12" in str(refused.value)
    assert not FormRecord.objects.filter(subject=subject).exists()


@pytest.mark.parametrize(
    ("item", "raw"),
    [("nasa_total", "seven"), ("nasa_total", 6.5), ("nasa_date", "2025-02-30"), ("nope", 1)],
)
def test_bad_input_is_refused_and_nothing_is_written(subject, claire, item, raw):
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "NASA", {"nasa_total": 6, item: raw}, by=claire, visit_code="D0")
    assert refused.value.field == item
    assert not ItemValue.objects.exists() and not FormRecord.objects.exists()


def test_required_items_are_required_only_to_complete(subject, claire):
    record = save_form(subject, "TCS", {"tcs_product": "Diprosone"}, by=claire, visit_code="D0")
    assert record.record.status == "in_progress"
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "TCS", {}, by=claire, visit_code="D0", complete=True)
    assert refused.value.field == "tcs_used"


def test_not_done_and_unknown_need_a_reason_and_count_as_filled(subject, claire):
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "TCS", {"tcs_used": {"state": "unknown"}}, by=claire, visit_code="D0")
    assert refused.value.field == "tcs_used" and "reason" in str(refused.value)
    result = save_form(
        subject,
        "TCS",
        {"tcs_used": {"state": "unknown", "reason": "patient does not remember"}},
        by=claire,
        visit_code="D0",
        complete=True,
    )
    row = ItemValue.objects.get(record=result.record, item="tcs_used")
    assert (row.state, row.value, row.reason) == ("unknown", None, "patient does not remember")
    assert result.record.status == "complete"


def test_a_computed_item_cannot_be_typed(subject, claire):
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "DLQI", {"dlqi_total": 3}, by=claire, visit_code="D0")
    assert refused.value.field == "dlqi_total" and "computed" in str(refused.value)


def test_a_form_not_scheduled_at_the_visit_is_refused(subject, claire):
    with pytest.raises(CaptureError) as refused:
        save_form(subject, "NASA", {"nasa_total": 6}, by=claire, visit_code="W2")
    assert refused.value.field == "form"


def test_only_the_sites_staff_enter_data(subject, paul, manon):
    for user in (paul, manon):
        with pytest.raises(CaptureNotAllowed):
            save_form(subject, "NASA", {"nasa_total": 6}, by=user, visit_code="D0")


# --- computed items at their boundaries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total"),
    [
        ([0] * 10, 0),
        ([3] * 10, 30),
        ([1] * 9 + [None], 9),  # one unanswered question scores 0
        ([3] * 8 + [None, None], None),  # two unanswered: not scored
        ([2, 3, 0, 1, 2, 3, 0, 1, 2, 3], 17),
    ],
)
def test_dlqi_total_is_computed(subject, claire, answers, total):
    record = _dlqi(subject, claire, answers)
    assert values_of(record)["dlqi_total"] == total


@pytest.mark.parametrize(
    ("data", "grams"),
    [
        ({"tcs_used": False}, 0),
        ({"tcs_used": True, "tubes_used": 2, "grams_per_tube": 30}, 60.0),
        ({"tcs_used": True, "tubes_used": 0.25, "grams_per_tube": 15}, 3.75),
        ({"tcs_used": True, "tubes_used": 50, "grams_per_tube": 500}, 25000.0),
        ({"tcs_used": True, "tubes_used": 1}, None),
    ],
)
def test_corticosteroid_grams_are_tubes_times_grams_per_tube(subject, claire, data, grams):
    record = save_form(subject, "TCS", data, by=claire, visit_code="D0").record
    assert values_of(record)["tcs_grams"] == grams


@pytest.mark.parametrize(("value", "positive"), [(0.34, False), (0.35, True), (0.36, True)])
def test_specific_ige_positive_at_the_threshold(subject, claire, value, positive):
    data = {"sige_allergen": "Dust mite", "sige_value": value}
    record = save_form(subject, "SIGE", data, by=claire, visit_code="D0").record
    assert values_of(record)["sige_positive"] is positive


@pytest.mark.parametrize(("days_after_dose", "expected"), [(0, 0), (1, 1), (5, 5)])
def test_ae_days_since_last_dose(randomized, claire, d0, days_after_dose, expected):
    subject = randomized
    kit = Kit.objects.filter(subject=subject).order_by("number").first()
    record_administration(
        subject,
        kit.number,
        given_on=d0,
        given_time=dt.time(9, 30),
        injection_site="thigh_right",
        given_by=claire,
        by=claire,
    )
    data = {
        "ae_term": "Conjunctivitis",
        "ae_start_date": (d0 + dt.timedelta(days=days_after_dose)).isoformat(),
        "ae_ongoing": True,
        "ae_serious": False,
    }
    record = save_form(subject, "AE", data, by=claire, visit_code="W2").record
    assert values_of(record)["ae_days_since_last_dose"] == expected


def test_ae_days_since_last_dose_is_empty_without_a_dose(subject, claire, d0):
    data = {"ae_term": "Headache", "ae_start_date": d0.isoformat()}
    record = save_form(subject, "AE", data, by=claire, visit_code="W2").record
    assert values_of(record)["ae_days_since_last_dose"] is None


def test_repeating_records_are_numbered_per_subject(subject, claire, d0):
    numbers = [
        save_form(subject, "CM", {"cm_name": name}, by=claire).record.number
        for name in ("Emollient", "Cetirizine", "Paracetamol")
    ]
    assert numbers == [1, 2, 3]


# --- edit checks ----------------------------------------------------------------------------------


def test_a_hard_check_refuses_the_save_naming_item_and_value(subject, claire, d0):
    data = {
        "ae_term": "Rash",
        "ae_start_date": d0.isoformat(),
        "ae_end_date": (d0 - dt.timedelta(days=1)).isoformat(),
    }
    with pytest.raises(HardCheckFailed) as refused:
        save_form(subject, "AE", data, by=claire, visit_code="W2")
    assert refused.value.field == "ae_end_date" and refused.value.check_id == "AE_END_BEFORE_START"
    assert (d0 - dt.timedelta(days=1)).isoformat() in str(refused.value)
    assert not FormRecord.objects.filter(subject=subject).exists()


def test_a_soft_check_saves_and_raises_one_query(subject, claire):
    result = save_form(subject, "NASA", {"nasa_total": 4}, by=claire, visit_code="D0")
    query = Query.objects.get(record=result.record, check_id="NASA_D0_BELOW_INCLUSION")
    assert (query.item, query.check_id, query.status) == (
        "nasa_total",
        "NASA_D0_BELOW_INCLUSION",
        "open",
    )
    assert query.raised_by is None
    save_form(subject, "NASA", {"nasa_total": 3}, by=claire, visit_code="D0", reason="typo")
    assert Query.objects.filter(record=result.record, check_id=query.check_id).count() == 1
    assert AuditEvent.objects.filter(action="query.raise", entity_id=str(query.pk)).count() == 1


# --- reason for change, audit ------------------------------------------------------------------------


def test_a_change_after_the_first_save_needs_a_reason(subject, claire):
    record = _dlqi(subject, claire, [1] * 10)
    with pytest.raises(ReasonRequired):
        _dlqi(subject, claire, [2] + [1] * 9)
    assert values_of(record)["dlqi_q1"] == 1
    _dlqi(subject, claire, [1] * 10)  # no change: no reason needed
    _dlqi(subject, claire, [2] + [1] * 9, reason="transcription error")
    assert values_of(FormRecord.objects.get(pk=record.pk))["dlqi_q1"] == 2


def test_the_audit_trail_records_old_and_new_value_per_item(subject, claire):
    record = _dlqi(subject, claire, [1] * 10)
    _dlqi(subject, claire, [2] + [1] * 9, reason="transcription error")
    create, change = _events(record).order_by("id")
    assert create.action == "form.create"
    assert json.loads(create.changes)["items"]["dlqi_q1"] == [None, 1]
    assert change.action == "form.change" and change.reason == "transcription error"
    items = json.loads(change.changes)["items"]
    assert items == {"dlqi_q1": [1, 2], "dlqi_total": [10, 11]}


def test_a_hook_failure_rolls_the_save_back(subject, claire):
    def refuse(**kwargs):
        raise RuntimeError("safety says no")

    form_saved.connect(refuse, dispatch_uid="test-refuse")
    try:
        with pytest.raises(RuntimeError):
            _dlqi(subject, claire, [1] * 10)
    finally:
        form_saved.disconnect(dispatch_uid="test-refuse")
    assert not FormRecord.objects.exists() and not _events_any()


def _events_any():
    return AuditEvent.objects.filter(entity_type="capture.formrecord").exists()


def test_the_record_keeps_its_study_version(subject, claire, ns_dupi):
    record = _dlqi(subject, claire, [1] * 10)
    assert record.study_version == ns_dupi.current_version


def test_a_hard_check_without_an_item_names_the_values_it_read(subject, claire):
    data = {"alt_value": 40, "alt_unit": "U/L", "alt_lln": 50, "alt_uln": 40}
    with pytest.raises(HardCheckFailed) as refused:
        save_form(subject, "LAB", data, by=claire, visit_code="D0")
    assert refused.value.field == "LAB_RANGE_INVERTED"
    assert "alt_lln=50" in str(refused.value) and "alt_uln=40" in str(refused.value)


def test_the_audit_chain_stays_intact(subject, claire):
    from trialdesk.audit.services import verify

    _dlqi(subject, claire, [1] * 10)
    _dlqi(subject, claire, [2] * 10, reason="re-read", complete=True)
    assert verify().intact
