"""``/api/v1/studies/{study}/schedule/``: visit schedules, visits done or missed, worklist.

Same conventions as the other routers: what the caller may not see is 404, what their role may
not do is 403, invalid input is 422 naming the field and the value. Nothing here holds an arm.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Router, Schema
from ninja.errors import HttpError

from trialdesk.accounts import policy
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable
from trialdesk.protocol.models import Study
from trialdesk.screening import services as screening
from trialdesk.screening.models import Subject

from . import schedule
from .models import Discontinuation, Visit

router = Router(tags=["schedule"])


class VisitOut(Schema):
    code: str
    day: int
    planned_date: dt.date
    window_start: dt.date
    window_end: dt.date
    status: str
    state: str
    done_on: dt.date | None
    out_of_window: bool
    missed_reason: str


class DeviationOut(Schema):
    kind: str
    visit: str | None
    occurred_on: dt.date
    description: str


class DiscontinuationOut(Schema):
    kind: str
    on: dt.date
    reason: str


class ScheduleOut(Schema):
    subject_id: str
    site: str
    status: str
    visits: list[VisitOut]
    deviations: list[DeviationOut]
    discontinuation: DiscontinuationOut | None


class DoneIn(Schema):
    done_on: dt.date


class MissedIn(Schema):
    reason: str


class DiscontinueIn(Schema):
    kind: str
    on: dt.date
    reason: str


class WorkItemOut(Schema):
    state: str
    subject_id: str
    site: str
    visit: str
    planned_date: dt.date
    window_start: dt.date
    window_end: dt.date


def _study(request: HttpRequest, code: str) -> Study:
    study = screening.find_study(request.user, code)
    if study is None:
        raise HttpError(404, f"study: {code!r} not found")
    return study


def _subject(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    subject = screening.find_subject(request.user, study, subject_id)
    if subject is None:
        raise HttpError(404, f"subject: {subject_id!r} not found")
    return subject


def _refused(error: Exception) -> HttpError:
    if isinstance(error, schedule.ScheduleNotAllowed):
        return HttpError(403, str(error))
    if isinstance(error, StudyDefinitionUnavailable | ProtocolError):
        return HttpError(409, f"study: {error}")
    return HttpError(422, str(error))


_FAILURES = (schedule.ScheduleError, StudyDefinitionUnavailable, ProtocolError)


def _visit_out(visit: Visit, today: dt.date) -> dict[str, Any]:
    return {
        "code": visit.code,
        "day": visit.day,
        "planned_date": visit.planned_date,
        "window_start": visit.window_start,
        "window_end": visit.window_end,
        "status": visit.status,
        "state": schedule.visit_state(visit, today),
        "done_on": visit.done_on,
        "out_of_window": visit.out_of_window,
        "missed_reason": visit.missed_reason,
    }


def schedule_out(subject: Subject) -> dict[str, Any]:
    """The subject's schedule as the API and the tests read it."""
    today = timezone.localdate()
    exit_ = Discontinuation.objects.filter(subject=subject).first()
    return {
        "subject_id": subject.subject_id,
        "site": subject.site.code,
        "status": subject.status,
        "visits": [_visit_out(v, today) for v in schedule.visits_of(subject)],
        "deviations": [
            {
                "kind": d.kind,
                "visit": d.visit.code if d.visit_id else None,
                "occurred_on": d.occurred_on,
                "description": d.description,
            }
            for d in schedule.deviations_of(subject)
        ],
        "discontinuation": (
            {"kind": exit_.kind, "on": exit_.on, "reason": exit_.reason} if exit_ else None
        ),
    }


@router.get("/subjects/{subject_id}", response=ScheduleOut, summary="A subject's visit schedule")
def subject_schedule(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = _subject(request, _study(request, study), subject_id)
    return schedule_out(subject)


@router.post(
    "/subjects/{subject_id}/visits/{code}/done",
    response=ScheduleOut,
    summary="Record a visit done (out of window: a protocol deviation)",
)
def visit_done(
    request: HttpRequest, study: Path[str], subject_id: str, code: str, payload: DoneIn
) -> Any:
    subject = _subject(request, _study(request, study), subject_id)
    try:
        schedule.record_visit(subject, code, payload.done_on, by=request.user)
    except _FAILURES as error:
        raise _refused(error) from None
    return schedule_out(subject)


@router.post(
    "/subjects/{subject_id}/visits/{code}/missed", response=ScheduleOut, summary="A missed visit"
)
def visit_missed(
    request: HttpRequest, study: Path[str], subject_id: str, code: str, payload: MissedIn
) -> Any:
    subject = _subject(request, _study(request, study), subject_id)
    try:
        schedule.mark_missed(subject, code, reason=payload.reason, by=request.user)
    except _FAILURES as error:
        raise _refused(error) from None
    return schedule_out(subject)


@router.post(
    "/subjects/{subject_id}/discontinue",
    response=ScheduleOut,
    summary="Withdrawal or loss to follow-up",
)
def discontinue(
    request: HttpRequest, study: Path[str], subject_id: str, payload: DiscontinueIn
) -> Any:
    subject = _subject(request, _study(request, study), subject_id)
    try:
        schedule.discontinue(
            subject, payload.kind, on=payload.on, reason=payload.reason, by=request.user
        )
    except _FAILURES as error:
        raise _refused(error) from None
    subject.refresh_from_db()
    return schedule_out(subject)


@router.get("/worklist", response=list[WorkItemOut], summary="Overdue, due and missed visits")
def worklist(request: HttpRequest, study: Path[str], site: str | None = None) -> Any:
    found = _study(request, study)
    site_row = None
    if site is not None:
        site_row = policy.visible_sites(request.user, found).filter(code=site).first()
        if site_row is None:
            raise HttpError(404, f"site: {site!r} not found")
    return [
        {
            "state": item.state,
            "subject_id": item.subject_id,
            "site": item.site,
            "visit": item.visit.code,
            "planned_date": item.visit.planned_date,
            "window_start": item.visit.window_start,
            "window_end": item.visit.window_end,
        }
        for item in schedule.worklist(request.user, found, site_row)
    ]
