"""Adverse events, SAE reporting clocks, skin infections, laboratory results and alerts.

None of these rows is typed by anyone: they are derived from the capture form records (the AE
form, the skin infection log, the safety laboratory form) by :mod:`trialdesk.safety.services`
when capture sends :data:`trialdesk.capture.signals.form_saved`, inside the save's transaction.
The exceptions are what only safety knows: the reference ranges of the site laboratories, the
moment an SAE was reported to the sponsor, and the acknowledgement of a laboratory alert.

No row here holds a treatment arm.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.capture.models import FormRecord
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Subject

_USER = settings.AUTH_USER_MODEL
_DECIMAL = {"max_digits": 18, "decimal_places": 6}


class AeOrigin(models.TextChoices):
    AE_FORM = "ae_form", _("Adverse event form")
    INFECTION_LOG = "infection_log", _("Skin infection log")


class AdverseEvent(models.Model):
    """One adverse event of a subject, as the AE form (or the skin infection log) records it.

    Dates are partial dates in their canonical text (``2025-03``, see
    :mod:`trialdesk.safety.partial_dates`), with the first and last day they may be.
    ``aesi`` and ``aesi_category`` are the investigator's answers (``None``/blank: not answered);
    ``aesi_suggested`` is the category :func:`trialdesk.safety.aesi.suggest_aesi` reads in the
    term. :attr:`is_aesi` and :attr:`aesi_code` give the answer that counts.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="adverse_events")
    record = models.OneToOneField(
        FormRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adverse_event",
        help_text="The AE form record; empty while the event is known from the infection log only.",
    )
    origin = models.CharField(max_length=16, choices=AeOrigin.choices)
    term = models.CharField(max_length=200)
    start = models.CharField(max_length=10, blank=True)
    start_earliest = models.DateField(null=True, blank=True)
    start_latest = models.DateField(null=True, blank=True)
    end = models.CharField(max_length=10, blank=True)
    end_earliest = models.DateField(null=True, blank=True)
    end_latest = models.DateField(null=True, blank=True)
    ongoing = models.BooleanField(null=True, blank=True)
    serious = models.BooleanField(default=False)
    seriousness_criteria = models.JSONField(
        default=list, help_text="Item codes of the ticked criteria (sae_death, ...)."
    )
    severity = models.CharField(max_length=32, blank=True)
    ctcae_grade = models.PositiveSmallIntegerField(null=True, blank=True)
    relationship = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=32, blank=True)
    aesi = models.BooleanField(null=True, blank=True)
    aesi_category = models.CharField(max_length=40, blank=True)
    aesi_suggested = models.CharField(max_length=40, blank=True)
    visit_code = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subject", "start_earliest", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id}: {self.term} ({self.start or '?'})"

    @property
    def is_aesi(self) -> bool:
        """The investigator's answer if given, else the suggestion."""
        return self.aesi if self.aesi is not None else bool(self.aesi_suggested)

    @property
    def aesi_code(self) -> str:
        if self.aesi is False:
            return ""
        return self.aesi_category or (self.aesi_suggested if self.aesi is None else "")


