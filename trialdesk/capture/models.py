"""The visit schedule of randomized subjects, protocol deviations, and study discontinuations.

Each randomized subject gets one :class:`Visit` per visit of the study file, with its planned
date and window computed from the subject's day 0. Rows are written by
:mod:`trialdesk.capture.schedule` only, each change audited in its transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.screening.models import Subject


class VisitStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    MISSED = "missed", _("Missed")


class Visit(models.Model):
    """One planned visit of a subject: target date, window, and what happened."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="visits")
    code = models.CharField(max_length=40)
    order = models.PositiveSmallIntegerField()
    day = models.IntegerField(help_text="Target day from day 0.")
    planned_date = models.DateField()
    window_start = models.DateField()
    window_end = models.DateField()
    status = models.CharField(
        max_length=16, choices=VisitStatus.choices, default=VisitStatus.PLANNED
    )
    done_on = models.DateField(null=True, blank=True)
    out_of_window = models.BooleanField(default=False)
    missed_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "code"], name="visit_once_per_subject"),
        ]
        ordering = ["subject", "order"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id} {self.code}"


class DeviationKind(models.TextChoices):
    VISIT_OUT_OF_WINDOW = "visit_out_of_window", _("Visit out of window")


class ProtocolDeviation(models.Model):
    """A departure from the protocol, recorded by the system or the site."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="deviations")
    visit = models.ForeignKey(
        Visit, null=True, blank=True, on_delete=models.PROTECT, related_name="deviations"
    )
    kind = models.CharField(max_length=32, choices=DeviationKind.choices)
    description = models.TextField()
    occurred_on = models.DateField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["subject", "occurred_on", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id}: {self.kind} on {self.occurred_on}"


class ExitKind(models.TextChoices):
    WITHDRAWN = "withdrawn", _("Withdrawn")
    LOST_TO_FOLLOW_UP = "lost_to_follow_up", _("Lost to follow-up")


class Discontinuation(models.Model):
    """A randomized subject who left the study: withdrawal or loss to follow-up."""

    subject = models.OneToOneField(
        Subject, on_delete=models.PROTECT, related_name="discontinuation"
    )
    kind = models.CharField(max_length=24, choices=ExitKind.choices)
    on = models.DateField(help_text="Date of withdrawal, or of the last contact when lost.")
    reason = models.TextField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["subject"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id}: {self.kind} on {self.on}"
