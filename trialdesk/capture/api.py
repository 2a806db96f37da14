"""``/api/v1/studies/{study}/schedule/``: visit schedules, visits done or missed, worklist;
``/api/v1/studies/{study}/capture/``: form records (read and save), queries, source data
verification by the monitor, signatures by the investigator, locks by the data manager.

Same conventions as the other routers: what the caller may not see is 404, what their role may
not do is 403, invalid input is 422 naming the field and the value. Nothing here holds an arm.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import field_validator

from trialdesk.accounts import policy
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable
from trialdesk.screening.api import study_or_404, subject_or_404
from trialdesk.screening.models import Subject

from . import locks, queries, records, schedule, signatures, verification
from .models import Discontinuation, FormRecord, Lock, LockScope, Query, Signature, Visit

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
    verified_at: dt.datetime | None
    verified_by: str | None
    verified_items: list[str]


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
    record = FormRecord.objects.select_related("subject", "study_version", "verified_by").get(
        pk=record.pk
    )
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
        "verified_at": record.verified_at,
        "verified_by": record.verified_by.username if record.verified_by_id else None,
        "verified_items": sorted(
            record.values.filter(verified_at__isnull=False).values_list("item", flat=True)
        ),
    }


def _capture_refused(error: Exception) -> HttpError:
    if isinstance(error, signatures.SigningBlocked):
        return HttpError(429, str(error))
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


# ============================================================================================
# Source data verification (monitor), signatures (investigator), locks (data manager).
#
# The same services as the pages (``verification``, ``signatures``, ``locks``), which ask the
# access policy: another role is 403, a record, subject or lock the caller may not see is 404,
# invalid input is 422 naming the field and the value, a locked record is 409. Each service
# writes in one transaction, so a refusal leaves nothing behind.


class _TextIn(Schema):
    """Refuses text that no database column can hold (NUL), naming the field."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{value!r} contains a NUL character")
        return value


class VerifyIn(_TextIn):
    """No item: the whole form; an item code: that item only."""

    item: str | None = None


class SignIn(_TextIn):
    """The signer's password, re-entered; no visit: the whole casebook."""

    password: str
    visit: str | None = None


class MeaningOut(Schema):
    subject_id: str
    scope: str
    visit: str | None
    meaning: str
    meaning_shown: str
    content_sha256: str


class SignatureOut(Schema):
    id: int
    subject_id: str
    scope: str
    visit: str | None
    meaning: str
    content_sha256: str
    signed_at: dt.datetime
    signed_by: str
    valid: bool
    invalidated_at: dt.datetime | None
    invalidated_reason: str


class LockIn(_TextIn):
    """``form`` needs ``record_id``, ``subject`` needs ``subject_id``, ``study`` neither."""

    scope: str
    record_id: int | None = None
    subject_id: str | None = None
    reason: str = ""


class UnlockIn(_TextIn):
    reason: str


class LockOut(Schema):
    id: int
    scope: str
    subject_id: str | None
    record_id: int | None
    form: str | None
    visit: str | None
    reason: str
    locked_at: dt.datetime
    locked_by: str
    active: bool
    unlocked_at: dt.datetime | None
    unlocked_by: str | None
    unlock_reason: str


def _plain(field: str, value: str) -> str:
    """A path segment that names nothing when it holds a NUL (no lookup is made with it)."""
    if "\x00" in value:
        raise HttpError(404, f"{field}: {value!r} not found")
    return value


def _verify(request: HttpRequest, record: FormRecord, item: str | None) -> dict[str, Any]:
    try:
        if item is None:
            verification.verify_record(record, by=request.user)
        else:
            verification.verify_item(record, item, by=request.user)
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return record_out(record)


@forms_router.post(
    "/records/{record_id}/verify",
    response=RecordOut,
    summary="Verify a form, or one item, against the source (monitor)",
)
def verify_record(request: HttpRequest, study: Path[str], record_id: int, payload: VerifyIn) -> Any:
    return _verify(request, _record(request, study, record_id), payload.item)


@forms_router.post(
    "/subjects/{subject_id}/visits/{visit}/forms/{form}/verify",
    response=RecordOut,
    summary="Verify a visit form, or one item, against the source (monitor)",
)
def verify_visit_form(
    request: HttpRequest,
    study: Path[str],
    *,
    subject_id: str,
    visit: str,
    form: str,
    payload: VerifyIn,
) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), _plain("subject", subject_id))
    record = records.find_record(subject, _plain("form", form), visit_code=_plain("visit", visit))
    if record is None:
        raise HttpError(404, f"form: {form} at {visit} is not started")
    return _verify(request, record, payload.item)


def _signature_out(signature: Signature) -> dict[str, Any]:
    return {
        "id": signature.pk,
        "subject_id": signature.subject.subject_id,
        "scope": signature.scope,
        "visit": signature.visit_code or None,
        "meaning": signature.meaning,
        "content_sha256": signature.content_sha256,
        "signed_at": signature.signed_at,
        "signed_by": signature.signed_by.username,
        "valid": signature.invalidated_at is None,
        "invalidated_at": signature.invalidated_at,
        "invalidated_reason": signature.invalidated_reason,
    }


def _signing(request: HttpRequest, study: str, subject_id: str, visit: str | None) -> Subject:
    """The subject an investigator is about to sign (403 for anyone else, 404 for a visit the
    subject does not have), as the sign page checks it."""
    subject = subject_or_404(request, study_or_404(request, study), _plain("subject", subject_id))
    if not signatures.may_sign(request.user, subject):
        raise HttpError(403, "role: only the site's investigator may sign")
    if (
        visit is not None
        and not Visit.objects.filter(subject=subject, code=_plain("visit", visit)).exists()
    ):
        raise HttpError(404, f"visit: {visit!r} not found for {subject.subject_id}")
    return subject