class SkinInfection(models.Model):
    """One record of the skin infection log: counted for efficacy, and one adverse event."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="skin_infections")
    record = models.OneToOneField(
        FormRecord, on_delete=models.PROTECT, related_name="skin_infection"
    )
    infection_type = models.CharField(max_length=32, blank=True)
    onset = models.CharField(max_length=10, blank=True)
    adverse_event = models.OneToOneField(
        AdverseEvent, on_delete=models.PROTECT, related_name="skin_infection"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subject", "onset", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id}: {self.infection_type} skin infection ({self.onset})"


class SaeReport(models.Model):
    """The 24-hour reporting clock of a serious adverse event.

    Started when the event is first saved as serious; ``reported_at`` stops it. An event later
    corrected to non-serious keeps its row, with ``withdrawn_at`` set (off the worklist).
    """

    adverse_event = models.OneToOneField(
        AdverseEvent, on_delete=models.PROTECT, related_name="sae_report"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    clock_started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    started_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    notified_to = models.JSONField(default=list, help_text="Addresses e-mailed at the start.")
    reported_at = models.DateTimeField(null=True, blank=True)
    reported_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"SAE clock of {self.adverse_event} due {self.due_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.reported_at is None and self.withdrawn_at is None


class Sex(models.TextChoices):
    ANY = "", _("Any")
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")


class ReferenceRange(models.Model):
    """The normal range of one test at one laboratory of a site, from ``valid_from`` on.

    Used when the laboratory form gives no limits of its own. Optional sex and age bounds
    (``age_min`` inclusive, ``age_max`` exclusive, in years) narrow it to some subjects; the most
    specific range valid on the sampling day wins.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="reference_ranges")
    lab_name = models.CharField(max_length=100)
    test = models.CharField(max_length=16)
    unit = models.CharField(max_length=16)
    lln = models.DecimalField(null=True, blank=True, **_DECIMAL)
    uln = models.DecimalField(null=True, blank=True, **_DECIMAL)
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True, default=Sex.ANY)
    age_min = models.PositiveSmallIntegerField(null=True, blank=True)
    age_max = models.PositiveSmallIntegerField(null=True, blank=True)
    valid_from = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "lab_name", "test", "sex", "age_min", "age_max", "valid_from"],
                name="reference_range_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(lln__isnull=True)
                | models.Q(uln__isnull=True)
                | models.Q(lln__lte=models.F("uln")),
                name="reference_range_lln_not_above_uln",
            ),
        ]
        ordering = ["site", "lab_name", "test", "valid_from"]

    def __str__(self) -> str:
        return f"{self.site.code} {self.lab_name} {self.test}: {self.lln}–{self.uln} {self.unit}"


class Flag(models.TextChoices):
    NORMAL = "N", _("Normal")
    LOW = "L", _("Low")
    HIGH = "H", _("High")
    UNKNOWN = "", _("No range")


class RangeSource(models.TextChoices):
    FORM = "form", _("Laboratory form")
    REFERENCE = "reference", _("Site reference range")
    NONE = "", _("None")


class LabResult(models.Model):
    """One test of one safety laboratory form: as reported, in standard units, flagged, graded.

    ``baseline`` is the subject's D0 value of the same test in standard units (the D0 result's
    own value for the D0 result). ``grade`` is the CTCAE v5.0 grade of
    :func:`trialdesk.safety.ctcae.grade`, ``None`` when it cannot be computed (``grade_note``
    says why).
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="lab_results")
    record = models.ForeignKey(FormRecord, on_delete=models.PROTECT, related_name="lab_results")
    visit_code = models.CharField(max_length=40)
    is_baseline = models.BooleanField(default=False)
    test = models.CharField(max_length=16)
    sampled_at = models.DateTimeField(null=True, blank=True)
    lab_name = models.CharField(max_length=100, blank=True)
    value = models.DecimalField(
        null=True, blank=True, help_text="Empty once the value is removed.", **_DECIMAL
    )
    unit = models.CharField(max_length=16, blank=True)
    lln = models.DecimalField(null=True, blank=True, **_DECIMAL)
    uln = models.DecimalField(null=True, blank=True, **_DECIMAL)
    range_source = models.CharField(max_length=16, choices=RangeSource.choices, blank=True)
    reference_range = models.ForeignKey(
        ReferenceRange, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    standard_unit = models.CharField(max_length=16, blank=True)
    value_std = models.DecimalField(null=True, blank=True, **_DECIMAL)
    lln_std = models.DecimalField(null=True, blank=True, **_DECIMAL)
    uln_std = models.DecimalField(null=True, blank=True, **_DECIMAL)
    baseline = models.DecimalField(null=True, blank=True, **_DECIMAL)
    flag = models.CharField(max_length=1, choices=Flag.choices, blank=True)
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    grade_note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record", "test"], name="lab_result_once_per_record"),
        ]
        ordering = ["subject", "sampled_at", "test", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id} {self.visit_code} {self.test} {self.value} {self.unit}"


class LabAlert(models.Model):
    """A laboratory result of CTCAE grade 3 or more, shown until an investigator acknowledges it.

    One row per result and grade: a corrected value with another grade ≥ 3 raises a new alert.
    """

    lab_result = models.ForeignKey(LabResult, on_delete=models.PROTECT, related_name="alerts")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    grade = models.PositiveSmallIntegerField()
    raised_at = models.DateTimeField()
    notified_to = models.JSONField(default=list)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        _USER, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lab_result", "grade"], name="lab_alert_once_per_grade"
            ),
        ]
        ordering = ["-raised_at", "id"]

    def __str__(self) -> str:
        return f"grade {self.grade} alert: {self.lab_result}"
