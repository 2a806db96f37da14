"""Every write of screening, eligibility and consent goes through here, and is audited.

The same functions serve the pages, the API and the randomization service. Writes check the
acting user against :mod:`trialdesk.accounts.policy` (site staff who may enter data at the
subject's site); ``by=None`` is a system operation (set-up scripts, tests).

Reads used by other apps: :func:`is_eligible` and :func:`has_valid_consent`, which the
randomization service asks before it allocates anyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import Membership, Role
from trialdesk.audit.services import record
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable, study_definition
from trialdesk.protocol.models import Site, Study

from . import eligibility
from .models import (
    ConsentDocument,
    ConsentRecord,
    EligibilityAssessment,
    IdentityRecord,
    Outcome,
    ScreeningEntry,
    Subject,
    SubjectStatus,
    Verdict,
)


class ScreeningError(ValueError):
    """A screening or consent request that cannot be carried out; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ScreeningPermissionDenied(ScreeningError):
    """The acting user may not do this at this site."""


class StudyUnavailable(ScreeningError):
    """The study file of the study's current version cannot be used (changed or broken)."""


#: Fields of the identity record, in form order.
IDENTITY_FIELDS = ("first_name", "last_name", "phone", "email")
#: Statuses in which a subject can still be assessed, failed or withdrawn from screening.
OPEN_STATUSES = frozenset({SubjectStatus.SCREENING, SubjectStatus.ELIGIBLE})


@dataclass(frozen=True)
class ScreeningResult:
    """What :func:`screen` and :func:`reassess` produce."""

    subject: Subject
    entry: ScreeningEntry
    assessment: EligibilityAssessment
    evaluation: eligibility.Evaluation


# --------------------------------------------------------------------------------------------
# Reads


def is_eligible(subject: Subject) -> bool:
    """Whether the subject's latest eligibility assessment says eligible (and they are still in).

    A screen failure or a withdrawal is never eligible, whatever the last assessment said.
    """
    if subject.status in (SubjectStatus.SCREEN_FAILED, SubjectStatus.WITHDRAWN):
        return False
    latest = latest_assessment(subject)
    return latest is not None and latest.verdict == Verdict.ELIGIBLE


def has_valid_consent(subject: Subject) -> bool:
    """Whether the subject has signed a consent document of their study and not withdrawn it."""
    return ConsentRecord.objects.filter(
        subject=subject, withdrawn_at__isnull=True, document__study_id=subject.study_id
    ).exists()


def latest_assessment(subject: Subject) -> EligibilityAssessment | None:
    return subject.assessments.order_by("-assessed_at", "-id").first()


def visible_subjects(user: Any, study: Study) -> QuerySet[Subject]:
    """The study's subjects at the sites the user may see."""
    return Subject.objects.filter(
        study=study, site__in=policy.visible_sites(user, study)
    ).select_related("site", "screening_entry")


def screening_log(user: Any, study: Study, site: Site | None = None) -> QuerySet[ScreeningEntry]:
    """The screening log of the sites the user may see (one site with ``site``)."""
    entries = ScreeningEntry.objects.filter(
        study=study, site__in=policy.visible_sites(user, study)
    ).select_related("site", "subject")
    return entries.filter(site=site) if site is not None else entries


def find_study(user: Any, code: str) -> Study | None:
    """The study ``code`` if the user holds a role in it, else ``None``."""
    return policy.studies(user).filter(code=code).select_related("current_version").first()


def find_subject(user: Any, study: Study, subject_id: str) -> Subject | None:
    """The subject ``subject_id`` of the study if the user may see its site, else ``None``.

    A subject at another site and a subject that does not exist look the same (``None``), so
    that a page or an API answer never reveals that an id exists elsewhere.
    """
    return visible_subjects(user, study).filter(subject_id=subject_id).first()


def visible_site(user: Any, study: Study, code: str) -> Site | None:
    """The site ``code`` of the study if the user may see it, else ``None``."""
    return policy.visible_sites(user, study).filter(code=code).first()


def data_entry_sites(user: Any, study: Study) -> list[Site]:
    """The sites of the study where the user may screen people and record consent."""
    return [site for site in policy.visible_sites(user, study) if policy.may_enter_data(user, site)]


def consent_takers(site: Site) -> list[Any]:
    """Users who may obtain consent at a site (its investigators and coordinators)."""
    ids = Membership.objects.filter(
        site=site,
        revoked_at__isnull=True,
        role__in=sorted(policy.DATA_ENTRY_ROLES),
        user__is_active=True,
    ).values_list("user_id", flat=True)
    return list(get_user_model().objects.filter(pk__in=ids).order_by("last_name", "username"))


