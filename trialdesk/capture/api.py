"""``/api/v1/studies/{study}/schedule/``: visit schedules, visits done or missed, worklist;
``/api/v1/studies/{study}/capture/``: form records (read and save) and queries.

Same conventions as the other routers: what the caller may not see is 404, what their role may
not do is 403, invalid input is 422 naming the field and the value. Nothing here holds an arm.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError

from trialdesk.accounts import policy
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable
from trialdesk.screening.api import study_or_404, subject_or_404
from trialdesk.screening.models import Subject

from . import queries, records, schedule
from .models import Discontinuation, FormRecord, Query, Visit

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
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    return schedule_out(subject)


@router.post(
    "/subjects/{subject_id}/visits/{code}/done",
    response=ScheduleOut,
    summary="Record a visit done (out of window: a protocol deviation)",
)
def visit_done(
    request: HttpRequest, study: Path[str], subject_id: str, code: str, payload: DoneIn
) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
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
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
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
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
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
    found = study_or_404(request, study)
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


# ============================================================================================
# ``/api/v1/studies/{study}/capture/``: form records and queries.

forms_router = Router(tags=["capture"])


class RecordIn(Schema):
    """Item code → value (JSON), or ``{"state": "not_done" | "unknown", "reason": "..."}``."""

    values: dict[str, Any] = {}
    reason: str = ""
    complete: bool = False


class QueryOut(Schema):
    id: int
    subject_id: str
    form: str
    visit: str
    number: int
    item: str
    check_id: str
    status: str
    text: str
    raised_at: dt.datetime
    raised_by: str | None


class RecordOut(Schema):
    id: int
    subject_id: str
    form: str
    visit: str
    number: int
    repeating: bool
    status: str
    study_version: str
    revision: int
    values: dict[str, Any]
    queries: list[QueryOut]


class QueryIn(Schema):
    item: str = ""
    text: str


class QueryStepIn(Schema):
    text: str = ""


def _query_out(query: Query) -> dict[str, Any]:
    record = query.record
    return {
        "id": query.pk,
        "subject_id": record.subject.subject_id,
        "form": record.form,
        "visit": record.visit_code,
        "number": record.number,
        "item": query.item,
        "check_id": query.check_id,
        "status": query.status,
        "text": query.text,
        "raised_at": query.raised_at,
        "raised_by": query.raised_by.username if query.raised_by_id else None,
    }


def record_out(record: FormRecord) -> dict[str, Any]:
    """A record as the API returns it: stored values (or state and reason) by item."""
    record = FormRecord.objects.select_related("subject", "study_version").get(pk=record.pk)
    return {
        "id": record.pk,
        "subject_id": record.subject.subject_id,
        "form": record.form,
        "visit": record.visit_code,
        "number": record.number,
        "repeating": record.repeating,
        "status": record.status,
        "study_version": record.study_version.version,
        "revision": record.revision,
        "values": records.items_of(record),
        "queries": [_query_out(q) for q in record.queries.select_related("raised_by")],
    }


def _capture_refused(error: Exception) -> HttpError:
    if isinstance(error, records.CaptureNotAllowed):
        return HttpError(403, str(error))
    if isinstance(error, records.RecordLocked):
        return HttpError(409, str(error))
    if isinstance(error, StudyDefinitionUnavailable | ProtocolError):
        return HttpError(409, f"study: {error}")
    return HttpError(422, str(error))


_CAPTURE_FAILURES = (records.CaptureError, StudyDefinitionUnavailable, ProtocolError)


def _save(
    request: HttpRequest,
    study: str,
    subject_id: str,
    form: str,
    payload: RecordIn,
    *,
    visit: str = "",
    number: int | None = None,
) -> dict[str, Any]:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    try:
        result = records.save_form(
            subject,
            form,
            payload.values,
            by=request.user,
            visit_code=visit,
            number=number,
            reason=payload.reason,
            complete=payload.complete,
        )
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return record_out(result.record)


@forms_router.get(
    "/subjects/{subject_id}/records", response=list[RecordOut], summary="A subject's form records"
)
def subject_records(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    return [record_out(r) for r in records.records_of(subject)]


@forms_router.get(
    "/subjects/{subject_id}/visits/{visit}/forms/{form}",
    response=RecordOut,
    summary="One visit form",
)
def visit_form(
    request: HttpRequest, study: Path[str], subject_id: str, visit: str, form: str
) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    record = records.find_record(subject, form, visit_code=visit)
    if record is None:
        raise HttpError(404, f"form: {form} at {visit} is not started")
    return record_out(record)


@forms_router.put(
    "/subjects/{subject_id}/visits/{visit}/forms/{form}",
    response=RecordOut,
    summary="Save a visit form (same checks as the page; a change needs a reason)",
)
def save_visit_form(
    request: HttpRequest,
    study: Path[str],
    *,
    subject_id: str,
    visit: str,
    form: str,
    payload: RecordIn,
) -> Any:
    return _save(request, study, subject_id, form, payload, visit=visit)


@forms_router.post(
    "/subjects/{subject_id}/records/{form}",
    response={201: RecordOut},
    summary="Create a repeating record (AE, medication, infection, sample…)",
)
def create_record(
    request: HttpRequest,
    study: Path[str],
    *,
    subject_id: str,
    form: str,
    payload: RecordIn,
    visit: str = "",
) -> Any:
    return Status(201, _save(request, study, subject_id, form, payload, visit=visit))


@forms_router.get(
    "/subjects/{subject_id}/records/{form}/{number}",
    response=RecordOut,
    summary="A repeating record",
)
def repeating_record(
    request: HttpRequest, study: Path[str], subject_id: str, form: str, number: int
) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    record = records.find_record(subject, form, number=number)
    if record is None:
        raise HttpError(404, f"record: {form} #{number} not found")
    return record_out(record)


@forms_router.put(
    "/subjects/{subject_id}/records/{form}/{number}",
    response=RecordOut,
    summary="Change a repeating record",
)
def save_record(
    request: HttpRequest,
    study: Path[str],
    *,
    subject_id: str,
    form: str,
    number: int,
    payload: RecordIn,
) -> Any:
    return _save(request, study, subject_id, form, payload, number=number)


@forms_router.get("/queries", response=list[QueryOut], summary="Queries of the visible sites")
def query_list(request: HttpRequest, study: Path[str], status: str | None = None) -> Any:
    found = study_or_404(request, study)
    found_queries = queries.visible_queries(request.user, found).select_related("raised_by")
    if status:
        found_queries = found_queries.filter(status=status)
    return [_query_out(q) for q in found_queries.order_by("raised_at", "id")]


@forms_router.post(
    "/records/{record_id}/queries", response={201: QueryOut}, summary="Raise a query on an item"
)
def raise_query(request: HttpRequest, study: Path[str], record_id: int, payload: QueryIn) -> Any:
    record = _record(request, study, record_id)
    try:
        query = queries.raise_query(record, payload.item, payload.text, by=request.user)
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return Status(201, _query_out(query))


@forms_router.post(
    "/queries/{query_id}/{step}", response=QueryOut, summary="Answer, close or re-open a query"
)
def query_step(
    request: HttpRequest, study: Path[str], query_id: int, step: str, payload: QueryStepIn
) -> Any:
    steps = {
        "answer": queries.answer_query,
        "close": queries.close_query,
        "reopen": queries.reopen_query,
    }
    if step not in steps:
        raise HttpError(404, f"step: {step!r} is not one of answer, close, reopen")
    found = study_or_404(request, study)
    query = queries.visible_queries(request.user, found).filter(pk=query_id).first()
    if query is None:
        raise HttpError(404, f"query: #{query_id} not found")
    try:
        query = steps[step](query, payload.text, by=request.user)
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return _query_out(query)


def _record(request: HttpRequest, study: str, record_id: int) -> FormRecord:
    found = study_or_404(request, study)
    record = (
        FormRecord.objects.filter(
            pk=record_id,
            subject__study=found,
            subject__site__in=policy.visible_sites(request.user, found),
        )
        .select_related("subject__site")
        .first()
    )
    if record is None:
        raise HttpError(404, f"record: #{record_id} not found")
    return record
