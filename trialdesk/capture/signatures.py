"""Electronic signatures of the investigator, per visit or per subject casebook.

The investigator re-enters their password; the meaning of the signature is shown before and
stored with it; the signature holds the SHA-256 of the canonical JSON of what it covers
(:func:`~trialdesk.capture.records.signed_content`). A later change of that content invalidates
it visibly (``invalidated_at``) until the investigator signs again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.models import AuditEvent
from trialdesk.audit.services import record as audit
from trialdesk.lib.hashing import canonical_json, sha256_hex
from trialdesk.screening.models import Subject

from .models import FormRecord, RecordStatus, Signature, SignatureScope
from .records import (
    CaptureError,
    CaptureNotAllowed,
    check_unlocked,
    refresh_status,
    signed_content,
)

#: What the investigator declares by signing (shown on the sign page, stored in English).
MEANING = (
    "I, the investigator, have reviewed the data of this {what} and confirm that, to the best of "
    "my knowledge, they are complete and accurate."
)
MEANING_SHOWN = _(
    "I, the investigator, have reviewed the data of this %(what)s and confirm that, to the best "
    "of my knowledge, they are complete and accurate."
)


class WrongPassword(CaptureError):
    """The password re-entered to sign is not the signer's."""


class SigningBlocked(CaptureNotAllowed):
    """Too many wrong signing passwords in a row: signing is refused for a while."""


#: A wrong signing password is an audit event of its own (21 CFR 11.300(d): attempts at
#: unauthorized use are detected and reported); after ``AXES_FAILURE_LIMIT`` of them since the
#: user's last signature and within the window, signing is refused until the window has passed.
PASSWORD_REFUSED = "signature.password_refused"  # noqa: S105 (an audit action)
BLOCK_WINDOW = dt.timedelta(minutes=30)


def _recent_refusals(by: Any) -> list[dt.datetime]:
    """When ``by`` last gave a wrong signing password, since their last signature, in the window."""
    since = timezone.now() - BLOCK_WINDOW
    last_signed = (
        AuditEvent.objects.filter(action="signature.sign", user=by, at__gte=since)
        .order_by("-id")
        .values_list("at", flat=True)
        .first()
    )
    refusals = AuditEvent.objects.filter(action=PASSWORD_REFUSED, user=by, at__gte=since)
    if last_signed is not None:
        refusals = refusals.filter(at__gt=last_signed)
    return list(refusals.order_by("at").values_list("at", flat=True))


def _check_password(subject: Subject, by: Any, password: str, visit_code: str | None) -> None:
    """Refuse a blocked signer; audit (in its own transaction) and refuse a wrong password."""
    limit = settings.AXES_FAILURE_LIMIT
    refusals = _recent_refusals(by)
    if len(refusals) >= limit:
        until = timezone.localtime(refusals[-limit] + BLOCK_WINDOW)
        raise SigningBlocked(
            "password",
            f"{limit} wrong passwords in a row: signing is blocked until {until:%H:%M}",
        )
    if password and by.check_password(password):
        return
    with transaction.atomic():
        audit(
            PASSWORD_REFUSED,
            user=by,
            entity=subject,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "visit": visit_code or "",
                "attempt": len(refusals) + 1,
            },
        )
    raise WrongPassword("password", "the password is not correct; the signature is refused")


def meaning_of(visit_code: str | None) -> str:
    return MEANING.format(what=f"visit {visit_code}" if visit_code else "subject casebook")


def may_sign(user: Any, subject: Subject) -> bool:
    return Role.INVESTIGATOR in policy.roles(
        user, subject.study, subject.site
    ) and policy.may_enter_data(user, subject.site)


def content_hash(subject: Subject, visit_code: str | None = None) -> str:
    return sha256_hex(canonical_json(signed_content(subject, visit_code)))


def sign(subject: Subject, *, by: Any, password: str, visit_code: str | None = None) -> Signature:
    """Sign a visit (``visit_code``) or the whole casebook after re-entering the password.

    Raises
    ------
    CaptureError
        Not an investigator of the site, wrong password, nothing to sign, a record in progress
        or locked.
    """
    if not may_sign(by, subject):
        raise CaptureNotAllowed("role", "only the site's investigator may sign")
    _check_password(subject, by, password, visit_code)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        records = FormRecord.objects.filter(subject=subject)
        if visit_code:
            records = records.filter(visit_code=visit_code)
        records = list(records)
        if not records:
            what = visit_code or subject.subject_id
            raise CaptureError("visit" if visit_code else "subject", f"{what}: nothing to sign")
        for record in records:
            check_unlocked(record)
            if record.status == RecordStatus.IN_PROGRESS:
                raise CaptureError("record", f"{record} is in progress; complete it before signing")
        meaning = meaning_of(visit_code)
        signature = Signature.objects.create(
            subject=subject,
            scope=SignatureScope.VISIT if visit_code else SignatureScope.CASEBOOK,
            visit_code=visit_code or "",
            meaning=meaning,
            content_sha256=content_hash(subject, visit_code),
            signed_by=by,
        )
        for record in records:
            refresh_status(record)
        audit(
            "signature.sign",
            user=by,
            entity=signature,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "scope": signature.scope,
                "visit": signature.visit_code,
                "meaning": meaning,
                "content_sha256": signature.content_sha256,
                "valid": [None, True],
            },
        )
    return signature


def signatures_of(subject: Subject) -> list[Signature]:
    return list(Signature.objects.filter(subject=subject).select_related("signed_by"))
