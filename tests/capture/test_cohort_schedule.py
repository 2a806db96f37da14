"""The visit schedule of an observational-cohort subject, anchored on the enrolment date."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from tests.capture.forms_data import form_values
from trialdesk.accounts.services import create_api_token
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import schedule
from trialdesk.capture.cohort import enrol
from trialdesk.capture.models import ProtocolDeviation, Visit
from trialdesk.protocol import load_study, resolve_study_path

pytestmark = pytest.mark.django_db

NS_COHORT = load_study(resolve_study_path("ns-cohort"))
ENROLLED_ON = dt.date(2025, 1, 6)  # M3 (day 91) is planned on 2025-04-07, window ±21 days


def _enrol(studies, by, on):
    cohort = studies["ns-cohort"]
    data = form_values(NS_COHORT, NS_COHORT.form("ENROLMENT"), on)
    data["birth_date"] = "2018-05-01"
    return enrol(cohort, cohort.sites.get(code="TLS"), data, by=by)


@pytest.fixture
def cohort_subject(studies, claire):
    return _enrol(studies, claire, ENROLLED_ON)


def test_day_0_is_the_enrolment_date(cohort_subject):
    assert schedule.day0(cohort_subject) == ENROLLED_ON
    m3 = Visit.objects.get(subject=cohort_subject, code="M3")
    assert m3.planned_date == dt.date(2025, 4, 7)
    assert (m3.window_start, m3.window_end) == (dt.date(2025, 3, 17), dt.date(2025, 4, 28))


def test_a_cohort_visit_is_recorded_done_in_its_window(cohort_subject, claire):
    visit = schedule.record_visit(cohort_subject, "M3", dt.date(2025, 4, 10), by=claire)
    assert visit.status == "done" and visit.done_on == dt.date(2025, 4, 10)
    assert visit.out_of_window is False
    assert not ProtocolDeviation.objects.filter(subject=cohort_subject).exists()
    event = AuditEvent.objects.get(action="visit.done")
    assert json.loads(event.changes)["done_on"] == [None, "2025-04-10"]


def test_a_cohort_visit_out_of_window_is_a_deviation(cohort_subject, claire):
    visit = schedule.record_visit(cohort_subject, "M3", dt.date(2025, 5, 5), by=claire)
    assert visit.out_of_window is True
    deviation = ProtocolDeviation.objects.get(subject=cohort_subject)
    assert "7 day(s) after" in deviation.description


def test_a_cohort_visit_before_enrolment_is_refused(cohort_subject, claire):
    with pytest.raises(
        schedule.ScheduleError, match=r"done_on: 2025-01-01 is before day 0 \(2025-01-06\)"
    ):
        schedule.record_visit(cohort_subject, "M3", dt.date(2025, 1, 1), by=claire)
    assert Visit.objects.get(subject=cohort_subject, code="M3").status == "planned"


def test_a_cohort_visit_is_missed_and_the_subject_withdraws(cohort_subject, claire):
    schedule.mark_missed(cohort_subject, "M3", reason="moved abroad for a while", by=claire)
    exit_ = schedule.discontinue(
        cohort_subject, "withdrawn", on=dt.date(2025, 7, 1), reason="wishes to stop", by=claire
    )
    assert exit_.kind == "withdrawn"
    cohort_subject.refresh_from_db()
    assert cohort_subject.status == "withdrawn"
    event = AuditEvent.objects.get(action="subject.discontinue")
    assert json.loads(event.changes)["status"] == ["eligible", "withdrawn"]
    with pytest.raises(schedule.ScheduleError, match="is withdrawn, not enrolled"):
        schedule.record_visit(cohort_subject, "M6", dt.date(2025, 7, 2), by=claire)


def test_a_cohort_subject_is_on_the_worklist(studies, claire):
    today = timezone.localdate()
    subject = _enrol(studies, claire, today - dt.timedelta(days=100))
    items = schedule.worklist(claire, studies["ns-cohort"], today=today)
    assert [(i.subject_id, i.visit.code, i.state) for i in items] == [
        (subject.subject_id, "M3", "due")
    ]
    schedule.record_visit(subject, "M3", today, by=claire)
    assert schedule.worklist(claire, studies["ns-cohort"], today=today) == []


def test_a_trial_subject_still_needs_a_randomization(planned_subject, claire):  # noqa: F811
    with pytest.raises(schedule.ScheduleError, match="not randomized"):
        schedule.record_visit(planned_subject, "W2", timezone.localdate(), by=claire)
    with pytest.raises(schedule.ScheduleError, match="not randomized"):
        schedule.day0(planned_subject)


def test_the_api_records_a_cohort_visit(client, cohort_subject, claire, paul):
    _, token = create_api_token(claire, "tests", by=claire)
    path = f"/api/v1/studies/ns-cohort/schedule/subjects/{cohort_subject.subject_id}/visits/M3/done"
    response = client.post(
        path,
        {"done_on": "2025-04-10"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    m3 = next(v for v in response.json()["visits"] if v["code"] == "M3")
    assert m3["status"] == "done" and m3["done_on"] == "2025-04-10"
    early = client.post(
        path.replace("M3", "M6"),
        {"done_on": "2024-12-31"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert early.status_code == 422 and early.json()["detail"].startswith("done_on: 2024-12-31")


def test_the_schedule_page_records_a_cohort_visit(client, cohort_subject, claire):
    client.force_login(claire)
    url = reverse("randomization:schedule", args=["ns-cohort", cohort_subject.subject_id])
    assert client.get(url).status_code == 200
    response = client.post(url, {"action": "done", "visit": "M3", "done_on": "2025-04-10"})
    assert response.status_code == 302, response.content.decode()[:2000]
    m3 = Visit.objects.get(subject=cohort_subject, code="M3")
    assert (m3.status, m3.done_on) == ("done", dt.date(2025, 4, 10))
