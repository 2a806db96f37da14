"""Queries: questions about an item, raised by a monitor or data manager, answered by the site.

Life: *open* (raised by a person, or by a soft edit check at save) → *answered* (by the site's
investigator or coordinator) → *closed* by whoever raised it (a data manager or the site's monitor
for the system's queries), or re-opened by them. Every step is a :class:`QueryMessage` row and an
audit event. A query cannot be raised on a locked record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.services import record as audit
from trialdesk.protocol.models import Study

from .models import FormRecord, Query, QueryMessage, QueryStatus
from .records import CaptureError, CaptureNotAllowed, check_unlocked

#: Age bands of open queries on the data-management page, in days: (label, lowest age).
AGE_BANDS = (("0-7", 0), ("8-30", 8), (">30", 31))

REVIEWER_ROLES = frozenset({Role.MONITOR, Role.DATA_MANAGER})


def may_raise(user: Any, record: FormRecord) -> bool:
    """Monitors (at the record's site) and data managers raise, close and re-open queries."""
    site = record.subject.site
    return policy.may_see_site(user, site) and bool(
        policy.roles(user, site.study, site) & REVIEWER_ROLES
    )


def raise_query(record: FormRecord, item: str, text: str, *, by: Any) -> Query:
    """Raise a query on one item (or the whole record when ``item`` is empty)."""
    if not may_raise(by, record):
        raise CaptureNotAllowed("role", "only a monitor or a data manager may raise a query")
    text = (text or "").strip()
    if not text:
        raise CaptureError("text", "a query needs a text")
    if item and not record.values.filter(item=item).exists():
        _check_item_declared(record, item)
    with transaction.atomic():
        check_unlocked(record)
        query = Query.objects.create(record=record, item=item, text=text, raised_by=by)
        _step(query, "raise", text, by, status=(None, QueryStatus.OPEN))
    return query


def answer_query(query: Query, text: str, *, by: Any) -> Query:
    """The site answers an open query (the data change itself is a save with its reason)."""
    if not policy.may_enter_data(by, query.record.subject.site):
        raise CaptureNotAllowed("role", "only the site's investigator or coordinator may answer")
    return _move(query, "answer", text, by, allowed=(QueryStatus.OPEN,), to=QueryStatus.ANSWERED)


def close_query(query: Query, text: str = "", *, by: Any) -> Query:
    """The raiser closes a query (a system query: any monitor of the site or data manager)."""
    _check_raiser(query, by)
    return _move(
        query,
        "close",
        text,
        by,
        allowed=(QueryStatus.OPEN, QueryStatus.ANSWERED),
        to=QueryStatus.CLOSED,
    )


def reopen_query(query: Query, text: str, *, by: Any) -> Query:
    """The raiser re-opens an answered or closed query, saying why."""
    _check_raiser(query, by)
    if not (text or "").strip():
        raise CaptureError("text", "say why the query is re-opened")
    return _move(
        query,
        "reopen",
        text,
        by,
        allowed=(QueryStatus.ANSWERED, QueryStatus.CLOSED),
        to=QueryStatus.OPEN,
    )


def _check_raiser(query: Query, by: Any) -> None:
    if not may_raise(by, query.record):
        raise CaptureNotAllowed("role", "only a monitor or a data manager may close or re-open")
    if query.raised_by_id is not None and query.raised_by_id != getattr(by, "pk", None):
        raise CaptureNotAllowed(
            "role", f"only {query.raised_by.username} who raised it may do this"
        )


def _move(
    query: Query, action: str, text: str, by: Any, *, allowed: tuple[str, ...], to: str
) -> Query:
    text = (text or "").strip()
    if action == "answer" and not text:
        raise CaptureError("text", "an answer needs a text")
    with transaction.atomic():
        query = Query.objects.select_for_update().select_related("record__subject").get(pk=query.pk)
        check_unlocked(query.record)
        if query.status not in allowed:
            raise CaptureError("status", f"query #{query.pk} is {query.status}; cannot {action}")
        old = query.status
        query.status = to
        query.save(update_fields=["status", "updated_at"])
        _step(query, action, text, by, status=(old, to))
    return query


def _step(query: Query, action: str, text: str, by: Any, *, status: tuple[str | None, str]) -> None:
    QueryMessage.objects.create(
        query=query, action=action, text=text, by=by if getattr(by, "pk", None) else None
    )
    subject = query.record.subject
    audit(
        f"query.{action}",
        user=by,
        entity=query,
        study=subject.study.code,
        site=subject.site.code,
        changes={
            "subject_id": subject.subject_id,
            "record": query.record_id,
            "item": query.item,
            "status": list(status),
        },
        reason=text,
    )


def _check_item_declared(record: FormRecord, item: str) -> None:
    from trialdesk.protocol.definitions import version_definition

    form = version_definition(record.study_version).form(record.form)
    if item not in {declared.code for declared in form.items}:
        raise CaptureError("item", f"{item!r} is not an item of form {record.form}")


# --------------------------------------------------------------------------------------------
# Reads


def visible_queries(user: Any, study: Study) -> Any:
    """Queries of the sites the user may see."""
    return Query.objects.filter(
        record__subject__study=study, record__subject__site__in=policy.visible_sites(user, study)
    ).select_related("record__subject__site")


@dataclass
class SiteCounts:
    """Query counts of one site: by status, and open ones by age band."""

    site: str
    open: int = 0
    answered: int = 0
    closed: int = 0
    ages: dict[str, int] | None = None
    oldest_days: int | None = None


def counts_by_site(user: Any, study: Study, today: dt.date | None = None) -> list[SiteCounts]:
    """Per visible site: open, answered and closed queries, and open ones by age in days."""
    today = today or timezone.localdate()
    counts = {
        site.code: SiteCounts(site.code, ages={label: 0 for label, _ in AGE_BANDS})
        for site in policy.visible_sites(user, study).order_by("code")
    }
    for query in visible_queries(user, study):
        row = counts[query.record.subject.site.code]
        setattr(row, query.status, getattr(row, query.status) + 1)
        if query.status == QueryStatus.CLOSED:
            continue
        age = (today - timezone.localtime(query.raised_at).date()).days
        band = [label for label, lowest in AGE_BANDS if age >= lowest][-1]
        row.ages[band] += 1  # type: ignore[index]
        row.oldest_days = max(row.oldest_days or 0, age)
    return list(counts.values())