@forms_router.get(
    "/subjects/{subject_id}/signatures",
    response=list[SignatureOut],
    summary="A subject's signatures, valid and invalidated",
)
def signature_list(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), _plain("subject", subject_id))
    return [_signature_out(s) for s in signatures.signatures_of(subject)]


@forms_router.get(
    "/subjects/{subject_id}/signatures/meaning",
    response=MeaningOut,
    summary="What signing declares, and the hash of the content it would cover (investigator)",
)
def signature_meaning(
    request: HttpRequest, study: Path[str], subject_id: str, visit: str | None = None
) -> Any:
    subject = _signing(request, study, subject_id, visit)
    what = _("visit %(visit)s") % {"visit": visit} if visit else _("subject casebook")
    return {
        "subject_id": subject.subject_id,
        "scope": "visit" if visit else "casebook",
        "visit": visit,
        "meaning": signatures.meaning_of(visit),
        "meaning_shown": str(signatures.MEANING_SHOWN % {"what": what}),
        "content_sha256": signatures.content_hash(subject, visit),
    }


@forms_router.post(
    "/subjects/{subject_id}/signatures",
    response={201: SignatureOut},
    summary="Sign a visit or the casebook, re-entering the password (investigator)",
)
def sign(request: HttpRequest, study: Path[str], subject_id: str, payload: SignIn) -> Any:
    subject = _signing(request, study, subject_id, payload.visit)
    try:
        signature = signatures.sign(
            subject, by=request.user, password=payload.password, visit_code=payload.visit
        )
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return Status(201, _signature_out(signature))


def _lock_out(lock: Lock) -> dict[str, Any]:
    record = lock.record
    return {
        "id": lock.pk,
        "scope": lock.scope,
        "subject_id": lock.subject.subject_id if lock.subject_id else None,
        "record_id": lock.record_id,
        "form": record.form if record is not None else None,
        "visit": (record.visit_code or None) if record is not None else None,
        "reason": lock.reason,
        "locked_at": lock.locked_at,
        "locked_by": lock.locked_by.username,
        "active": lock.unlocked_at is None,
        "unlocked_at": lock.unlocked_at,
        "unlocked_by": lock.unlocked_by.username if lock.unlocked_by_id else None,
        "unlock_reason": lock.unlock_reason,
    }


def _visible_locks(request: HttpRequest, found: Any) -> Any:
    """The study's locks, and the subject and form locks of the sites the caller may see."""
    sites = policy.visible_sites(request.user, found)
    return (
        Lock.objects.filter(study=found)
        .filter(
            models.Q(scope=LockScope.STUDY) | models.Q(subject__site__in=sites),
        )
        .select_related("subject", "record", "locked_by", "unlocked_by")
    )


@forms_router.get("/locks", response=list[LockOut], summary="Locks in force (or all, active=false)")
def lock_list(request: HttpRequest, study: Path[str], active: bool = True) -> Any:
    found = study_or_404(request, study)
    found_locks = _visible_locks(request, found)
    if active:
        found_locks = found_locks.filter(unlocked_at__isnull=True)
    return [_lock_out(lock) for lock in found_locks.order_by("locked_at", "id")]


@forms_router.post(
    "/locks", response={201: LockOut}, summary="Lock a form, a subject or the study (data manager)"
)
def lock(request: HttpRequest, study: Path[str], payload: LockIn) -> Any:
    found = study_or_404(request, study)
    scopes = [choice.value for choice in LockScope]
    if payload.scope not in scopes:
        raise HttpError(422, f"scope: {payload.scope!r} is not one of {', '.join(scopes)}")
    needed = {"form": "record_id", "subject": "subject_id", "study": None}[payload.scope]
    for field in ("record_id", "subject_id"):
        given = getattr(payload, field)
        if field == needed and given is None:
            raise HttpError(422, f"{field}: required to lock a {payload.scope}")
        if field != needed and given is not None:
            raise HttpError(422, f"{field}: {given!r} is not used to lock a {payload.scope}")
    try:
        if payload.scope == LockScope.FORM:
            record = _record(request, study, payload.record_id or 0)
            made = locks.lock_record(record, by=request.user, reason=payload.reason)
        elif payload.scope == LockScope.SUBJECT:
            subject = subject_or_404(request, found, payload.subject_id or "")
            made = locks.lock_subject(subject, by=request.user, reason=payload.reason)
        else:
            made = locks.lock_study(found, by=request.user, reason=payload.reason)
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return Status(201, _lock_out(Lock.objects.select_related("record").get(pk=made.pk)))


@forms_router.post(
    "/locks/{lock_id}/unlock", response=LockOut, summary="Lift a lock, saying why (data manager)"
)
def unlock(request: HttpRequest, study: Path[str], lock_id: int, payload: UnlockIn) -> Any:
    found = study_or_404(request, study)
    found_lock = _visible_locks(request, found).filter(pk=lock_id).first()
    if found_lock is None:
        raise HttpError(404, f"lock: #{lock_id} not found")
    try:
        locks.unlock(found_lock, by=request.user, reason=payload.reason)
    except _CAPTURE_FAILURES as error:
        raise _capture_refused(error) from None
    return _lock_out(_visible_locks(request, found).get(pk=lock_id))
