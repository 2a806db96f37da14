"""Allocation: the next free row of the subject's stratum, claimed in one transaction.

:func:`randomize` checks the subject (not yet randomized, eligible, consented), then claims the
lowest free ``seq`` of the subject's stratum with a conditional ``UPDATE`` (``… WHERE pk = row
AND subject IS NULL``) and acts only when exactly one row changed; when another request won the
row it retries on the next one. A unique constraint on the slot backs this up. Concurrent
requests therefore never share a row and never skip one: on PostgreSQL the loser of a race
blocks on the winner's row lock and then sees the row taken; on SQLite the ``IMMEDIATE``
transactions queue.

In the same transaction the subject is marked randomized, the kits of the first dosing visit
are dispensed (when it is the randomization visit, D0 in NS-DUPI), the receivers of
:data:`~trialdesk.randomization.signals.subject_randomized` run (the visit schedule) and every
change is audited. The caller gets a randomization number and kit numbers: never the arm.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.audit.services import record
from trialdesk.protocol.definitions import study_definition
from trialdesk.screening import services as screening
from trialdesk.screening.models import Subject, SubjectStatus

from .errors import AllocationRefused, NotAllowed, SealError, StratumExhausted
from .models import Allocation, SealedList, SealedRow
from .sealing import active_list
from .signals import subject_randomized


@dataclass(frozen=True)
class Randomized:
    """What a blinded user learns from a randomization."""

    subject_id: str
    randomization_number: str
    d0_date: dt.date
    randomized_at: dt.datetime
    dispensed_visit: str | None
    kit_numbers: tuple[int, ...]


def randomization_number(stratum: str, seq: int) -> str:
    """The number printed in the subject's file: ``TLS-R007`` for the 7th slot of TLS."""
    return f"{stratum}-R{seq:03d}"


def stratum_of(subject: Subject) -> str:
    """The stratum a subject is allocated in (NS-DUPI stratifies by site)."""
    return subject.site.code


def refusal_reasons(subject: Subject) -> list[AllocationRefused]:
    """Every reason the subject cannot be randomized now (empty when they can).

    Checks, in order: already randomized, eligibility (latest verdict), valid consent, a sealed
    list with a free row in the subject's stratum.
    """
    reasons: list[AllocationRefused] = []
    existing = Allocation.objects.filter(subject=subject).first()
    if existing is not None or subject.status == SubjectStatus.RANDOMIZED:
        number = existing.randomization_number if existing else "?"
        reasons.append(
            AllocationRefused("subject", f"{subject.subject_id} is already randomized ({number})")
        )
        return reasons
    if not screening.is_eligible(subject):
        reasons.append(
            AllocationRefused(
                "eligibility",
                f"{subject.subject_id} is not eligible (status {subject.status}; the latest "
                "assessment must say eligible)",
            )
        )
    if not screening.has_valid_consent(subject):
        reasons.append(
            AllocationRefused("consent", f"{subject.subject_id} has no valid signed consent")
        )
    sealed = active_list(subject.study)
    if sealed is None:
        reasons.append(
            AllocationRefused(
                "list", f"study {subject.study.code!r} has no sealed randomization list"
            )
        )
    elif not _free_rows(sealed, subject).exists():
        reasons.append(_exhausted(sealed, subject))
    return reasons


