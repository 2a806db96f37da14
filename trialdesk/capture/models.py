"""Visits, protocol deviations, discontinuations, and the case report forms captured at visits.

Each randomized (or cohort-enrolled) subject gets one :class:`Visit` per visit of the study file,
with its planned date and window computed from the subject's day 0. Rows are written by
:mod:`trialdesk.capture.schedule` only, each change audited in its transaction.

Case report forms: one :class:`FormRecord` per (subject, visit, form) for a visit form, or one
numbered record per subject for a repeating form (adverse events, medications, infections,
samples); its :class:`ItemValue` rows hold the values. :class:`Query`, :class:`Signature` and
:class:`Lock` rows are the data-management state. All of them are written by
:mod:`trialdesk.capture.records` (and its siblings ``queries``, ``signatures``, ``locks``) only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from trialdesk.protocol.models import Site, Study, StudyVersion
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


# --------------------------------------------------------------------------------------------
# Case report forms


class RecordStatus(models.TextChoices):
    """Where a form record stands; each later status implies the earlier ones."""

    NOT_STARTED = "not_started", _("Not started")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETE = "complete", _("Complete")
    VERIFIED = "verified", _("Verified (SDV)")
    SIGNED = "signed", _("Signed")
    LOCKED = "locked", _("Locked")


class FormRecord(models.Model):
    """One filled form: a visit form of a subject at a visit, or a numbered repeating record.

    ``visit_code`` is the visit a visit form belongs to (and, for a repeating record, the visit
    it was reported at, or empty). ``number`` is 1 for a visit form and 1, 2, 3… per subject and
    form for repeating records. ``study_version`` is the study file the record was last saved
    under. ``status`` is derived by :func:`trialdesk.capture.records.refresh_status` from
    ``completed``, the verification, the valid signatures and the locks.
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="form_records")
    form = models.CharField(max_length=40)
    visit_code = models.CharField(max_length=40, blank=True)
    repeating = models.BooleanField(default=False)
    number = models.PositiveIntegerField(default=1)
    study_version = models.ForeignKey(StudyVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=RecordStatus.choices, default=RecordStatus.IN_PROGRESS
    )
    completed = models.BooleanField(default=False)
    patient_entered = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revision = models.PositiveIntegerField(default=1, help_text="Incremented by every save.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "form", "visit_code"],
                condition=models.Q(repeating=False),
                name="form_record_once_per_visit",
            ),
            models.UniqueConstraint(
                fields=["subject", "form", "number"],
                condition=models.Q(repeating=True),
                name="repeating_record_number_per_subject",
            ),
        ]
        ordering = ["subject", "visit_code", "form", "number"]

    def __str__(self) -> str:
        where = f"#{self.number}" if self.repeating else self.visit_code
        return f"{self.subject.subject_id} {self.form} {where}"

    def active_locks(self) -> models.QuerySet[Lock]:
        """The locks in force on this record: its own, its subject's, its study's."""
        return Lock.objects.filter(unlocked_at__isnull=True).filter(
            models.Q(scope=LockScope.FORM, record_id=self.pk)
            | models.Q(scope=LockScope.SUBJECT, subject_id=self.subject_id)
            | models.Q(scope=LockScope.STUDY, study_id=self.subject.study_id)
        )


class LockedRecordError(RuntimeError):
    """A write of an item value of a locked record, whatever path it came by."""


class ValueState(models.TextChoices):
    """An item holds a value, or is declared not done or unknown with a reason."""

    VALUE = "value", _("Value")
    NOT_DONE = "not_done", _("Not done")
    UNKNOWN = "unknown", _("Unknown")


class ItemValue(models.Model):
    """One item of a form record: its value as JSON (dates as ``YYYY-MM-DD``), or a state."""

    record = models.ForeignKey(FormRecord, on_delete=models.PROTECT, related_name="values")
    item = models.CharField(max_length=64)
    value = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=ValueState.choices, default=ValueState.VALUE)
    reason = models.TextField(blank=True, help_text="Why not done or unknown.")
    computed = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "item"], name="item_value_once_per_record"),
        ]
        ordering = ["record", "id"]

    def __str__(self) -> str:
        return f"{self.record} {self.item}={self.value!r}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuse to write a value of a locked record, even from code that skips the services."""
        if self.record.active_locks().exists():
            raise LockedRecordError(f"record: {self.record} is locked; {self.item} cannot change")
        super().save(*args, **kwargs)


class QueryStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("query status", "Open")
    ANSWERED = "answered", pgettext_lazy("query status", "Answered")
    CLOSED = "closed", pgettext_lazy("query status", "Closed")


class Query(models.Model):
    """A question about one item of a record, raised by a person or by a soft edit check."""

    record = models.ForeignKey(FormRecord, on_delete=models.PROTECT, related_name="queries")
    item = models.CharField(max_length=64, blank=True)
    check_id = models.CharField(
        max_length=40, blank=True, help_text="The soft check that raised it."
    )
    text = models.TextField()
    status = models.CharField(max_length=16, choices=QueryStatus.choices, default=QueryStatus.OPEN)
    raised_at = models.DateTimeField(auto_now_add=True)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["raised_at", "id"]
        verbose_name_plural = "queries"

    def __str__(self) -> str:
        return f"{self.record} {self.item}: {self.status}"


class QueryMessage(models.Model):
    """One step of a query's life: raised, answered, closed, re-opened, each with its text."""

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    action = models.CharField(max_length=16)
    text = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"query #{self.query_id} {self.action}"


class SignatureScope(models.TextChoices):
    VISIT = "visit", _("Visit")
    CASEBOOK = "casebook", _("Subject casebook")


class Signature(models.Model):
    """An investigator's electronic signature of a visit or of a whole casebook.

    ``content_sha256`` is the SHA-256 of the canonical JSON of what was signed; a later change
    of that content sets ``invalidated_at`` (the signature stays, visibly invalid).
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="signatures")
    scope = models.CharField(max_length=16, choices=SignatureScope.choices)
    visit_code = models.CharField(max_length=40, blank=True)
    meaning = models.TextField()
    content_sha256 = models.CharField(max_length=64)
    signed_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["signed_at", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id} {self.scope} {self.visit_code} by {self.signed_by_id}"


class LockScope(models.TextChoices):
    FORM = "form", _("Form")
    SUBJECT = "subject", _("Subject")
    STUDY = "study", _("Study")


class Lock(models.Model):
    """A lock of one record, one subject's casebook or a whole study; unlocking keeps the row."""

    scope = models.CharField(max_length=16, choices=LockScope.choices)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey(
        Subject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    record = models.ForeignKey(
        FormRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="locks"
    )
    reason = models.TextField(blank=True)
    locked_at = models.DateTimeField(auto_now_add=True)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    unlocked_at = models.DateTimeField(null=True, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unlock_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["locked_at", "id"]

    def __str__(self) -> str:
        return f"{self.scope} lock #{self.pk}"


# --------------------------------------------------------------------------------------------
# Patient questionnaires (ePRO) and samples


class PatientLink(models.Model):
    """A one-time link a patient opens to answer the patient-reported forms of one visit.

    Only the SHA-256 of the token is stored (``token_sha256``); ``prefix`` is the first characters
    of that hash, which the audit trail names the link by. ``used_at`` is set once, by a
    conditional update: a link works once.
    """

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="patient_links")
    visit_code = models.CharField(max_length=40)
    language = models.CharField(max_length=8, default="en")
    token_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"patient link {self.prefix}"


class SampleType(models.TextChoices):
    BIOPSY = "biopsy", _("Skin biopsy")
    SWAB = "swab", _("Microbiome swab")


class Shipment(models.Model):
    """A batch of samples sent from a site to the central laboratory, and its receipt."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    batch = models.CharField(max_length=40)
    shipped_on = models.DateField()
    shipped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    received_on = models.DateField(null=True, blank=True)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "batch"], name="shipment_batch_once"),
        ]
        ordering = ["-shipped_on", "batch"]

    def __str__(self) -> str:
        return f"shipment {self.batch}"


class Sample(models.Model):
    """A biopsy or microbiome swab taken at a visit: its label, storage and shipment."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="samples")
    sample_id = models.CharField(max_length=30)
    kind = models.CharField(max_length=16, choices=SampleType.choices)
    visit_code = models.CharField(max_length=40)
    taken_at = models.DateTimeField()
    storage = models.CharField(max_length=60)
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.PROTECT, related_name="samples"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sample_id"], name="sample_id_once"),
        ]
        ordering = ["subject", "taken_at", "sample_id"]

    def __str__(self) -> str:
        return self.sample_id
