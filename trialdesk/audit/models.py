"""Audit events and the chain head."""

from __future__ import annotations

from django.conf import settings
from django.db import models

GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """One change: who, what, when, why, where, and with which version of trialdesk.

    ``payload`` is the canonical JSON of every other field (see :func:`event_body`); ``hash`` is
    SHA-256 of ``prev_hash`` followed by that payload. The unique constraint on ``prev_hash``
    makes a fork of the chain impossible: two events can never follow the same predecessor.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(help_text="Server time, UTC.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    entity_type = models.CharField(max_length=64, blank=True)
    entity_id = models.CharField(max_length=128, blank=True)
    study = models.CharField(max_length=64, blank=True, db_index=True)
    site = models.CharField(max_length=16, blank=True)
    changes = models.TextField(help_text="Canonical JSON: {field: [old, new]} or details.")
    reason = models.TextField(blank=True)
    app_version = models.CharField(max_length=32)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["entity_type", "entity_id"], name="audit_event_entity_idx")]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.entity_type}:{self.entity_id} by {self.username}"


class AuditHead(models.Model):
    """The last hash of the chain, one row, locked by every writer (``SELECT ... FOR UPDATE``).

    Writers queue on this row, so the chain stays linear under concurrency; ``verify`` also
    compares it with the last event, which reveals a truncated tail.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"audit head {self.last_hash[:12]} ({self.count} events)"
