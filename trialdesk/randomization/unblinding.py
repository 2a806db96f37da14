"""Emergency unblinding of one subject by an investigator.

The investigator gives a reason and re-enters their password. In one transaction trialdesk then
records an :class:`~trialdesk.randomization.models.Unblinding`, flags the subject's allocation
(``unblinded_at``), grants that investigator, and nobody else, the right to see this subject's
arm (:class:`~trialdesk.accounts.models.AllocationGrant`, read by
:func:`~trialdesk.accounts.policy.may_see_subject_allocation`) and audits the event. When the
transaction commits, the sponsor's unblinded contact (``settings.UNBLINDING_NOTIFY_EMAILS``,
from ``TRIALDESK_UNBLINDING_EMAIL``) is e-mailed through Django's mail framework; the e-mail
names the subject, the investigator and the reason, never the arm. A refused attempt (wrong
password) is audited too.

The counts (:func:`unblinding_counts`) are for the DSMB and hold no arm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import AllocationGrant, Role
from trialdesk.audit.services import record
from trialdesk.protocol.models import Study
from trialdesk.screening.models import Subject

from .errors import UnblindingRefused
from .models import Allocation, Unblinding
from .sealing import ArmView, arm_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unblinded:
    """The outcome of :func:`unblind`: the event and, for the requester only, the arm."""

    unblinding: Unblinding
    arm: ArmView
    notified: tuple[str, ...]


def unblind(subject: Subject, *, by: Any, reason: str, password: str) -> Unblinded:
    """Reveal one subject's arm to the investigator who asks, in an emergency.

    Raises
    ------
    UnblindingRefused
        ``by`` is not an investigator at the subject's site, no reason, a wrong password, or the
        subject is not randomized. A wrong password is audited.
    """
    if by is None or not _is_site_investigator(by, subject):
        who = getattr(by, "username", by)
        raise UnblindingRefused(
            "user", f"{who!r} is not an investigator at {subject.site.code}; only they may unblind"
        )
    reason = (reason or "").strip()
    if not reason:
        raise UnblindingRefused("reason", "a reason is required for an emergency unblinding")
    if not password or not by.check_password(password):
        _audit_refusal(subject, by, reason)
        raise UnblindingRefused("password", "the password does not match; nothing was unblinded")
    allocation = Allocation.objects.filter(subject=subject).first()
    if allocation is None:
        raise UnblindingRefused("subject", f"{subject.subject_id} is not randomized")
    notified = tuple(getattr(settings, "UNBLINDING_NOTIFY_EMAILS", ()) or ())
    with transaction.atomic():
        now = timezone.now()
        unblinding = Unblinding.objects.create(
            subject=subject,
            study=subject.study,
            site=subject.site,
            requested_by=by,
            reason=reason,
            at=now,
            notified=list(notified),
        )
        Allocation.objects.filter(pk=allocation.pk, unblinded_at__isnull=True).update(
            unblinded_at=now
        )
        if not AllocationGrant.objects.filter(
            user=by, study=subject.study, subject_key=subject.subject_id, revoked_at__isnull=True
        ).exists():
            AllocationGrant.objects.create(
                user=by,
                study=subject.study,
                site=subject.site,
                subject_key=subject.subject_id,
                reason=reason,
            )
        record(
            "randomization.unblind",
            user=by,
            entity=unblinding,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "randomization_number": allocation.randomization_number,
                "notified": list(notified),
            },
            reason=reason,
        )
        arm = arm_for(by, subject)
        transaction.on_commit(lambda: _notify(unblinding, notified))
    return Unblinded(unblinding, arm, notified)


def unblinding_counts(study: Study) -> dict[str, Any]:
    """Unblindings of the study: events and subjects in total and by site (no arm)."""
    events = Unblinding.objects.filter(study=study)
    by_site = {
        row["site__code"]: {"events": row["events"], "subjects": row["subjects"]}
        for row in events.values("site__code").annotate(
            events=Count("id"), subjects=Count("subject", distinct=True)
        )
    }
    for site in study.sites.all():
        by_site.setdefault(site.code, {"events": 0, "subjects": 0})
    return {
        "events": events.count(),
        "subjects": events.values("subject").distinct().count(),
        "by_site": dict(sorted(by_site.items())),
    }


def unblindings_for(user: Any, study: Study) -> list[Unblinding]:
    """The unblinding events at the sites the user may see (who, when, why; no arm)."""
    sites = policy.visible_sites(user, study)
    return list(
        Unblinding.objects.filter(study=study, site__in=sites)
        .select_related("subject", "site", "requested_by")
        .order_by("at", "id")
    )


def _is_site_investigator(user: Any, subject: Subject) -> bool:
    return Role.INVESTIGATOR in policy.roles(user, subject.study, subject.site) and any(
        m.site_id == subject.site_id and m.role == Role.INVESTIGATOR
        for m in policy.memberships(user, subject.study)
    )


def _audit_refusal(subject: Subject, by: Any, reason: str) -> None:
    with transaction.atomic():
        record(
            "randomization.unblind.refused",
            user=by,
            entity=subject,
            study=subject.study.code,
            site=subject.site.code,
            changes={"subject_id": subject.subject_id, "cause": "password"},
            reason=reason,
        )


def _notify(unblinding: Unblinding, recipients: tuple[str, ...]) -> None:
    if not recipients:
        log.warning(
            "emergency unblinding of %s: no TRIALDESK_UNBLINDING_EMAIL, nobody notified",
            unblinding.subject.subject_id,
        )
        return
    who = unblinding.requested_by
    subject = unblinding.subject
    body = (
        f"Emergency unblinding in study {unblinding.study.code}\n\n"
        f"Subject: {subject.subject_id} (site {unblinding.site.code})\n"
        f"Unblinded by: {who.get_full_name() or who.username} ({who.username})\n"
        f"At: {timezone.localtime(unblinding.at):%Y-%m-%d %H:%M %Z}\n"
        f"Reason: {unblinding.reason}\n\n"
        "The arm was shown to the investigator only; it is not part of this message.\n"
    )
    send_mail(
        subject=f"[trialdesk] Emergency unblinding: {unblinding.study.code} {subject.subject_id}",
        message=body,
        from_email=None,
        recipient_list=list(recipients),
    )
