"""Patient questionnaires (ePRO): one-time links through which a patient answers a visit's
patient-reported forms from a phone, without an account.

:func:`issue_link` (by a coordinator of the subject's site) creates a random token of 256 bits,
stores only its SHA-256, and gives the token back once, with a QR code of the patient's address.
The link expires after ``settings.EPRO_LINK_HOURS`` hours (72 by default). :func:`open_link`
finds a link that is neither used nor expired; anything else is :class:`LinkUnavailable`, which
the page turns into a bare 404. :func:`submit` claims the link with a conditional ``UPDATE``
(it works once, even with two submissions racing) and saves the answers through
:func:`~trialdesk.capture.records.save_form` into the visit's forms, marked as patient entered,
with no audit user; the trail names the actor ``patient via link <prefix>``. A refused answer
rolls the claim back, so the patient can correct it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.audit.services import record as audit
from trialdesk.protocol.schema import Form
from trialdesk.protocol.schema import Study as StudyDefinition
from trialdesk.screening.models import Subject

from . import records
from .models import PatientLink, Visit

#: Forms a patient answers when the study file marks none as patient-reported.
DEFAULT_FORMS = ("ITCH_PAIN", "DLQI")
TOKEN_BYTES = 32
PREFIX_LENGTH = 8


class EproError(ValueError):
    """A link that cannot be issued; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class LinkUnavailable(LookupError):
    """A token that is unknown, used or expired: the patient learns nothing more."""


@dataclass(frozen=True)
class IssuedLink:
    """A new link: the token (shown once, never stored) and its stored row."""

    token: str
    link: PatientLink

    @property
    def path(self) -> str:
        return f"/p/{self.token}/"


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a token, the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_hours() -> int:
    return int(getattr(settings, "EPRO_LINK_HOURS", 72))


def patient_forms(definition: StudyDefinition, visit_code: str) -> list[Form]:
    """The forms of a visit the patient answers: those the study file marks patient-reported,
    or else the pruritus/pain and DLQI forms scheduled at the visit."""
    forms = [form for form in definition.forms_at(visit_code) if not form.repeating]
    marked = [form for form in forms if form.patient_reported]
    return marked or [form for form in forms if form.code in DEFAULT_FORMS]


def may_issue(user: Any, subject: Subject) -> bool:
    return policy.may_enter_data(user, subject.site)


def issue_link(
    subject: Subject,
    visit_code: str,
    *,
    by: Any,
    language: str = "en",
    now: dt.datetime | None = None,
) -> IssuedLink:
    """Create a one-time link for the patient-reported forms of one visit of a subject.

    Raises
    ------
    EproError
        ``site`` when ``by`` may not enter data at the subject's site, ``visit`` when the visit
        is not planned for the subject or has no patient-reported form, ``language``.
    """
    if not may_issue(by, subject):
        raise EproError("site", f"{getattr(by, 'username', by)!r} may not issue links here")
    if language not in {"en", "fr"}:
        raise EproError("language", f"{language!r} is not en or fr")
    if not Visit.objects.filter(subject=subject, code=visit_code).exists():
        raise EproError("visit", f"{visit_code!r} is not a planned visit of {subject.subject_id}")
    definition = records.definition_of(subject.study)
    if not patient_forms(definition, visit_code):
        raise EproError("visit", f"{visit_code!r} has no patient-reported form")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_hash(token)
    now = now or timezone.now()
    with transaction.atomic():
        link = PatientLink.objects.create(
            subject=subject,
            visit_code=visit_code,
            language=language,
            token_sha256=digest,
            prefix=digest[:PREFIX_LENGTH],
            created_by=by,
            expires_at=now + dt.timedelta(hours=link_hours()),
        )
        audit(
            "epro.issue",
            user=by,
            entity=link,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "visit": visit_code,
                "prefix": link.prefix,
                "expires_at": link.expires_at.isoformat(),
            },
        )
    return IssuedLink(token, link)


def qr_svg(url: str) -> str:
    """An inline SVG QR code of ``url``."""
    return segno.make(url, error="m").svg_inline(scale=4)


def open_link(token: str, *, now: dt.datetime | None = None) -> PatientLink:
    """The unused, unexpired link of a token, or :class:`LinkUnavailable`."""
    now = now or timezone.now()
    link = (
        PatientLink.objects.select_related("subject__study", "subject__site")
        .filter(token_sha256=token_hash(token or ""), used_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if link is None:
        raise LinkUnavailable("this link is not valid")
    return link


def actor(link: PatientLink) -> str:
    """How the audit trail names the patient who answered through ``link``."""
    return f"patient via link {link.prefix}"


def submit(
    token: str,
    answers: Mapping[str, Mapping[str, Any]],
    *,
    now: dt.datetime | None = None,
) -> list[records.SaveResult]:
    """Save the patient's answers (form code → item → raw value) and use the link up.

    Raises
    ------
    LinkUnavailable
        The token is unknown, used or expired (also when another submission won the race).
    records.CaptureError
        An answer was refused (naming the item and value); nothing is written, the link stays
        usable.
    """
    now = now or timezone.now()
    link = open_link(token, now=now)
    definition = records.definition_of(link.subject.study)
    forms = patient_forms(definition, link.visit_code)
    with transaction.atomic():
        claimed = PatientLink.objects.filter(
            pk=link.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if claimed != 1:
            raise LinkUnavailable("this link is not valid")
        who = actor(link)
        results = [
            records.save_form(
                link.subject,
                form.code,
                answers.get(form.code, {}),
                by=None,
                visit_code=link.visit_code,
                reason=f"Answered by the {who}",
                complete=True,
                patient_entered=True,
                actor=who,
            )
            for form in forms
        ]
        audit(
            "epro.submit",
            entity=link,
            username=who,
            study=link.subject.study.code,
            site=link.subject.site.code,
            changes={
                "subject_id": link.subject.subject_id,
                "visit": link.visit_code,
                "forms": [result.record.form for result in results],
                "records": [result.record.pk for result in results],
            },
        )
    return results
