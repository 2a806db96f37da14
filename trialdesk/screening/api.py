"""``/api/v1/studies/{study}/screening/``: screening, the screening log, subjects and consent.

The same services and the same policy as the pages: a study the caller has no role in and a
subject at a site the caller cannot see are both 404; a write at a site where the caller may not
enter data is 403; invalid input is 422 with a message naming the field and the value.
Identity (names, phone, e-mail) appears only for the site's investigator and coordinator.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import translation
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError

from trialdesk.protocol.models import Study

from . import services
from .models import ConsentDocument, ConsentRecord, ScreeningEntry, Subject

router = Router(tags=["screening"])


class IdentityIn(Schema):
    first_name: str
    last_name: str
    phone: str = ""
    email: str = ""


class IdentityOut(IdentityIn):
    pass


class ScreenIn(Schema):
    site: str
    data: dict[str, Any]
    identity: IdentityIn | None = None


class AssessIn(Schema):
    data: dict[str, Any]


class CriterionOut(Schema):
    id: str
    kind: str
    result: str
    message: str


class AssessmentOut(Schema):
    id: int
    verdict: str
    assessed_at: dt.datetime
    assessed_by: str | None
    study_version: str
    data: dict[str, Any]
    criteria: list[CriterionOut]


class ConsentOut(Schema):
    id: int
    document_id: int
    version: str
    language: str
    signed_at: dt.datetime
    obtained_by: str
    withdrawn_at: dt.datetime | None
    withdrawal_reason: str


class SubjectOut(Schema):
    subject_id: str
    site: str
    status: str
    screening_number: str
    screening_date: dt.date
    outcome: str
    failure_reasons: list[str]
    study_version: str
    eligible: bool
    consented: bool
    identity: IdentityOut | None
    assessments: list[AssessmentOut]
    consents: list[ConsentOut]


class LogEntryOut(Schema):
    screening_number: str
    site: str
    screening_date: dt.date
    subject_id: str | None
    outcome: str
    failure_reasons: list[str]
    failure_note: str


class ConsentIn(Schema):
    document_id: int
    signed_at: dt.datetime
    obtained_by: str | None = None


class WithdrawIn(Schema):
    reason: str
    withdrawn_at: dt.datetime | None = None


class FailureIn(Schema):
    reasons: list[str]
    note: str = ""


class DocumentOut(Schema):
    id: int
    version: str
    language: str
    title: str
    valid_from: dt.date
    valid_until: dt.date | None


# --------------------------------------------------------------------------------------------


def study_or_404(request: HttpRequest, code: str) -> Study:
    """The study, if the caller takes part in it; otherwise 404 (never 403: no leak)."""
    study = services.find_study(request.user, code)
    if study is None:
        raise HttpError(404, f"study: {code!r} not found")
    return study


def subject_or_404(request: HttpRequest, study: Study, subject_id: str) -> Subject:
    """The subject, if the caller may see its site; otherwise 404."""
    subject = services.find_subject(request.user, study, subject_id)
    if subject is None:
        raise HttpError(404, f"subject: {subject_id!r} not found")
    return subject


def _refused(error: services.ScreeningError) -> HttpError:
    if isinstance(error, services.ScreeningPermissionDenied):
        return HttpError(403, str(error))
    if isinstance(error, services.StudyUnavailable):
        return HttpError(409, str(error))
    return HttpError(422, str(error))


def _assessment_out(assessment: Any, language: str) -> dict[str, Any]:
    suffix = "fr" if language.startswith("fr") else "en"
    return {
        "id": assessment.pk,
        "verdict": assessment.verdict,
        "assessed_at": assessment.assessed_at,
        "assessed_by": assessment.assessed_by.username if assessment.assessed_by_id else None,
        "study_version": assessment.study_version.version,
        "data": assessment.data,
        "criteria": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "result": r["result"],
                "message": r[f"message_{suffix}"],
            }
            for r in assessment.results
        ],
    }


def _consent_out(consent: ConsentRecord) -> dict[str, Any]:
    return {
        "id": consent.pk,
        "document_id": consent.document_id,
        "version": consent.document.version,
        "language": consent.document.language,
        "signed_at": consent.signed_at,
        "obtained_by": consent.obtained_by.username,
        "withdrawn_at": consent.withdrawn_at,
        "withdrawal_reason": consent.withdrawal_reason,
    }


def _subject_out(request: HttpRequest, subject: Subject) -> dict[str, Any]:
    entry = subject.screening_entry
    identity = services.identity_for(request.user, subject)
    language = translation.get_language() or "en"
    assessments = subject.assessments.select_related("study_version", "assessed_by")
    consents = subject.consents.select_related("document", "obtained_by")
    return {
        "subject_id": subject.subject_id,
        "site": subject.site.code,
        "status": subject.status,
        "screening_number": entry.screening_number,
        "screening_date": entry.screening_date,
        "outcome": entry.outcome,
        "failure_reasons": entry.failure_reasons,
        "study_version": subject.study_version.version,
        "eligible": services.is_eligible(subject),
        "consented": services.has_valid_consent(subject),
        "identity": (
            {name: getattr(identity, name) for name in services.IDENTITY_FIELDS}
            if identity is not None
            else None
        ),
        "assessments": [_assessment_out(a, language) for a in assessments],
        "consents": [_consent_out(c) for c in consents],
    }


def _log_out(entry: ScreeningEntry) -> dict[str, Any]:
    subject = getattr(entry, "subject", None)
    return {
        "screening_number": entry.screening_number,
        "site": entry.site.code,
        "screening_date": entry.screening_date,
        "subject_id": subject.subject_id if subject is not None else None,
        "outcome": entry.outcome,
        "failure_reasons": entry.failure_reasons,
        "failure_note": entry.failure_note,
    }


# --------------------------------------------------------------------------------------------


@router.get("/log", response=list[LogEntryOut], summary="The screening log of my sites")
def screening_log(request: HttpRequest, study: Path[str], site: str | None = None) -> list[Any]:
    found = study_or_404(request, study)
    site_row = None
    if site is not None:
        site_row = services.visible_site(request.user, found, site)
        if site_row is None:
            raise HttpError(404, f"site: {site!r} not found")
    return [_log_out(entry) for entry in services.screening_log(request.user, found, site_row)]


@router.post("/subjects", response={201: SubjectOut}, summary="Screen a person")
def screen(request: HttpRequest, study: Path[str], payload: ScreenIn) -> Status:
    found = study_or_404(request, study)
    site = services.visible_site(request.user, found, payload.site)
    if site is None:
        raise HttpError(404, f"site: {payload.site!r} not found")
    identity = payload.identity.dict() if payload.identity is not None else None
    try:
        result = services.screen(found, site, payload.data, by=request.user, identity=identity)
    except services.ScreeningError as error:
        raise _refused(error) from None
    return Status(201, _subject_out(request, result.subject))


@router.get("/subjects/{subject_id}", response=SubjectOut, summary="A subject")
def subject_detail(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    found = study_or_404(request, study)
    return _subject_out(request, subject_or_404(request, found, subject_id))


@router.post(
    "/subjects/{subject_id}/assessments",
    response={201: SubjectOut},
    summary="Re-assess eligibility over corrected or completed data",
)
def reassess(request: HttpRequest, study: Path[str], subject_id: str, payload: AssessIn) -> Any:
    found = study_or_404(request, study)
    subject = subject_or_404(request, found, subject_id)
    try:
        result = services.reassess(subject, payload.data, by=request.user)
    except services.ScreeningError as error:
        raise _refused(error) from None
    return Status(201, _subject_out(request, result.subject))


@router.post(
    "/subjects/{subject_id}/screen-failure",
    response=SubjectOut,
    summary="Record a screen failure with its reasons (criterion ids)",
)
def screen_failure(
    request: HttpRequest, study: Path[str], subject_id: str, payload: FailureIn
) -> Any:
    found = study_or_404(request, study)
    subject = subject_or_404(request, found, subject_id)
    try:
        services.mark_screen_failure(subject, payload.reasons, note=payload.note, by=request.user)
    except services.ScreeningError as error:
        raise _refused(error) from None
    subject.refresh_from_db()
    return _subject_out(request, subject)


@router.get(
    "/consent-documents", response=list[DocumentOut], summary="The study's consent documents"
)
def consent_documents(request: HttpRequest, study: Path[str]) -> Any:
    return list(services.consent_documents(study_or_404(request, study)))


@router.post(
    "/subjects/{subject_id}/consents", response={201: SubjectOut}, summary="Record a signed consent"
)
def record_consent(
    request: HttpRequest, study: Path[str], subject_id: str, payload: ConsentIn
) -> Any:
    found = study_or_404(request, study)
    subject = subject_or_404(request, found, subject_id)
    document = ConsentDocument.objects.filter(pk=payload.document_id).first()
    if document is None:
        raise HttpError(422, f"document_id: {payload.document_id!r} is not a consent document")
    obtained_by = request.user
    if payload.obtained_by is not None:
        obtained_by = next(
            (
                user
                for user in services.consent_takers(subject.site)
                if user.username == payload.obtained_by
            ),
            None,
        )
        if obtained_by is None:
            raise HttpError(
                422,
                f"obtained_by: {payload.obtained_by!r} is not investigator or "
                f"coordinator at {subject.site.code}",
            )
    try:
        services.record_consent(
            subject, document, payload.signed_at, obtained_by=obtained_by, by=request.user
        )
    except services.ScreeningError as error:
        raise _refused(error) from None
    subject.refresh_from_db()
    return Status(201, _subject_out(request, subject))


@router.post(
    "/subjects/{subject_id}/consents/withdraw",
    response=SubjectOut,
    summary="Withdraw the subject's consent",
)
def withdraw_consent(
    request: HttpRequest, study: Path[str], subject_id: str, payload: WithdrawIn
) -> Any:
    found = study_or_404(request, study)
    subject = subject_or_404(request, found, subject_id)
    try:
        services.withdraw_consent(
            subject, reason=payload.reason, when=payload.withdrawn_at, by=request.user
        )
    except services.ScreeningError as error:
        raise _refused(error) from None
    subject.refresh_from_db()
    return _subject_out(request, subject)
