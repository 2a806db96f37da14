"""The audit events of a patient's saves name the patient's one-time link as the actor."""

from __future__ import annotations

import pytest

from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import epro, records
from trialdesk.capture.models import FormRecord

pytestmark = pytest.mark.django_db


def _answers():
    return {
        "DLQI": {f"dlqi_q{i}": "1" for i in range(1, 11)},
        "ITCH_PAIN": {"pruritus_score": "4", "pain_score": "2"},
    }


def test_every_form_save_of_a_patient_names_the_link(planned_subject, claire):  # noqa: F811
    issued = epro.issue_link(planned_subject, "D0", by=claire)
    epro.submit(issued.token, _answers())
    label = f"patient via link {issued.link.prefix}"
    ids = FormRecord.objects.filter(subject=planned_subject, visit_code="D0").values_list(
        "pk", flat=True
    )
    saves = AuditEvent.objects.filter(
        action="form.create", entity_id__in=[str(pk) for pk in ids]
    ).order_by("id")
    assert saves.count() == 2
    for event in saves:
        assert event.user_id is None
        assert event.username == label
        assert event.username != ""


def test_a_staff_save_keeps_the_users_name(planned_subject, claire):  # noqa: F811
    result = records.save_form(
        planned_subject,
        "ITCH_PAIN",
        {"pruritus_score": "5", "pain_score": "1"},
        by=claire,
        visit_code="D0",
    )
    event = AuditEvent.objects.get(action="form.create", entity_id=str(result.record.pk))
    assert event.user_id == claire.pk
    assert event.username == claire.username


def test_the_actor_label_is_ignored_when_a_user_acts(planned_subject, claire):  # noqa: F811
    result = records.save_form(
        planned_subject,
        "ITCH_PAIN",
        {"pruritus_score": "5", "pain_score": "1"},
        by=claire,
        visit_code="D0",
        actor="patient via link forged",
    )
    event = AuditEvent.objects.get(action="form.create", entity_id=str(result.record.pk))
    assert event.username == claire.username