def identity_for(user: Any, subject: Subject) -> IdentityRecord | None:
    """The subject's identity record if the policy lets ``user`` see it, else ``None``."""
    if not policy.may_see_identity(user, subject.site):
        return None
    return IdentityRecord.objects.filter(subject=subject).first()


def may_manage_consent_documents(user: Any, study: Study) -> bool:
    """Consent documents are registered by the study's data managers."""
    return Role.DATA_MANAGER in policy.roles(user, study)


def consent_documents(study: Study, on: dt.date | None = None) -> QuerySet[ConsentDocument]:
    """The study's consent documents, only those valid on ``on`` when given."""
    documents = ConsentDocument.objects.filter(study=study)
    if on is not None:
        documents = documents.filter(valid_from__lte=on).exclude(valid_until__lt=on)
    return documents


# --------------------------------------------------------------------------------------------
# Screening and eligibility


def screen(
    study: Study,
    site: Site,
    data: Mapping[str, Any],
    *,
    by: Any,
    identity: Mapping[str, str] | None = None,
) -> ScreeningResult:
    """Screen a person: a screening-log entry, a subject, their identity and a first assessment.

    Parameters
    ----------
    study, site : Study, Site
        Where the person is screened; the site must belong to the study.
    data : Mapping
        Screening data keyed by the study's screening-form item codes (JSON values; absent or
        ``None`` is unknown). ``screening_date`` is required: it dates the log entry.
    by : User or None
        The acting user, who must be allowed to enter data at ``site``.
    identity : Mapping, optional
        ``first_name``, ``last_name``, ``phone``, ``email``; stored apart, site-only.

    Raises
    ------
    ScreeningError
        Invalid data (the message names the key and value), a site of another study, or a user
        not allowed at the site (:class:`ScreeningPermissionDenied`).
    """
    if site.study_id != study.pk:
        raise ScreeningError("site", f"{site.code!r} is not a site of study {study.code!r}")
    _check_may_enter(by, site)
    definition = _definition(study)
    values = _validated(definition, data)
    if values.get("screening_date") is None:
        raise ScreeningError("screening_date", "is required to open a screening-log entry")
    identity_fields = clean_identity(identity) if identity is not None else None
    evaluation = eligibility.evaluate(definition, values)
    with transaction.atomic():
        Site.objects.select_for_update().get(pk=site.pk)
        number = _next_number(site)
        entry = ScreeningEntry.objects.create(
            study=study,
            site=site,
            number=number,
            screening_number=f"{site.code}-S{number:03d}",
            screening_date=values["screening_date"],
            study_version=study.current_version,
            created_by=_user_or_none(by),
        )
        subject = Subject.objects.create(
            study=study,
            site=site,
            number=number,
            subject_id=f"{site.code}-{number:03d}",
            screening_entry=entry,
            study_version=study.current_version,
        )
        record(
            "screening.screen",
            user=by,
            entity=entry,
            study=study.code,
            site=site.code,
            changes={
                "screening_number": [None, entry.screening_number],
                "subject_id": [None, subject.subject_id],
                "screening_date": [None, entry.screening_date.isoformat()],
            },
        )
        if identity_fields is not None:
            _save_identity(subject, identity_fields, by=by)
        assessment = _assess(subject, entry, values, evaluation, by=by)
    return ScreeningResult(subject, entry, assessment, evaluation)


def reassess(subject: Subject, data: Mapping[str, Any], *, by: Any) -> ScreeningResult:
    """Evaluate eligibility again over corrected or completed data (a new assessment row).

    Only a subject still in screening (status screening or eligible) can be re-assessed.
    """
    _check_may_enter(by, subject.site)
    _check_open(subject, "re-assess")
    definition = _definition(subject.study)
    values = _validated(definition, data)
    evaluation = eligibility.evaluate(definition, values)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        _check_open(subject, "re-assess")
        entry = subject.screening_entry
        assessment = _assess(subject, entry, values, evaluation, by=by)
    return ScreeningResult(subject, entry, assessment, evaluation)


