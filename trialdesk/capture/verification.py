"""Source data verification (SDV) by the monitor, per form or per item.

Verifying a record marks every item verified and the record *verified*; verifying items one by
one marks the record verified once every entered item is. A later change of an item withdraws
its verification (and the record's): see :func:`trialdesk.capture.records.save_form`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.services import record as audit

from .models import FormRecord, ItemValue, RecordStatus
from .records import CaptureError, CaptureNotAllowed, check_unlocked, refresh_status


def may_verify(user: Any, record: FormRecord) -> bool:
    site = record.subject.site
    return Role.MONITOR in policy.roles(user, site.study, site) and policy.may_see_site(user, site)


def verify_record(record: FormRecord, *, by: Any) -> FormRecord:
    """The monitor verifies a whole form against the source documents."""
    return _verify(record, None, by=by)


def verify_item(record: FormRecord, item: str, *, by: Any) -> FormRecord:
    """The monitor verifies one item; the form is verified when every entered item is."""
    return _verify(record, item, by=by)


def _verify(record: FormRecord, item: str | None, *, by: Any) -> FormRecord:
    if not may_verify(by, record):
        raise CaptureNotAllowed("role", "only the site's monitor may verify source data")
    with transaction.atomic():
        record = (
            FormRecord.objects.select_for_update().select_related("subject__site").get(pk=record.pk)
        )
        check_unlocked(record)
        if record.status == RecordStatus.IN_PROGRESS:
            raise CaptureError(
                "record", f"{record} is in progress; only a complete form is verified"
            )
        now = timezone.now()
        rows = ItemValue.objects.filter(record=record)
        if item is not None:
            rows = rows.filter(item=item)
            if not rows.exists():
                raise CaptureError("item", f"{item!r} has no value in {record}")
        rows.filter(verified_at__isnull=True).update(verified_at=now, verified_by=by)
        all_done = not ItemValue.objects.filter(record=record, verified_at__isnull=True).exists()
        old = record.status
        if all_done and record.verified_at is None:
            record.verified_at, record.verified_by = now, by
            record.save(update_fields=["verified_at", "verified_by"])
        new = refresh_status(record)
        audit(
            "sdv.item" if item else "sdv.form",
            user=by,
            entity=record,
            study=record.subject.study.code,
            site=record.subject.site.code,
            changes={
                "subject_id": record.subject.subject_id,
                "form": record.form,
                "visit": record.visit_code,
                "item": item,
                "status": [old, new],
            },
        )
    return record
