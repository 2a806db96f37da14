"""Queries, SDV, signatures and locks: who may do what, and what each step leaves behind."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import locks, queries, signatures, verification
from trialdesk.capture.models import FormRecord, Query
from trialdesk.capture.records import CaptureError, CaptureNotAllowed, RecordLocked, save_form

pytestmark = pytest.mark.django_db

DLQI = {f"dlqi_q{i}": 1 for i in range(1, 11)}
NASA = {"nasa_total": 7, "nasa_assessor": "ABC"}


@pytest.fixture
def subject(planned_subject):
    """Visits planned, no randomization: all that form capture needs (see conftest)."""
    return planned_subject


@pytest.fixture
def dlqi(subject, claire):
    return save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record


# --- queries -------------------------------------------------------------------------------------


def test_query_lifecycle_is_audited(dlqi, manon, claire):
    query = queries.raise_query(dlqi, "dlqi_q3", "Source says 2", by=manon)
    queries.answer_query(query, "Corrected", by=claire)
    queries.close_query(query, "ok", by=manon)
    queries.reopen_query(query, "Still 1 on screen", by=manon)
    query.refresh_from_db()
    assert query.status == "open"
    assert [m.action for m in query.messages.all()] == ["raise", "answer", "close", "reopen"]
    actions = AuditEvent.objects.filter(entity_type="capture.query", entity_id=str(query.pk))
    assert [e.action for e in actions.order_by("id")] == [
        "query.raise",
        "query.answer",
        "query.close",
        "query.reopen",
    ]
    assert json.loads(actions.order_by("id").last().changes)["status"] == ["closed", "open"]


def test_who_may_raise_answer_and_close(dlqi, manon, claire, paul, diane):
    with pytest.raises(CaptureNotAllowed):
        queries.raise_query(dlqi, "dlqi_q3", "?", by=claire)
    query = queries.raise_query(dlqi, "dlqi_q3", "Check", by=manon)
    with pytest.raises(CaptureNotAllowed):
        queries.answer_query(query, "done", by=paul)
    with pytest.raises(CaptureNotAllowed):
        queries.answer_query(query, "done", by=manon)
    queries.answer_query(query, "done", by=claire)
    with pytest.raises(CaptureNotAllowed):
        queries.close_query(query, by=diane)  # not the raiser
    with pytest.raises(CaptureError):
        queries.answer_query(query, "again", by=claire)  # already answered
    queries.close_query(query, by=manon)


def test_a_query_names_a_declared_item(dlqi, manon):
    with pytest.raises(CaptureError) as refused:
        queries.raise_query(dlqi, "weight", "?", by=manon)
    assert refused.value.field == "item"


def test_counts_per_site_and_age(dlqi, manon, claire, diane, paris_subject, paul):
    old = queries.raise_query(dlqi, "dlqi_q1", "Old", by=manon)
    Query.objects.filter(pk=old.pk).update(raised_at=timezone.now() - dt.timedelta(days=40))
    queries.raise_query(dlqi, "dlqi_q2", "New", by=manon)
    answered = queries.raise_query(dlqi, "dlqi_q4", "Answered", by=manon)
    queries.answer_query(answered, "fixed", by=claire)
    paris = save_form(paris_subject, "NASA", {"nasa_total": 3}, by=paul, visit_code="D0")
    assert paris.queries
    rows = {row.site: row for row in queries.counts_by_site(diane, dlqi.subject.study)}
    assert (rows["TLS"].open, rows["TLS"].answered, rows["TLS"].closed) == (2, 1, 0)
    assert rows["TLS"].ages == {"0-7": 2, "8-30": 0, ">30": 1}
    assert rows["TLS"].oldest_days == 40
    assert rows["NCK"].open == len(paris.queries)
    assert [row.site for row in queries.counts_by_site(manon, dlqi.subject.study)] == ["TLS"]


# --- SDV -------------------------------------------------------------------------------------------


def test_sdv_per_item_then_per_form(dlqi, manon, claire):
    with pytest.raises(CaptureNotAllowed):
        verification.verify_record(dlqi, by=claire)
    verification.verify_item(dlqi, "dlqi_q1", by=manon)
    dlqi.refresh_from_db()
    assert dlqi.status == "complete" and dlqi.values.get(item="dlqi_q1").verified_at
    verification.verify_record(dlqi, by=manon)
    dlqi.refresh_from_db()
    assert dlqi.status == "verified"
    save_form(dlqi.subject, "DLQI", {"dlqi_q1": 2}, by=claire, visit_code="D0", reason="typo")
    dlqi.refresh_from_db()
    assert dlqi.status == "complete" and dlqi.verified_at is None
    assert dlqi.values.get(item="dlqi_q1").verified_at is None
    assert dlqi.values.get(item="dlqi_q2").verified_at is not None


# --- signatures --------------------------------------------------------------------------------------


def test_the_investigator_signs_with_password_and_meaning(dlqi, ines, claire):
    with pytest.raises(CaptureNotAllowed):
        signatures.sign(dlqi.subject, by=claire, password=PERSONA_PASSWORD, visit_code="D0")
    with pytest.raises(signatures.WrongPassword):
        signatures.sign(dlqi.subject, by=ines, password="wrong", visit_code="D0")
    signature = signatures.sign(dlqi.subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    assert "visit D0" in signature.meaning and len(signature.content_sha256) == 64
    assert signature.content_sha256 == signatures.content_hash(dlqi.subject, "D0")
    dlqi.refresh_from_db()
    assert dlqi.status == "signed"
    event = AuditEvent.objects.get(action="signature.sign")
    assert json.loads(event.changes)["meaning"] == signature.meaning


def test_changing_signed_data_invalidates_the_signature_until_re_signed(dlqi, ines, claire):
    nasa = save_form(dlqi.subject, "NASA", NASA, by=claire, visit_code="D0", complete=True).record
    signature = signatures.sign(dlqi.subject, by=ines, password=PERSONA_PASSWORD)
    nasa.refresh_from_db()
    assert nasa.status == "signed"
    save_form(dlqi.subject, "DLQI", {"dlqi_q1": 2}, by=claire, visit_code="D0", reason="typo")
    signature.refresh_from_db()
    dlqi.refresh_from_db()
    nasa.refresh_from_db()
    assert nasa.status == "complete"
    assert signature.invalidated_at is not None and "typo" in signature.invalidated_reason
    assert dlqi.status == "complete"
    assert AuditEvent.objects.filter(action="signature.invalidate").exists()
    signatures.sign(dlqi.subject, by=ines, password=PERSONA_PASSWORD)
    dlqi.refresh_from_db()
    assert dlqi.status == "signed"


def test_a_form_in_progress_cannot_be_signed(subject, claire, ines):
    save_form(subject, "TCS", {"tcs_product": "x"}, by=claire, visit_code="D0")
    with pytest.raises(CaptureError) as refused:
        signatures.sign(subject, by=ines, password=PERSONA_PASSWORD, visit_code="D0")
    assert "in progress" in str(refused.value)


# --- locks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["form", "subject", "study"])
def test_a_lock_refuses_every_write_until_unlocked(dlqi, diane, claire, manon, ines, scope):
    with pytest.raises(CaptureNotAllowed):
        locks.lock_record(dlqi, by=claire)
    lock = {
        "form": lambda: locks.lock_record(dlqi, by=diane, reason="clean"),
        "subject": lambda: locks.lock_subject(dlqi.subject, by=diane),
        "study": lambda: locks.lock_study(dlqi.subject.study, by=diane),
    }[scope]()
    dlqi.refresh_from_db()
    assert dlqi.status == "locked"
    with pytest.raises(RecordLocked):
        save_form(dlqi.subject, "DLQI", {"dlqi_q1": 2}, by=claire, visit_code="D0", reason="x")
    with pytest.raises(RecordLocked):
        queries.raise_query(dlqi, "dlqi_q1", "?", by=manon)
    with pytest.raises(RecordLocked):
        verification.verify_record(dlqi, by=manon)
    with pytest.raises(RecordLocked):
        signatures.sign(dlqi.subject, by=ines, password=PERSONA_PASSWORD)
    with pytest.raises(CaptureError):
        locks.unlock(lock, by=diane, reason="")
    locks.unlock(lock, by=diane, reason="query to answer")
    dlqi.refresh_from_db()
    assert dlqi.status == "complete"
    save_form(dlqi.subject, "DLQI", {"dlqi_q1": 2}, by=claire, visit_code="D0", reason="x")
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="lock.")] == [
        "lock.lock",
        "lock.unlock",
    ]


def test_a_locked_subject_gets_no_new_record(dlqi, diane, claire):
    locks.lock_subject(dlqi.subject, by=diane)
    with pytest.raises(RecordLocked):
        save_form(dlqi.subject, "CM", {"cm_name": "Emollient"}, by=claire)
    assert FormRecord.objects.filter(form="CM").count() == 0


def test_a_locked_value_cannot_be_written_even_bypassing_the_services(dlqi, diane):
    from trialdesk.capture.models import LockedRecordError

    locks.lock_study(dlqi.subject.study, by=diane)
    row = dlqi.values.get(item="dlqi_q1")
    row.value = 3
    with pytest.raises(LockedRecordError):
        row.save()