def mark_screen_failure(
    subject: Subject, reasons: Sequence[str], *, by: Any, note: str = ""
) -> ScreeningEntry:
    """Record a screen failure with the criterion ids that failed (CONSORT).

    ``reasons`` are criterion ids of the study (``INC04``, ``EXC05``…); with no criterion the
    ``note`` must say why (investigator's decision…).
    """
    _check_may_enter(by, subject.site)
    known = [criterion.id for criterion in _definition(subject.study).eligibility]
    cleaned: list[str] = []
    for reason in reasons:
        if reason not in known:
            raise ScreeningError(
                "reasons", f"{reason!r} is not a criterion of the study ({', '.join(known)})"
            )
        if reason not in cleaned:
            cleaned.append(reason)
    note = (note or "").strip()
    if not cleaned and not note:
        raise ScreeningError("reasons", "name at least one criterion, or explain in the note")
    cleaned.sort(key=known.index)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        _check_open(subject, "mark as a screen failure")
        entry = subject.screening_entry
        old = (subject.status, entry.outcome)
        subject.status = SubjectStatus.SCREEN_FAILED
        subject.save(update_fields=["status"])
        entry.outcome = Outcome.SCREEN_FAILED
        entry.failure_reasons = cleaned
        entry.failure_note = note
        entry.save(update_fields=["outcome", "failure_reasons", "failure_note"])
        record(
            "screening.fail",
            user=by,
            entity=entry,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "status": [old[0], subject.status],
                "outcome": [old[1], entry.outcome],
                "failure_reasons": [[], cleaned],
            },
            reason=note,
        )
    return entry


def set_randomized(subject: Subject, *, by: Any) -> None:
    """Mark a subject randomized in the subject row and the screening log.

    Called by the randomization service inside its own transaction (the allocation and this
    change commit together); audited here.
    """
    entry = subject.screening_entry
    old = (subject.status, entry.outcome)
    Subject.objects.filter(pk=subject.pk).update(status=SubjectStatus.RANDOMIZED)
    ScreeningEntry.objects.filter(pk=entry.pk).update(outcome=Outcome.RANDOMIZED)
    subject.status = SubjectStatus.RANDOMIZED
    entry.outcome = Outcome.RANDOMIZED
    record(
        "subject.status",
        user=by,
        entity=subject,
        study=subject.study.code,
        site=subject.site.code,
        changes={"status": [old[0], subject.status], "outcome": [old[1], entry.outcome]},
    )


def update_identity(subject: Subject, identity: Mapping[str, str], *, by: Any) -> IdentityRecord:
    """Create or correct the subject's identity record (values never enter the audit trail)."""
    _check_may_enter(by, subject.site)
    if not policy.may_see_identity(by, subject.site) and by is not None:
        raise ScreeningPermissionDenied(
            "identity",
            "only the site's investigator and coordinator may edit a participant's identity",
        )
    fields = clean_identity(identity)
    with transaction.atomic():
        return _save_identity(subject, fields, by=by)


# --------------------------------------------------------------------------------------------
# Consent


def create_consent_document(
    study: Study,
    *,
    version: str,
    language: str,
    title: str,
    valid_from: dt.date,
    valid_until: dt.date | None = None,
    text: str = "",
    file_name: str = "",
    by: Any,
) -> ConsentDocument:
    """Register a version of the study's information and consent form in one language.

    Data managers only (``by=None`` for set-up scripts).
    """
    if by is not None and not may_manage_consent_documents(by, study):
        raise ScreeningPermissionDenied(
            "study",
            f"{getattr(by, 'username', by)!r} may not register consent documents of "
            f"{study.code} (data managers only)",
        )
    languages = [code for code, _name in settings.LANGUAGES]
    if language not in languages:
        raise ScreeningError("language", f"{language!r} is not one of {', '.join(languages)}")
    if not version.strip():
        raise ScreeningError("version", "is required")
    if not title.strip():
        raise ScreeningError("title", "is required")
    if valid_until is not None and valid_until < valid_from:
        raise ScreeningError(
            "valid_until",
            f"{valid_until.isoformat()} is before valid_from {valid_from.isoformat()}",
        )
    if ConsentDocument.objects.filter(study=study, version=version, language=language).exists():
        raise ScreeningError("version", f"{version!r} ({language}) already exists for {study.code}")
    with transaction.atomic():
        document = ConsentDocument.objects.create(
            study=study,
            version=version.strip(),
            language=language,
            title=title.strip(),
            valid_from=valid_from,
            valid_until=valid_until,
            text=text,
            file_name=file_name,
        )
        record(
            "consent.document",
            user=by,
            entity=document,
            study=study.code,
            changes={
                "version": [None, document.version],
                "language": [None, language],
                "valid_from": [None, valid_from.isoformat()],
                "valid_until": [None, valid_until.isoformat() if valid_until else None],
            },
        )
    return document


