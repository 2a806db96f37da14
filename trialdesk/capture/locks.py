"""Locks by the data manager: one form record, one subject's casebook, or a whole study.

A lock is a row; unlocking keeps it with its date, user and reason. While a lock is in force
every write path refuses (:func:`trialdesk.capture.records.check_unlocked`, called by saves,
queries, verification and signatures). Locking and unlocking are audited and refresh the status
of the records concerned.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.services import record as audit
from trialdesk.protocol.models import Study
from trialdesk.screening.models import Subject

from .models import FormRecord, Lock, LockScope
from .records import CaptureError, CaptureNotAllowed, refresh_status


def may_lock(user: Any, study: Study) -> bool:
    return Role.DATA_MANAGER in policy.roles(user, study)


def lock_record(record: FormRecord, *, by: Any, reason: str = "") -> Lock:
    return _lock(
        LockScope.FORM,
        record.subject.study,
        by=by,
        reason=reason,
        record=record,
        subject=record.subject,
    )


def lock_subject(subject: Subject, *, by: Any, reason: str = "") -> Lock:
    return _lock(LockScope.SUBJECT, subject.study, by=by, reason=reason, subject=subject)


def lock_study(study: Study, *, by: Any, reason: str = "") -> Lock:
    return _lock(LockScope.STUDY, study, by=by, reason=reason)


def unlock(lock: Lock, *, by: Any, reason: str) -> Lock:
    """Lift a lock, saying why; the row stays with its history."""
    if not may_lock(by, lock.study):
        raise CaptureNotAllowed("role", "only a data manager may unlock")
    reason = (reason or "").strip()
    if not reason:
        raise CaptureError("reason", "a reason is required to unlock")
    with transaction.atomic():
        lock = Lock.objects.select_for_update().get(pk=lock.pk)
        if lock.unlocked_at is not None:
            raise CaptureError("lock", f"lock #{lock.pk} is already lifted")
        lock.unlocked_at, lock.unlocked_by, lock.unlock_reason = timezone.now(), by, reason
        lock.save(update_fields=["unlocked_at", "unlocked_by", "unlock_reason"])
        _refresh(lock)
        _audit("lock.unlock", lock, by, reason, locked=[True, False])
    return lock


def active_lock(
    scope: str, *, study: Study, subject: Subject | None = None, record: FormRecord | None = None
) -> Lock | None:
    locks = Lock.objects.filter(scope=scope, study=study, unlocked_at__isnull=True)
    if scope == LockScope.SUBJECT:
        locks = locks.filter(subject=subject)
    if scope == LockScope.FORM:
        locks = locks.filter(record=record)
    return locks.first()


def _lock(
    scope: str,
    study: Study,
    *,
    by: Any,
    reason: str,
    record: FormRecord | None = None,
    subject: Subject | None = None,
) -> Lock:
    if not may_lock(by, study):
        raise CaptureNotAllowed("role", "only a data manager may lock")
    with transaction.atomic():
        if active_lock(scope, study=study, subject=subject, record=record) is not None:
            raise CaptureError("lock", f"this {scope} is already locked")
        lock = Lock.objects.create(
            scope=scope,
            study=study,
            subject=subject,
            record=record,
            reason=(reason or "").strip(),
            locked_by=by,
        )
        _refresh(lock)
        _audit("lock.lock", lock, by, lock.reason, locked=[False, True])
    return lock


def _records(lock: Lock) -> Any:
    if lock.scope == LockScope.FORM:
        return FormRecord.objects.filter(pk=lock.record_id)
    if lock.scope == LockScope.SUBJECT:
        return FormRecord.objects.filter(subject_id=lock.subject_id)
    return FormRecord.objects.filter(subject__study=lock.study)


def _refresh(lock: Lock) -> None:
    for record in _records(lock).select_related("subject"):
        refresh_status(record)


def _audit(action: str, lock: Lock, by: Any, reason: str, *, locked: list[bool]) -> None:
    audit(
        action,
        user=by,
        entity=lock,
        study=lock.study.code,
        site=lock.subject.site.code if lock.subject_id else "",
        changes={
            "scope": lock.scope,
            "subject_id": lock.subject.subject_id if lock.subject_id else None,
            "record": lock.record_id,
            "locked": locked,
        },
        reason=reason,
    )
