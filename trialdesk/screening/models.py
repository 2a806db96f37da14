"""The screening log, subjects, their identity, eligibility assessments and consent.

Every person screened gets a :class:`ScreeningEntry` (the site's screening log, which CONSORT
reads for screen failures and their reasons) and a :class:`Subject` known by a pseudonymous id
(``TLS-001``). Direct identifiers live apart in :class:`IdentityRecord`, shown only to the
site's own investigator and coordinator and never exported. Each eligibility evaluation is a
new :class:`EligibilityAssessment` row; consent is a :class:`ConsentRecord` of a versioned
:class:`ConsentDocument`.

Rows are written by :mod:`trialdesk.screening.services` only, each change audited in its
transaction.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.protocol.models import Site, Study, StudyVersion


class Outcome(models.TextChoices):
    """Where a screened person stands in the screening log."""

    IN_PROGRESS = "in_progress", _("Screening in progress")
    SCREEN_FAILED = "screen_failed", _("Screen failure")
    ELIGIBLE = "eligible", _("Eligible")
    RANDOMIZED = "randomized", _("Randomized")
    WITHDREW = "withdrew_before_randomization", _("Withdrew before randomization")


class SubjectStatus(models.TextChoices):
    """The life of a subject in the study."""

    SCREENING = "screening", _("Screening")
    SCREEN_FAILED = "screen_failed", _("Screen failure")
    ELIGIBLE = "eligible", _("Eligible")
    RANDOMIZED = "randomized", _("Randomized")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    LOST_TO_FOLLOW_UP = "lost_to_follow_up", _("Lost to follow-up")
    COMPLETED = "completed", _("Completed")


class Verdict(models.TextChoices):
    """The result of an eligibility assessment."""

    ELIGIBLE = "eligible", _("Eligible")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")
    INCOMPLETE = "incomplete", _("Incomplete")


class ScreeningEntry(models.Model):
    """One line of a site's screening log: a person screened, whether or not they enter.

    Holds no initials or other identifiers: the number, the date, the outcome and, for a screen
    failure, the criterion ids that failed (CONSORT).
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="screening_entries")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="screening_entries")
    number = models.PositiveIntegerField(help_text="Sequence number within the site.")
    screening_number = models.CharField(max_length=32, help_text="Like TLS-S001.")
    screening_date = models.DateField()
    outcome = models.CharField(max_length=32, choices=Outcome.choices, default=Outcome.IN_PROGRESS)
    failure_reasons = models.JSONField(
        default=list, blank=True, help_text="Criterion ids of a screen failure (INC04, EXC05…)."
    )
    failure_note = models.TextField(blank=True)
    study_version = models.ForeignKey(StudyVersion, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "screening_number"], name="screening_number_unique_per_site"
            ),
            models.UniqueConstraint(
                fields=["site", "number"], name="screening_seq_unique_per_site"
            ),
        ]
        ordering = ["site", "number"]
        verbose_name_plural = "screening entries"

    def __str__(self) -> str:
        return self.screening_number


class Subject(models.Model):
    """A screened person, known only by a pseudonymous id (site code + number, ``TLS-001``)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="subjects")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="subjects")
    number = models.PositiveIntegerField(help_text="Sequence number within the site.")
    subject_id = models.CharField(max_length=32)
    screening_entry = models.OneToOneField(
        ScreeningEntry, on_delete=models.PROTECT, related_name="subject"
    )
    status = models.CharField(
        max_length=32, choices=SubjectStatus.choices, default=SubjectStatus.SCREENING
    )
    study_version = models.ForeignKey(
        StudyVersion,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The protocol version the subject was screened under.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "subject_id"], name="subject_id_unique_per_study"
            ),
            models.UniqueConstraint(fields=["site", "number"], name="subject_seq_unique_per_site"),
        ]
        ordering = ["study", "site", "number"]

    def __str__(self) -> str:
        return self.subject_id


class IdentityRecord(models.Model):
    """Direct identifiers of a subject, for the site only (GDPR).

    Shown only when :func:`trialdesk.accounts.policy.may_see_identity` allows it; never exported,
    never in an API answer to anyone else.
    """

    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, related_name="identity")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True, help_text="For questionnaire links.")

    def __str__(self) -> str:
        return f"identity of {self.subject_id}"


class EligibilityAssessment(models.Model):
    """One evaluation of the eligibility criteria; a re-assessment is a new row."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="assessments")
    data = models.JSONField(help_text="The screening data as entered (dates as YYYY-MM-DD).")
    results = models.JSONField(
        help_text="Per criterion: id, kind, result (met/not_met/unknown), message_en, message_fr."
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    study_version = models.ForeignKey(StudyVersion, on_delete=models.PROTECT, related_name="+")
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assessed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "assessed_at", "id"]

    def __str__(self) -> str:
        return f"{self.subject_id}: {self.verdict} ({self.assessed_at:%Y-%m-%d})"


class ConsentDocument(models.Model):
    """One version of a study's information and consent form, in one language."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="consent_documents")
    version = models.CharField(max_length=32)
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    title = models.CharField(max_length=300)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Last day it may be signed.")
    text = models.TextField(blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "version", "language"], name="consent_document_unique"
            ),
        ]
        ordering = ["study", "valid_from", "version", "language"]

    def __str__(self) -> str:
        return f"{self.study.code} consent v{self.version} ({self.language})"

    def valid_on(self, day: dt.date) -> bool:
        """Whether the document may be signed on ``day`` (a date)."""
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


class ConsentRecord(models.Model):
    """A subject's signature of a consent document, and its withdrawal if any."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="consents")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="records")
    signed_at = models.DateTimeField()
    obtained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The person who obtained consent.",
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subject", "signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.subject_id} consent {self.document_id} at {self.signed_at:%Y-%m-%d %H:%M}"