def randomize(subject: Subject, *, by: Any, on: dt.date | None = None) -> Randomized:
    """Allocate the next free row of the subject's stratum; dispense the D0 kits.

    Parameters
    ----------
    subject : Subject
        A screened subject of a randomized study.
    by : User or None
        The investigator or coordinator at the subject's site (``None``: a system operation).
    on : date, optional
        Day 0 (randomization and first dosing); today by default, never in the future.

    Returns
    -------
    Randomized
        The randomization number and the kit numbers to dispense, never the arm.

    Raises
    ------
    AllocationRefused
        Already randomized, not eligible, no valid consent, no sealed list;
        :class:`StratumExhausted` when the stratum's rows are all allocated.
    NotAllowed
        ``by`` may not randomize at the subject's site.
    SupplyError
        The site holds too few kits of the subject's arm for the D0 dispensing (nothing is
        allocated then).
    """
    from .supply import dispense

    _check_may_randomize(by, subject)
    today = timezone.localdate()
    on = on or today
    if on > today:
        raise AllocationRefused("d0_date", f"{on.isoformat()} is in the future")
    reasons = refusal_reasons(subject)
    if reasons:
        raise reasons[0]
    given = subject
    with transaction.atomic():
        # Lock the subject row only (``of``): locking its site too would queue every
        # randomization of the site behind one another and hide the row claim below.
        subject = (
            Subject.objects.select_for_update(of=("self",))
            .select_related("site", "study")
            .get(pk=subject.pk)
        )
        reasons = refusal_reasons(subject)
        if reasons:
            raise reasons[0]
        sealed = active_list(subject.study)
        now = timezone.now()
        seq = _claim_next_row(sealed, subject, now)
        stratum = stratum_of(subject)
        allocation = Allocation.objects.create(
            subject=subject,
            study=subject.study,
            site=subject.site,
            sealed_list=sealed,
            stratum=stratum,
            seq=seq,
            randomization_number=randomization_number(stratum, seq),
            d0_date=on,
            randomized_at=now,
            randomized_by=by if getattr(by, "pk", None) else None,
        )
        if not SealedList.objects.filter(pk=sealed.pk, active=True).exists():
            raise SealError("list", "the sealed list was replaced meanwhile; try again")
        screening.set_randomized(subject, by=by)
        record(
            "randomization.allocate",
            user=by,
            entity=allocation,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "randomization_number": [None, allocation.randomization_number],
                "stratum": stratum,
                "seq": seq,
                "d0_date": on.isoformat(),
                "list_sha256": sealed.list_sha256,
            },
        )
        first_visit = _dosing_at_randomization(subject)
        kits: tuple[int, ...] = ()
        if first_visit is not None:
            dispensation = dispense(subject, first_visit, by=by, on=on)
            kits = tuple(dispensation.kits.order_by("number").values_list("number", flat=True))
        subject_randomized.send(sender=Allocation, allocation=allocation, by=by)
    given.status = subject.status
    return Randomized(
        subject_id=subject.subject_id,
        randomization_number=allocation.randomization_number,
        d0_date=on,
        randomized_at=allocation.randomized_at,
        dispensed_visit=first_visit,
        kit_numbers=kits,
    )


def _claim_next_row(sealed: SealedList, subject: Subject, now: dt.datetime) -> int:
    """Claim the lowest free row of the stratum; return its ``seq``."""
    free = _free_rows(sealed, subject).order_by("seq")
    while True:
        candidate = free.values_list("pk", "seq").first()
        if candidate is None:
            raise _exhausted(sealed, subject)
        pk, seq = candidate
        won = SealedRow.objects.filter(pk=pk, subject__isnull=True).update(
            subject=subject, allocated_at=now
        )
        if won == 1:
            return seq


def _free_rows(sealed: SealedList, subject: Subject) -> Any:
    return SealedRow.objects.filter(
        sealed_list=sealed, stratum=stratum_of(subject), subject__isnull=True
    )


def _exhausted(sealed: SealedList, subject: Subject) -> StratumExhausted:
    stratum = stratum_of(subject)
    total = sealed.rows_per_stratum.get(stratum, 0)
    return StratumExhausted(
        "stratum",
        f"{stratum}: all {total} rows of the sealed list are allocated; "
        f"{subject.subject_id} cannot be randomized",
    )


def _dosing_at_randomization(subject: Subject) -> str | None:
    definition = study_definition(subject.study)
    if definition.dosing is None:
        return None
    reference = definition.reference_visit.code
    return reference if reference in definition.dosing.units_per_visit else None


def _check_may_randomize(by: Any, subject: Subject) -> None:
    if by is None:
        return
    if not policy.may_enter_data(by, subject.site):
        raise NotAllowed(
            "site",
            f"{getattr(by, 'username', by)!r} may not randomize at {subject.site.code}",
        )
