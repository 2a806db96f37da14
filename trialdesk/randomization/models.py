"""Sealed lists, allocations, kits, dispensing, administration and emergency unblinding.

Two kinds of table live here, and the difference is the point of the app:

* **Sealed tables** (:class:`SealedRow`, :class:`SealedKit`) hold the arms: the imported
  randomization list and kit list. Only :mod:`trialdesk.randomization.sealing` reads an arm out
  of them, and only after asking :mod:`trialdesk.accounts.policy`. Every other query touches
  them inside the database (a sub-query that picks kits of the subject's arm) or reads only
  their non-arm columns.
* **Operational tables** (:class:`Allocation`, :class:`Kit`, :class:`Dispensation`,
  :class:`Administration`, :class:`Unblinding`…) hold no arm at all, so that the blinded pages,
  the API and the exports can read them freely.

Every state change is a row and an audit event, written by the services of this app in one
transaction; contended rows (the next list slot, the next kit) are claimed with a conditional
``UPDATE`` under a unique constraint.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Subject


class SealedList(models.Model):
    """One import of a randomization list and its kit list into a study: hashes and counts.

    At most one list per study is active. A list may be replaced only while nobody has been
    allocated and no kit received; the replaced list stays, inactive, with its hashes.
    """

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="sealed_lists")
    list_sha256 = models.CharField(max_length=64)
    kits_sha256 = models.CharField(max_length=64)
    meta_sha256 = models.CharField(max_length=64, blank=True)
    algorithm = models.CharField(max_length=100, blank=True)
    rows_per_stratum = models.JSONField(help_text="Stratum code to number of list rows.")
    kit_count = models.PositiveIntegerField()
    active = models.BooleanField(default=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study"], condition=models.Q(active=True), name="sealed_list_one_active"
            ),
        ]
        ordering = ["study", "imported_at"]

    def __str__(self) -> str:
        return f"{self.study.code} list {self.list_sha256[:12]}"


class SealedRow(models.Model):
    """One row of a sealed randomization list (unblinded: holds the arm).

    ``subject`` is set when the row is allocated, by a conditional ``UPDATE`` that only succeeds
    on a free row; the one-to-one constraint makes a second allocation of a subject impossible.
    """

    sealed_list = models.ForeignKey(SealedList, on_delete=models.PROTECT, related_name="rows")
    stratum = models.CharField(max_length=40)
    seq = models.PositiveIntegerField()
    block = models.PositiveIntegerField()
    block_size = models.PositiveIntegerField()
    arm = models.CharField(max_length=40)
    subject = models.OneToOneField(
        Subject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    allocated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "randomization_sealed_row"
        constraints = [
            models.UniqueConstraint(
                fields=["sealed_list", "stratum", "seq"], name="sealed_row_slot_unique"
            ),
        ]
        ordering = ["sealed_list", "stratum", "seq"]

    def __str__(self) -> str:
        return f"{self.stratum} #{self.seq}"


class SealedKit(models.Model):
    """One kit of a sealed kit list: its number and (unblinded) arm."""

    sealed_list = models.ForeignKey(SealedList, on_delete=models.PROTECT, related_name="kits")
    kit_number = models.PositiveIntegerField()
    arm = models.CharField(max_length=40)

    class Meta:
        db_table = "randomization_sealed_kit"
        constraints = [
            models.UniqueConstraint(
                fields=["sealed_list", "kit_number"], name="sealed_kit_number_unique"
            ),
        ]
        ordering = ["sealed_list", "kit_number"]

    def __str__(self) -> str:
        return f"kit {self.kit_number}"


class Allocation(models.Model):
    """A subject's randomization, as the blinded world sees it: a number, never the arm."""

    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, related_name="allocation")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    sealed_list = models.ForeignKey(SealedList, on_delete=models.PROTECT, related_name="+")
    stratum = models.CharField(max_length=40)
    seq = models.PositiveIntegerField()
    randomization_number = models.CharField(max_length=48)
    d0_date = models.DateField(help_text="Day 0: randomization and first dosing.")
    randomized_at = models.DateTimeField()
    randomized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unblinded_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by the first emergency unblinding of the subject."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sealed_list", "stratum", "seq"], name="allocation_slot_unique"
            ),
        ]
        ordering = ["study", "stratum", "seq"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id}: {self.randomization_number}"


class KitStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    DISPENSED = "dispensed", _("Dispensed")
    RETURNED = "returned", _("Returned")
    DESTROYED = "destroyed", _("Destroyed")


class Kit(models.Model):
    """A kit in a site's pharmacy: received from the kit list, with its expiry (no arm)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    sealed_list = models.ForeignKey(SealedList, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="kits")
    number = models.PositiveIntegerField()
    lot = models.CharField(max_length=40, blank=True)
    expiry = models.DateField()
    status = models.CharField(max_length=16, choices=KitStatus.choices, default=KitStatus.AVAILABLE)
    received_at = models.DateTimeField()
    subject = models.ForeignKey(
        Subject, null=True, blank=True, on_delete=models.PROTECT, related_name="kits"
    )
    dispensation = models.ForeignKey(
        "Dispensation", null=True, blank=True, on_delete=models.PROTECT, related_name="kits"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="kit_number_unique"),
        ]
        ordering = ["site", "number"]

    def __str__(self) -> str:
        return f"kit {self.number}"


class KitEventKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    DISPENSED = "dispensed", _("Dispensed")
    RETURNED = "returned", _("Returned")
    DESTROYED = "destroyed", _("Destroyed")


class KitEvent(models.Model):
    """One change of a kit's status: the accountability log of the pharmacy."""

    kit = models.ForeignKey(Kit, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=16, choices=KitEventKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        Subject, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["kit", "at", "id"]

    def __str__(self) -> str:
        return f"kit {self.kit.number} {self.kind}"


class Dispensation(models.Model):
    """The kits handed out for one subject at one dosing visit (one per subject and visit)."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="dispensations")
    visit_code = models.CharField(max_length=40)
    units = models.PositiveSmallIntegerField()
    dispensed_on = models.DateField()
    dispensed_at = models.DateTimeField()
    dispensed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "visit_code"], name="dispensation_once_per_visit"
            ),
        ]
        ordering = ["subject", "dispensed_on", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id} {self.visit_code}: {self.units} unit(s)"


class InjectionSite(models.TextChoices):
    ABDOMEN_LEFT = "abdomen_left", _("Abdomen, left")
    ABDOMEN_RIGHT = "abdomen_right", _("Abdomen, right")
    THIGH_LEFT = "thigh_left", _("Thigh, left")
    THIGH_RIGHT = "thigh_right", _("Thigh, right")
    ARM_LEFT = "arm_left", _("Upper arm, left")
    ARM_RIGHT = "arm_right", _("Upper arm, right")


class Administration(models.Model):
    """One unit (syringe) of a dispensed kit given to the subject (``units_per_kit`` per kit)."""

    kit = models.ForeignKey(Kit, on_delete=models.PROTECT, related_name="administrations")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="administrations")
    visit_code = models.CharField(max_length=40)
    given_on = models.DateField()
    given_time = models.TimeField()
    injection_site = models.CharField(max_length=20, choices=InjectionSite.choices)
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["subject", "given_on", "given_time", "id"]

    def __str__(self) -> str:
        return f"{self.subject.subject_id} kit {self.kit.number} on {self.given_on}"


class Unblinding(models.Model):
    """An emergency unblinding of one subject by an investigator (each request is a row)."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="unblindings")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    at = models.DateTimeField()
    notified = models.JSONField(default=list, help_text="Addresses the notification went to.")

    class Meta:
        ordering = ["study", "at", "id"]

    def __str__(self) -> str:
        return f"unblinding of {self.subject.subject_id} at {self.at:%Y-%m-%d %H:%M}"