def record_consent(
    subject: Subject,
    document: ConsentDocument,
    signed_at: dt.datetime,
    *,
    obtained_by: Any,
    by: Any,
) -> ConsentRecord:
    """Record that the subject signed ``document`` at ``signed_at``, consent obtained by a user.

    Refused when the document belongs to another study, is not valid on the signing date, the
    signature is in the future, or the person obtaining consent does not work at the site.
    """
    _check_may_enter(by, subject.site)
    if document.study_id != subject.study_id:
        raise ScreeningError(
            "document",
            f"consent v{document.version} ({document.language}) is "
            f"a document of study {document.study.code!r}, not "
            f"{subject.study.code!r}",
        )
    if timezone.is_naive(signed_at):
        signed_at = timezone.make_aware(signed_at)
    if signed_at > timezone.now():
        raise ScreeningError("signed_at", f"{signed_at.isoformat()} is in the future")
    day = timezone.localtime(signed_at).date()
    if not document.valid_on(day):
        until = document.valid_until.isoformat() if document.valid_until else "open"
        raise ScreeningError(
            "document",
            f"consent v{document.version} ({document.language}) "
            f"is not valid on {day.isoformat()} (valid "
            f"{document.valid_from.isoformat()} to {until})",
        )
    if obtained_by is None or not policy.may_enter_data(obtained_by, subject.site):
        who = getattr(obtained_by, "username", obtained_by)
        raise ScreeningError(
            "obtained_by", f"{who!r} is not investigator or coordinator at {subject.site.code}"
        )
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        if subject.status not in OPEN_STATUSES | {SubjectStatus.RANDOMIZED}:
            raise ScreeningError(
                "subject", f"{subject.subject_id} is {subject.status}; consent cannot be recorded"
            )
        consent = ConsentRecord.objects.create(
            subject=subject, document=document, signed_at=signed_at, obtained_by=obtained_by
        )
        record(
            "consent.record",
            user=by,
            entity=consent,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "document": [None, f"v{document.version} ({document.language})"],
                "signed_at": [None, signed_at.isoformat()],
                "obtained_by": [None, obtained_by.username],
            },
        )
    return consent


def withdraw_consent(
    subject: Subject, *, reason: str, by: Any, when: dt.datetime | None = None
) -> list[ConsentRecord]:
    """Withdraw every active consent of the subject.

    Before randomization the subject leaves screening (status withdrawn, log outcome "withdrew
    before randomization"). After randomization only the consent is withdrawn here; the study
    withdrawal itself is recorded by the visit schedule.
    """
    _check_may_enter(by, subject.site)
    reason = (reason or "").strip()
    if not reason:
        raise ScreeningError("reason", "a reason is required to withdraw consent")
    when = when or timezone.now()
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        active = list(subject.consents.filter(withdrawn_at__isnull=True))
        if not active:
            raise ScreeningError(
                "consent", f"{subject.subject_id} has no active consent to withdraw"
            )
        for consent in active:
            if when < consent.signed_at:
                raise ScreeningError(
                    "withdrawn_at",
                    f"{when.isoformat()} is before the signature {consent.signed_at.isoformat()}",
                )
            consent.withdrawn_at = when
            consent.withdrawal_reason = reason
            consent.save(update_fields=["withdrawn_at", "withdrawal_reason"])
            record(
                "consent.withdraw",
                user=by,
                entity=consent,
                study=subject.study.code,
                site=subject.site.code,
                changes={
                    "subject_id": subject.subject_id,
                    "withdrawn_at": [None, when.isoformat()],
                },
                reason=reason,
            )
        if subject.status in OPEN_STATUSES:
            entry = subject.screening_entry
            old = (subject.status, entry.outcome)
            subject.status = SubjectStatus.WITHDRAWN
            subject.save(update_fields=["status"])
            entry.outcome = Outcome.WITHDREW
            entry.save(update_fields=["outcome"])
            record(
                "subject.status",
                user=by,
                entity=subject,
                study=subject.study.code,
                site=subject.site.code,
                changes={"status": [old[0], subject.status], "outcome": [old[1], entry.outcome]},
                reason=reason,
            )
    return active


# --------------------------------------------------------------------------------------------
# Helpers


def _definition(study: Study) -> Any:
    try:
        return study_definition(study)
    except (StudyDefinitionUnavailable, ProtocolError) as error:
        raise StudyUnavailable("study", str(error)) from error


def _user_or_none(user: Any) -> Any:
    return user if getattr(user, "pk", None) else None


def _check_may_enter(by: Any, site: Site) -> None:
    if by is None:
        return
    if not policy.may_enter_data(by, site):
        raise ScreeningPermissionDenied(
            "site",
            f"{getattr(by, 'username', by)!r} may not screen or record consent at {site.code}",
        )


