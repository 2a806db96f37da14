"""The visit schedule: planned dates and windows from D0, deviations, missed visits, worklist."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from trialdesk.audit.models import AuditEvent
from trialdesk.capture.models import Discontinuation, ProtocolDeviation, Visit
from trialdesk.capture.schedule import (
    ScheduleError,
    ScheduleNotAllowed,
    VisitState,
    discontinue,
    mark_missed,
    record_visit,
    visit_state,
    worklist,
)
from trialdesk.randomization.allocation import randomize
from trialdesk.screening.models import SubjectStatus

pytestmark = pytest.mark.django_db

#: NS-DUPI's visits: (code, day, window before, window after).
NS_DUPI_VISITS = [
    ("D0", 0, 0, 0),
    *[(f"W{w}", 7 * w, 3, 3) for w in range(2, 15, 2)],
    ("W16", 112, 7, 7),
    ("W28", 196, 7, 7),
]


def _days(n):
    return dt.timedelta(days=n)


@pytest.fixture
def d0():
    return timezone.localdate() - _days(40)


@pytest.fixture
def subject(stocked, new_subject, claire, d0):
    subject = new_subject("TLS")
    randomize(subject, by=claire, on=d0)
    return subject


def test_every_visit_is_planned_from_d0_with_its_window(subject, d0):
    visits = list(Visit.objects.filter(subject=subject).order_by("order"))
    assert [(v.code, v.day) for v in visits] == [(code, day) for code, day, _, _ in NS_DUPI_VISITS]
    for visit, (_code, day, before, after) in zip(visits, NS_DUPI_VISITS, strict=True):
        assert visit.planned_date == d0 + _days(day)
        assert (visit.window_start, visit.window_end) == (
            d0 + _days(day - before),
            d0 + _days(day + after),
        )
    assert (visits[0].status, visits[0].done_on) == ("done", d0)
    assert AuditEvent.objects.filter(action="schedule.plan", entity_id=str(subject.pk)).exists()


@pytest.mark.parametrize(("offset", "outside"), [(-4, True), (-3, False), (3, False), (4, True)])
def test_a_visit_out_of_its_window_is_accepted_with_a_deviation(
    subject, claire, d0, offset, outside
):
    visit = record_visit(subject, "W2", d0 + _days(14 + offset), by=claire)
    assert visit.status == "done" and visit.out_of_window is outside
    deviations = ProtocolDeviation.objects.filter(subject=subject)
    assert deviations.count() == int(outside)
    if outside:
        side = "after" if offset > 0 else "before"
        assert f"1 day(s) {side} its window" in deviations.get().description
        assert AuditEvent.objects.filter(action="deviation.record").exists()


def test_visit_dates_are_checked(subject, claire, d0):
    tomorrow = timezone.localdate() + _days(1)
    with pytest.raises(ScheduleError, match=f"done_on: {tomorrow.isoformat()} is in the future"):
        record_visit(subject, "W2", tomorrow, by=claire)
    with pytest.raises(ScheduleError, match="is before day 0"):
        record_visit(subject, "W2", d0 - _days(1), by=claire)
    with pytest.raises(ScheduleError, match="visit: 'W3' is not a visit"):
        record_visit(subject, "W3", d0, by=claire)
    record_visit(subject, "W2", d0 + _days(14), by=claire)
    with pytest.raises(ScheduleError, match="W2 is already done"):
        record_visit(subject, "W2", d0 + _days(14), by=claire)


def test_only_site_staff_record_visits(subject, paul, manon, d0):
    for user in (paul, manon):
        with pytest.raises(ScheduleNotAllowed, match="may not record visits at TLS"):
            record_visit(subject, "W2", d0 + _days(14), by=user)


def test_a_missed_visit_needs_a_reason(subject, claire):
    with pytest.raises(ScheduleError, match="reason: a reason is required to mark W2 missed"):
        mark_missed(subject, "W2", reason="", by=claire)
    visit = mark_missed(subject, "W2", reason="flu", by=claire)
    assert (visit.status, visit.missed_reason) == ("missed", "flu")
    assert AuditEvent.objects.filter(action="visit.missed", reason="flu").exists()


def test_visit_states_on_their_boundaries(subject):
    w2 = Visit.objects.get(subject=subject, code="W2")
    assert visit_state(w2, w2.window_start - _days(1)) == VisitState.UPCOMING
    assert visit_state(w2, w2.window_start) == VisitState.DUE
    assert visit_state(w2, w2.window_end) == VisitState.DUE
    assert visit_state(w2, w2.window_end + _days(1)) == VisitState.OVERDUE


def test_the_worklist_lists_overdue_due_upcoming_and_missed(subject, claire, d0, paul):
    mark_missed(subject, "W2", reason="flu", by=claire)
    today = d0 + _days(40)
    states = {(i.visit.code, i.state) for i in worklist(claire, subject.study, today=today)}
    assert states == {("W2", "missed"), ("W4", "overdue"), ("W6", "due")}
    assert worklist(paul, subject.study, today=today) == []
    tls = subject.study.sites.get(code="TLS")
    nck = subject.study.sites.get(code="NCK")
    assert len(worklist(claire, subject.study, site=tls, today=today)) == 3
    assert worklist(claire, subject.study, site=nck, today=today) == []


def test_withdrawal_ends_the_schedule(subject, claire):
    today = timezone.localdate()
    with pytest.raises(
        ScheduleError, match="kind: 'bored' is not one of withdrawn, lost_to_follow_up"
    ):
        discontinue(subject, "bored", on=today, reason="x", by=claire)
    with pytest.raises(ScheduleError, match="reason: a reason is required"):
        discontinue(subject, "withdrawn", on=today, reason="", by=claire)
    exit_ = discontinue(
        subject, "lost_to_follow_up", on=today, reason="no answer to 3 calls", by=claire
    )
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.LOST_TO_FOLLOW_UP
    assert Discontinuation.objects.get(subject=subject) == exit_
    assert worklist(claire, subject.study) == []
    with pytest.raises(ScheduleError, match="is lost_to_follow_up, not randomized"):
        record_visit(subject, "W2", today, by=claire)
    with pytest.raises(ScheduleError, match="not randomized"):
        discontinue(subject, "withdrawn", on=today, reason="again", by=claire)
    event = AuditEvent.objects.get(action="subject.discontinue")
    assert event.reason == "no answer to 3 calls"
