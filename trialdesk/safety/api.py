"""``/api/v1/studies/{study}/safety/``: adverse events, SAE clocks, lab results and alerts.

Same conventions as the other routers: what the caller may not see is 404 (another site's
subject, clock or alert), what their role may not do is 403, invalid input is 422 naming the
field. Nothing here holds a treatment arm. AEs and lab results are derived from the form records;
write them through the capture endpoints.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Router, Schema
from ninja.errors import HttpError

from trialdesk.accounts import policy
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.api import study_or_404, subject_or_404

from . import services
from .models import AdverseEvent, LabAlert, LabResult, SaeReport

router = Router(tags=["safety"])


class SaeClockOut(Schema):
    id: int
    subject_id: str
    site: str
    term: str
    clock_started_at: dt.datetime
    due_at: dt.datetime
    hours_left: float
    reported_at: dt.datetime | None
    withdrawn_at: dt.datetime | None


class AdverseEventOut(Schema):
    id: int
    subject_id: str
    origin: str
    record_number: int | None
    visit: str
    term: str
    start: str
    start_earliest: dt.date | None
    start_latest: dt.date | None
    end: str
    ongoing: bool | None
    serious: bool
    seriousness_criteria: list[str]
    severity: str
    ctcae_grade: int | None
    relationship: str
    action: str
    outcome: str
    aesi: bool
    aesi_answer: bool | None
    aesi_category: str
    aesi_suggested: str
    skin_infection: bool
    sae_clock: SaeClockOut | None


class LabResultOut(Schema):
    id: int
    subject_id: str
    visit: str
    test: str
    sampled_at: dt.datetime | None
    lab_name: str
    value: Decimal | None
    unit: str
    lln: Decimal | None
    uln: Decimal | None
    range_source: str
    standard_unit: str
    value_std: Decimal | None
    lln_std: Decimal | None
    uln_std: Decimal | None
    flag: str
    baseline: Decimal | None
    grade: int | None
    grade_note: str


class LabAlertOut(Schema):
    id: int
    subject_id: str
    site: str
    visit: str
    test: str
    value_std: Decimal | None
    standard_unit: str
    grade: int
    raised_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None


def _site(request: HttpRequest, study: Study, code: str | None) -> Site | None:
    if code is None:
        return None
    site = policy.visible_sites(request.user, study).filter(code=code).first()
    if site is None:
        raise HttpError(404, f"site: {code!r} not found")
    return site


def clock_out(report: SaeReport) -> dict[str, Any]:
    event = report.adverse_event
    return {
        "id": report.pk,
        "subject_id": event.subject.subject_id,
        "site": report.site.code,
        "term": event.term,
        "clock_started_at": report.clock_started_at,
        "due_at": report.due_at,
        "hours_left": round(services.time_left(report, timezone.now()).total_seconds() / 3600, 2),
        "reported_at": report.reported_at,
        "withdrawn_at": report.withdrawn_at,
    }


def event_out(event: AdverseEvent) -> dict[str, Any]:
    report = SaeReport.objects.filter(adverse_event=event).first()
    return {
        "id": event.pk,
        "subject_id": event.subject.subject_id,
        "origin": event.origin,
        "record_number": event.record.number if event.record_id else None,
        "visit": event.visit_code,
        "term": event.term,
        "start": event.start,
        "start_earliest": event.start_earliest,
        "start_latest": event.start_latest,
        "end": event.end,
        "ongoing": event.ongoing,
        "serious": event.serious,
        "seriousness_criteria": event.seriousness_criteria,
        "severity": event.severity,
        "ctcae_grade": event.ctcae_grade,
        "relationship": event.relationship,
        "action": event.action,
        "outcome": event.outcome,
        "aesi": event.is_aesi,
        "aesi_answer": event.aesi,
        "aesi_category": event.aesi_code,
        "aesi_suggested": event.aesi_suggested,
        "skin_infection": hasattr(event, "skin_infection"),
        "sae_clock": clock_out(report) if report else None,
    }


def result_out(result: LabResult) -> dict[str, Any]:
    return {
        "id": result.pk,
        "subject_id": result.subject.subject_id,
        "visit": result.visit_code,
        **{
            name: getattr(result, name)
            for name in (
                "test",
                "sampled_at",
                "lab_name",
                "value",
                "unit",
                "lln",
                "uln",
                "range_source",
                "standard_unit",
                "value_std",
                "lln_std",
                "uln_std",
                "flag",
                "baseline",
                "grade",
                "grade_note",
            )
        },
    }


def alert_out(alert: LabAlert) -> dict[str, Any]:
    result = alert.lab_result
    return {
        "id": alert.pk,
        "subject_id": result.subject.subject_id,
        "site": alert.site.code,
        "visit": result.visit_code,
        "test": result.test,
        "value_std": result.value_std,
        "standard_unit": result.standard_unit,
        "grade": alert.grade,
        "raised_at": alert.raised_at,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by.username if alert.acknowledged_by_id else None,
    }


def _refused(error: services.SafetyError) -> HttpError:
    if isinstance(error, services.SafetyNotAllowed):
        return HttpError(403, str(error))
    return HttpError(409, str(error))


@router.get(
    "/subjects/{subject_id}/adverse-events",
    response=list[AdverseEventOut],
    summary="A subject's adverse events (from the AE form and the skin infection log)",
)
def subject_adverse_events(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    return [event_out(event) for event in services.adverse_events_of(subject)]


@router.get(
    "/subjects/{subject_id}/labs",
    response=list[LabResultOut],
    summary="A subject's laboratory results: as reported, standard units, flag, CTCAE grade",
)
def subject_labs(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    return [result_out(result) for result in services.lab_results_of(subject)]


@router.get("/sae-clocks", response=list[SaeClockOut], summary="SAE reporting clocks")
def sae_clocks(
    request: HttpRequest, study: Path[str], site: str | None = None, open: bool = True
) -> Any:
    found = study_or_404(request, study)
    rows = services.sae_clocks(request.user, found, _site(request, found, site), open_only=open)
    return [clock_out(report) for report in rows]


@router.post(
    "/sae-clocks/{pk}/reported",
    response=SaeClockOut,
    summary="The site sent the SAE report to the sponsor",
)
def sae_reported(request: HttpRequest, study: Path[str], pk: int) -> Any:
    found = study_or_404(request, study)
    report = services.find_sae(request.user, found, pk)
    if report is None:
        raise HttpError(404, f"sae clock: {pk} not found")
    try:
        report = services.mark_sae_reported(report, by=request.user)
    except services.SafetyError as error:
        raise _refused(error) from None
    return clock_out(report)


@router.get("/alerts", response=list[LabAlertOut], summary="Laboratory alerts (grade ≥ 3)")
def alerts(
    request: HttpRequest, study: Path[str], site: str | None = None, open: bool = True
) -> Any:
    found = study_or_404(request, study)
    rows = services.lab_alerts(request.user, found, _site(request, found, site), open_only=open)
    return [alert_out(alert) for alert in rows]


@router.post(
    "/alerts/{pk}/acknowledge", response=LabAlertOut, summary="An investigator reviewed it"
)
def acknowledge(request: HttpRequest, study: Path[str], pk: int) -> Any:
    found = study_or_404(request, study)
    alert = services.find_alert(request.user, found, pk)
    if alert is None:
        raise HttpError(404, f"alert: {pk} not found")
    try:
        alert = services.acknowledge_alert(alert, by=request.user)
    except services.SafetyError as error:
        raise _refused(error) from None
    return alert_out(alert)
