"""Writing and verifying the audit trail."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

import trialdesk
from trialdesk.lib.hashing import canonical_json, sha256_hex

from .models import GENESIS_HASH, AuditEvent, AuditHead


class AuditError(Exception):
    """The audit trail could not be written; the change it was to record is rolled back."""


def event_body(event: AuditEvent) -> dict[str, Any]:
    """The hashed content of an event: every field except the two hashes."""
    return {
        "seq": event.id,
        "at": event.at,
        "user_id": event.user_id,
        "username": event.username,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "study": event.study,
        "site": event.site,
        "changes": json.loads(event.changes),
        "reason": event.reason,
        "app_version": event.app_version,
    }


def chain_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash followed by the canonical JSON of the body."""
    return sha256_hex(prev_hash + canonical_json(body))


def record(
    action: str,
    *,
    user: Any = None,
    entity: Any = None,
    entity_type: str = "",
    entity_id: str | int = "",
    study: str = "",
    site: str = "",
    changes: Mapping[str, Any] | None = None,
    reason: str = "",
    username: str = "",
) -> AuditEvent:
    """Append one event to the audit trail, inside the caller's transaction.

    ``entity`` (a model instance) fills ``entity_type`` and ``entity_id``. ``changes`` maps a
    field to ``[old, new]`` (or holds the details of an action). ``user`` is the acting user
    (``None`` for the system or an anonymous attempt, then ``username`` says who tried).
    """
    if not connection.in_atomic_block:
        raise AuditError(f"audit event {action!r} must be recorded inside the change's transaction")
    if entity is not None:
        entity_type = entity_type or entity._meta.label_lower
        entity_id = entity_id or entity.pk
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        head = AuditHead.objects.create(pk=1)
        head = AuditHead.objects.select_for_update().get(pk=1)
    event = AuditEvent(
        id=head.last_id + 1,
        at=timezone.now(),
        user=user if getattr(user, "pk", None) else None,
        username=(getattr(user, "username", "") or username)[:150],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        study=study,
        site=site,
        changes=canonical_json(dict(changes or {})),
        reason=reason,
        app_version=trialdesk.__version__,
        prev_hash=head.last_hash,
    )
    event.hash = chain_hash(event.prev_hash, event_body(event))
    event.save(force_insert=True)
    AuditHead.objects.filter(pk=1).update(
        last_id=event.id, last_hash=event.hash, count=head.count + 1
    )
    return event


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`verify`."""

    intact: bool
    count: int
    head_hash: str
    broken_id: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.intact:
            return f"intact: {self.count} events, head {self.head_hash}"
        return f"BROKEN at event #{self.broken_id}: {self.problem} ({self.count} events read)"


def verify(chunk_size: int = 2000) -> Verdict:
    """Recompute the whole chain and report the first broken event, or that it is intact."""
    expected_prev = GENESIS_HASH
    count = 0
    with transaction.atomic():
        for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
            count += 1
            if event.id != count:
                return Verdict(
                    False, count, expected_prev, event.id, f"sequence gap: expected #{count}"
                )
            if event.prev_hash != expected_prev:
                return Verdict(
                    False,
                    count,
                    expected_prev,
                    event.id,
                    "previous-hash link does not match the event before it",
                )
            try:
                recomputed = chain_hash(event.prev_hash, event_body(event))
            except (ValueError, TypeError) as exc:
                return Verdict(False, count, expected_prev, event.id, f"unreadable: {exc}")
            if recomputed != event.hash:
                return Verdict(
                    False,
                    count,
                    expected_prev,
                    event.id,
                    "content does not match its hash (the row was altered)",
                )
            expected_prev = event.hash
        head = AuditHead.objects.filter(pk=1).first()
    if head is not None and (head.last_hash != expected_prev or head.count != count):
        return Verdict(
            False,
            count,
            expected_prev,
            count + 1,
            f"chain head says {head.count} events ending {head.last_hash[:12]}: "
            "events are missing at the end",
        )
    return Verdict(True, count, expected_prev)
