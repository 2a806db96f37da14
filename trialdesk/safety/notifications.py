"""E-mails of the safety module, sent through Django's mail framework after the commit.

* A serious adverse event starts its 24-hour clock and e-mails the sponsor's safety contact(s),
  ``settings.SAFETY_NOTIFY_EMAILS`` (from ``TRIALDESK_SAFETY_EMAIL``).
* A laboratory alert (CTCAE grade ≥ 3) e-mails the investigators of the subject's site (their
  account e-mail addresses).

Messages name the study, site, subject id, event or test, and times; never a treatment arm nor a
direct identifier. Callers schedule them with :func:`django.db.transaction.on_commit`, so that a
rolled-back save sends nothing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from trialdesk.accounts.models import Membership, Role
from trialdesk.protocol.models import Site

from .models import LabAlert, SaeReport

log = logging.getLogger(__name__)


def safety_contacts() -> list[str]:
    """The sponsor's safety contact addresses (possibly none: a deploy check warns)."""
    return list(getattr(settings, "SAFETY_NOTIFY_EMAILS", []) or [])


def site_investigators(site: Site) -> list[str]:
    """E-mail addresses of the active investigators of a site, sorted."""
    emails = (
        Membership.objects.filter(
            site=site, role=Role.INVESTIGATOR, revoked_at__isnull=True, user__is_active=True
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    return sorted(set(emails))


def _when(moment: object) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def send_sae_notice(report: SaeReport, recipients: list[str]) -> None:
    """E-mail the start of an SAE clock to ``recipients`` (nobody: a logged warning)."""
    event = report.adverse_event
    subject = event.subject
    if not recipients:
        log.warning(
            "serious adverse event of %s: no TRIALDESK_SAFETY_EMAIL, nobody notified",
            subject.subject_id,
        )
        return
    criteria = ", ".join(event.seriousness_criteria) or "not given"
    body = (
        f"Serious adverse event in study {event.study.code}\n\n"
        f"Subject: {subject.subject_id} (site {event.site.code})\n"
        f"Event: {event.term}\n"
        f"Start: {event.start or 'unknown'}\n"
        f"Seriousness criteria: {criteria}\n"
        f"Outcome: {event.outcome or 'not given'}\n"
        f"Reporting clock started: {_when(report.clock_started_at)}\n"
        f"Report due by: {_when(report.due_at)}\n\n"
        "The site must send the SAE report form within 24 hours.\n"
    )
    send_mail(
        subject=f"[trialdesk] SAE: {event.study.code} {subject.subject_id} – {event.term}",
        message=body,
        from_email=None,
        recipient_list=recipients,
    )


def send_lab_alert(alert: LabAlert, recipients: list[str]) -> None:
    """E-mail a grade ≥ 3 laboratory result to the site's investigators."""
    result = alert.lab_result
    if not recipients:
        log.warning(
            "grade %s %s of %s: no investigator e-mail at %s",
            alert.grade,
            result.test,
            result.subject.subject_id,
            alert.site.code,
        )
        return
    body = (
        f"Laboratory alert in study {result.study.code}\n\n"
        f"Subject: {result.subject.subject_id} (site {result.site.code})\n"
        f"Visit: {result.visit_code}\n"
        f"Test: {result.test}\n"
        f"Value: {result.value} {result.unit}"
        f" ({result.value_std} {result.standard_unit})\n"
        f"CTCAE v5.0 grade: {alert.grade}\n"
        f"Raised: {_when(alert.raised_at)}\n\n"
        "Please review the result and acknowledge the alert in trialdesk.\n"
    )
    send_mail(
        subject=(
            f"[trialdesk] Grade {alert.grade} {result.test}: "
            f"{result.study.code} {result.subject.subject_id}"
        ),
        message=body,
        from_email=None,
        recipient_list=recipients,
    )
