"""SDV, signatures and locks through ``/api/v1/``: the same services and checks as the pages.

A monitor verifies forms and items, an investigator signs a visit or the casebook (password
re-entered, meaning returned, bound to the hash of the content), a data manager locks and
unlocks a form, a subject or the study. Another role is 403, bad input 4xx naming the field and
the value, and a refusal writes nothing (no row, no audit event).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from tests.api.review_client import Api
from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import signatures
from trialdesk.capture.models import FormRecord, ItemValue, Lock, Signature
from trialdesk.capture.records import save_form, values_of

pytestmark = pytest.mark.django_db

DLQI = {f"dlqi_q{i}": 1 for i in range(1, 11)}
NASA = {"nasa_total": 7, "nasa_assessor": "ABC"}


@pytest.fixture
def as_user(client):
    return lambda user: Api(client, user)


@pytest.fixture
def subject(planned_subject):  # noqa: F811 - fixture
    return planned_subject


@pytest.fixture
def dlqi(subject, claire):
    return save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record


def _events(action):
    return AuditEvent.objects.filter(action=action).count()


# --- source data verification ------------------------------------------------------------------


def test_the_monitor_verifies_an_item_then_the_form(as_user, dlqi, manon):
    api = as_user(manon)
    response = api.post(f"/records/{dlqi.pk}/verify", {"item": "dlqi_q1"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verified_items"] == ["dlqi_q1"]
    assert body["status"] == "complete" and body["verified_at"] is None
    response = api.post(f"/records/{dlqi.pk}/verify", {})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "verified"
    assert body["verified_by"] == "manon"
    assert len(body["verified_items"]) == ItemValue.objects.filter(record=dlqi).count() == 11
    assert _events("sdv.item") == 1 and _events("sdv.form") == 1


def test_the_monitor_verifies_a_visit_form_by_its_path(as_user, dlqi, subject, manon):
    path = f"/subjects/{subject.subject_id}/visits/D0/forms/DLQI/verify"
    response = as_user(manon).post(path)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "verified"
    missing = as_user(manon).post(f"/subjects/{subject.subject_id}/visits/D0/forms/NASA/verify")
    assert missing.status_code == 404 and "NASA" in missing.json()["detail"]


@pytest.mark.parametrize("who", ["claire", "ines", "diane"])
def test_only_the_monitor_verifies(as_user, dlqi, who, request):
    response = as_user(request.getfixturevalue(who)).post(f"/records/{dlqi.pk}/verify", {})
    assert response.status_code == 403, response.content
    assert "monitor" in response.json()["detail"]
    assert not ItemValue.objects.filter(record=dlqi, verified_at__isnull=False).exists()
    assert _events("sdv.form") == 0


def test_verification_refuses_an_unknown_item_naming_it(as_user, dlqi, manon):
    response = as_user(manon).post(f"/records/{dlqi.pk}/verify", {"item": "dlqi_q99"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("item: 'dlqi_q99'")
    assert not ItemValue.objects.filter(record=dlqi, verified_at__isnull=False).exists()


def test_verification_refuses_a_form_in_progress(as_user, subject, claire, manon):
    record = save_form(subject, "NASA", {"nasa_total": 7}, by=claire, visit_code="D0").record
    response = as_user(manon).post(f"/records/{record.pk}/verify", {})
    assert response.status_code == 422 and "in progress" in response.json()["detail"]


def test_another_sites_record_is_404_and_a_huge_id_too(as_user, dlqi, paul, manon):
    assert as_user(paul).post(f"/records/{dlqi.pk}/verify", {}).status_code == 404
    assert as_user(manon).post(f"/records/{2**70}/verify", {}).status_code in (404, 422)


def test_a_nul_character_is_refused_naming_the_field(as_user, dlqi, manon):
    response = as_user(manon).post(f"/records/{dlqi.pk}/verify", {"item": "dlqi\x00q1"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == "item" and "NUL" in error["msg"]


# --- signatures -----------------------------------------------------------------------------------


def test_the_investigator_reads_the_meaning_then_signs_a_visit(as_user, dlqi, subject, ines):
    api = as_user(ines)
    shown = api.get(f"/subjects/{subject.subject_id}/signatures/meaning", visit="D0")
    assert shown.status_code == 200, shown.content
    shown = shown.json()
    assert shown["scope"] == "visit" and "visit D0" in shown["meaning"]
    assert shown["content_sha256"] == signatures.content_hash(subject, "D0")
    response = api.post(
        f"/subjects/{subject.subject_id}/signatures",
        {"password": PERSONA_PASSWORD, "visit": "D0"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["meaning"] == shown["meaning"] == signatures.meaning_of("D0")
    assert body["content_sha256"] == shown["content_sha256"]
    assert body["signed_by"] == "ines" and body["valid"] is True
    dlqi.refresh_from_db()
    assert dlqi.status == "signed"
    event = AuditEvent.objects.get(action="signature.sign")
    assert json.loads(event.changes)["content_sha256"] == body["content_sha256"]
    assert "password" not in event.changes.lower() and PERSONA_PASSWORD not in event.changes


def test_a_change_through_the_api_invalidates_the_signature(as_user, dlqi, subject, ines, claire):
    signed = as_user(ines).post(
        f"/subjects/{subject.subject_id}/signatures", {"password": PERSONA_PASSWORD}
    )
    assert signed.status_code == 201 and signed.json()["scope"] == "casebook"
    change = as_user(claire).put(
        f"/subjects/{subject.subject_id}/visits/D0/forms/DLQI",
        {"values": {"dlqi_q1": 2}, "reason": "source says 2"},
    )
    assert change.status_code == 200, change.content
    assert change.json()["status"] == "complete"
    (listed,) = as_user(ines).get(f"/subjects/{subject.subject_id}/signatures").json()
    assert listed["valid"] is False and "source says 2" in listed["invalidated_reason"]


def test_a_wrong_password_is_a_422_and_only_audited(as_user, dlqi, subject, ines):
    api = as_user(ines)  # issuing the token is an audit event of its own
    events = AuditEvent.objects.count()
    response = api.post(
        f"/subjects/{subject.subject_id}/signatures", {"password": "guess", "visit": "D0"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("password:")
    assert Signature.objects.count() == 0 and AuditEvent.objects.count() == events + 1
    assert AuditEvent.objects.last().action == "signature.password_refused"
    dlqi.refresh_from_db()
    assert dlqi.status == "complete"


def test_repeated_wrong_passwords_block_signing_with_a_429(as_user, dlqi, subject, ines):
    api = as_user(ines)
    path = f"/subjects/{subject.subject_id}/signatures"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert api.post(path, {"password": "guess", "visit": "D0"}).status_code == 422
    blocked = api.post(path, {"password": PERSONA_PASSWORD, "visit": "D0"})
    assert blocked.status_code == 429
    assert blocked.json()["detail"].startswith("password:")
    assert Signature.objects.count() == 0


@pytest.mark.parametrize("who", ["claire", "manon", "diane"])
def test_only_the_investigator_signs(as_user, dlqi, subject, who, request):
    api = as_user(request.getfixturevalue(who))
    path = f"/subjects/{subject.subject_id}/signatures"
    assert api.post(path, {"password": PERSONA_PASSWORD}).status_code == 403
    assert api.get(path + "/meaning").status_code == 403
    assert Signature.objects.count() == 0


def test_signing_input_is_checked_naming_the_field(as_user, dlqi, subject, ines):
    api = as_user(ines)
    path = f"/subjects/{subject.subject_id}/signatures"
    missing = api.post(path, {"visit": "D0"})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"][-1] == "password"
    unknown = api.post(path, {"password": PERSONA_PASSWORD, "visit": "W99"})
    assert unknown.status_code == 404 and "'W99'" in unknown.json()["detail"]
    nothing = api.post(path, {"password": PERSONA_PASSWORD, "visit": "W2"})
    assert nothing.status_code == 422 and nothing.json()["detail"].startswith("visit: W2")
    assert Signature.objects.count() == 0


def test_another_sites_subject_is_404(as_user, dlqi, subject, paul):
    path = f"/subjects/{subject.subject_id}/signatures"
    assert as_user(paul).get(path).status_code == 404
    assert as_user(paul).post(path, {"password": PERSONA_PASSWORD}).status_code == 404


# --- locks -----------------------------------------------------------------------------------------


def test_a_locked_form_cannot_be_changed_through_the_api(
    as_user, dlqi, subject, diane, claire, manon, ines
):
    locked = as_user(diane).post(
        "/locks", {"scope": "form", "record_id": dlqi.pk, "reason": "clean"}
    )
    assert locked.status_code == 201, locked.content
    lock = locked.json()
    assert lock["form"] == "DLQI" and lock["visit"] == "D0" and lock["active"] is True
    form_path = f"/subjects/{subject.subject_id}/visits/D0/forms/DLQI"
    assert as_user(claire).get(form_path).json()["status"] == "locked"
    refused = as_user(claire).put(form_path, {"values": {"dlqi_q1": 3}, "reason": "typo"})
    assert refused.status_code == 409 and "locked" in refused.json()["detail"]
    assert values_of(FormRecord.objects.get(pk=dlqi.pk))["dlqi_q1"] == 1
    assert as_user(manon).post(f"/records/{dlqi.pk}/verify", {}).status_code == 409
    signed = as_user(ines).post(
        f"/subjects/{subject.subject_id}/signatures", {"password": PERSONA_PASSWORD}
    )
    assert signed.status_code == 409 and Signature.objects.count() == 0
    query = as_user(manon).post(f"/records/{dlqi.pk}/queries", {"item": "dlqi_q1", "text": "?"})
    assert query.status_code == 409
    assert _events("form.change") == 0

    no_reason = as_user(diane).post(f"/locks/{lock['id']}/unlock", {"reason": "  "})
    assert no_reason.status_code == 422 and no_reason.json()["detail"].startswith("reason:")
    assert Lock.objects.get(pk=lock["id"]).unlocked_at is None
    lifted = as_user(diane).post(f"/locks/{lock['id']}/unlock", {"reason": "query to answer"})
    assert lifted.status_code == 200, lifted.content
    assert lifted.json()["active"] is False and lifted.json()["unlocked_by"] == "diane"
    changed = as_user(claire).put(form_path, {"values": {"dlqi_q1": 3}, "reason": "typo"})
    assert changed.status_code == 200 and changed.json()["values"]["dlqi_q1"] == 3


def test_a_locked_subject_takes_no_new_record(as_user, dlqi, subject, diane, claire):
    locked = as_user(diane).post("/locks", {"scope": "subject", "subject_id": subject.subject_id})
    assert locked.status_code == 201, locked.content
    created = as_user(claire).post(
        f"/subjects/{subject.subject_id}/records/AE", {"values": {"ae_term": "Headache"}}
    )
    assert created.status_code == 409
    assert not FormRecord.objects.filter(subject=subject, form="AE").exists()


def test_a_study_lock_is_listed_to_every_site_and_a_form_lock_only_to_its_own(
    as_user, dlqi, diane, paul, claire
):
    form_lock = as_user(diane).post("/locks", {"scope": "form", "record_id": dlqi.pk}).json()
    study_lock = as_user(diane).post("/locks", {"scope": "study", "reason": "interim"})
    assert study_lock.status_code == 201 and study_lock.json()["subject_id"] is None
    assert [lk["id"] for lk in as_user(claire).get("/locks").json()] == [
        form_lock["id"],
        study_lock.json()["id"],
    ]
    assert [lk["scope"] for lk in as_user(paul).get("/locks").json()] == ["study"]
    hidden = as_user(paul).post(f"/locks/{form_lock['id']}/unlock", {"reason": "x"})
    assert hidden.status_code == 404
    again = as_user(diane).post("/locks", {"scope": "study"})
    assert again.status_code == 422 and again.json()["detail"].startswith("lock:")
    as_user(diane).post(f"/locks/{form_lock['id']}/unlock", {"reason": "done"})
    assert [lk["scope"] for lk in as_user(claire).get("/locks").json()] == ["study"]
    assert len(as_user(claire).get("/locks", active="false").json()) == 2


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"scope": "visit"}, "scope", "'visit'"),
        ({"scope": "form"}, "record_id", "required"),
        ({"scope": "subject"}, "subject_id", "required"),
        ({"scope": "study", "subject_id": "TLS-001"}, "subject_id", "'TLS-001'"),
        ({"scope": "subject", "subject_id": "TLS-001", "record_id": 5}, "record_id", "5"),
    ],
)
def test_lock_input_is_checked_naming_the_field_and_value(as_user, dlqi, diane, body, field, value):
    response = as_user(diane).post("/locks", body)
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:") and value in detail
    assert Lock.objects.count() == 0 and _events("lock.lock") == 0


def test_lock_targets_that_do_not_exist_are_404(as_user, dlqi, diane):
    assert as_user(diane).post("/locks", {"scope": "form", "record_id": 2**70}).status_code in (
        404,
        422,
    )
    assert (
        as_user(diane).post("/locks", {"scope": "subject", "subject_id": "TLS-999"}).status_code
        == 404
    )
    assert as_user(diane).post("/locks/424242/unlock", {"reason": "x"}).status_code == 404
    assert Lock.objects.count() == 0


@pytest.mark.parametrize("who", ["claire", "manon", "ines"])
def test_only_the_data_manager_locks_and_unlocks(as_user, dlqi, subject, diane, who, request):
    api = as_user(request.getfixturevalue(who))
    assert api.post("/locks", {"scope": "form", "record_id": dlqi.pk}).status_code == 403
    assert (
        api.post("/locks", {"scope": "subject", "subject_id": subject.subject_id}).status_code
        == 403
    )
    assert Lock.objects.count() == 0
    lock = as_user(diane).post("/locks", {"scope": "study"}).json()
    assert api.post(f"/locks/{lock['id']}/unlock", {"reason": "mine"}).status_code == 403
    assert Lock.objects.get(pk=lock["id"]).unlocked_at is None