def _check_open(subject: Subject, action: str) -> None:
    if subject.status not in OPEN_STATUSES:
        raise ScreeningError(
            "subject", f"{subject.subject_id} is {subject.status}; cannot {action}"
        )


def _validated(definition: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return eligibility.parse_screening_data(definition, data)
    except eligibility.InvalidScreeningData as error:
        raise ScreeningError(error.key, error.reason_with_value) from error


def _next_number(site: Site) -> int:
    last = ScreeningEntry.objects.filter(site=site).aggregate(last=Max("number"))["last"]
    return (last or 0) + 1


def _assess(
    subject: Subject,
    entry: ScreeningEntry,
    values: Mapping[str, Any],
    evaluation: eligibility.Evaluation,
    *,
    by: Any,
) -> EligibilityAssessment:
    """Store an assessment and move the subject and log entry to match its verdict."""
    previous = latest_assessment(subject)
    assessment = EligibilityAssessment.objects.create(
        subject=subject,
        data=eligibility.data_to_json(values),
        results=evaluation.to_records(),
        verdict=evaluation.status,
        study_version=subject.study.current_version,
        assessed_by=_user_or_none(by),
    )
    status = (
        SubjectStatus.ELIGIBLE if evaluation.status == Verdict.ELIGIBLE else SubjectStatus.SCREENING
    )
    outcome = Outcome.ELIGIBLE if evaluation.status == Verdict.ELIGIBLE else Outcome.IN_PROGRESS
    old = (subject.status, entry.outcome)
    if old != (status, outcome):
        subject.status = status
        subject.save(update_fields=["status"])
        entry.outcome = outcome
        entry.save(update_fields=["outcome"])
    old_data = previous.data if previous is not None else {}
    changed = {
        key: [old_data.get(key), value]
        for key, value in assessment.data.items()
        if old_data.get(key) != value
    }
    changed.update(
        {key: [value, None] for key, value in old_data.items() if key not in assessment.data}
    )
    record(
        "screening.assess",
        user=by,
        entity=assessment,
        study=subject.study.code,
        site=subject.site.code,
        changes={
            "subject_id": subject.subject_id,
            "data": changed,
            "verdict": [previous.verdict if previous else None, assessment.verdict],
            "status": [old[0], subject.status],
            "not_met": evaluation.ids_with(eligibility.Result.NOT_MET),
            "unknown": evaluation.ids_with(eligibility.Result.UNKNOWN),
        },
    )
    return assessment


def identity_problems(identity: Mapping[str, str]) -> dict[str, str]:
    """Every problem of an identity, by field (empty when it is fine)."""
    problems = {
        name: f"{name}: is not an identity field ({', '.join(IDENTITY_FIELDS)})"
        for name in sorted(set(identity) - set(IDENTITY_FIELDS))
    }
    fields = {name: str(identity.get(name) or "").strip() for name in IDENTITY_FIELDS}
    for name in ("first_name", "last_name"):
        if not fields[name]:
            problems[name] = f"{name}: is required"
        elif len(fields[name]) > 100:
            problems[name] = f"{name}: {fields[name][:20]!r}… is longer than 100 characters"
    if len(fields["phone"]) > 40:
        problems["phone"] = f"phone: {fields['phone']!r} is longer than 40 characters"
    if fields["email"]:
        try:
            validate_email(fields["email"])
        except ValidationError:
            problems["email"] = f"email: {fields['email']!r} is not an e-mail address"
    return problems


def clean_identity(identity: Mapping[str, str]) -> dict[str, str]:
    """The identity fields stripped and checked; :class:`ScreeningError` names a bad one."""
    problems = identity_problems(identity)
    if problems:
        name, message = next(iter(problems.items()))
        raise ScreeningError(name, message.split(": ", 1)[1])
    return {name: str(identity.get(name) or "").strip() for name in IDENTITY_FIELDS}


def _save_identity(subject: Subject, fields: Mapping[str, str], *, by: Any) -> IdentityRecord:
    existing = IdentityRecord.objects.filter(subject=subject).first()
    if existing is None:
        identity = IdentityRecord.objects.create(subject=subject, **fields)
        changed = sorted(name for name, value in fields.items() if value)
    else:
        changed = sorted(name for name, value in fields.items() if getattr(existing, name) != value)
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save()
        identity = existing
    # Identity values never enter the audit trail (it is read by monitors and exported).
    record(
        "identity.save",
        user=by,
        entity=identity,
        study=subject.study.code,
        site=subject.site.code,
        changes={"subject_id": subject.subject_id, **{name: ["***", "***"] for name in changed}},
    )
    return identity
