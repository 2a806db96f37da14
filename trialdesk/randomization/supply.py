"""Drug supply: kits received per site, dispensed at dosing visits, given, returned, destroyed.

A site's pharmacy receives kits of the sealed kit list (each with its expiry). At each dosing
visit :func:`dispense` hands out the kits the study file's regimen asks for (NS-DUPI reading A:
2 units at D0, 1 at W2–W14; ``units_per_kit`` units in a kit), choosing available, unexpired
kits *of the subject's arm* at the subject's site, first-expiring first. The arm is compared
inside the database (:func:`~trialdesk.randomization.sealing.kits_of_subject_arm`) and never
loaded, and every kit is claimed with a conditional ``UPDATE`` so two dispensings never get the
same kit. Administrations (date, time, kit, injection site, given by) feed :func:`compliance`.

Every change is a :class:`~trialdesk.randomization.models.KitEvent` or another row, plus an
audit event, in one transaction. Messages and audit events name kit numbers, never arms.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.services import record
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Subject, SubjectStatus

from .errors import NotAllowed, SupplyError
from .models import (
    Administration,
    Allocation,
    Dispensation,
    InjectionSite,
    Kit,
    KitEvent,
    KitEventKind,
    KitStatus,
    SealedKit,
)
from .sealing import active_list, kits_of_subject_arm

#: Kits expiring within this many days are flagged on the stock page.
EXPIRY_NOTICE_DAYS = 30


@dataclass(frozen=True)
class Regimen:
    """The dosing regimen of a study file, as supply needs it."""

    units_per_visit: dict[str, int]
    units_per_kit: int
    low_stock_kits: int
    reading: str

    @property
    def dosing_visits(self) -> list[str]:
        return list(self.units_per_visit)

    @property
    def total_units(self) -> int:
        return sum(self.units_per_visit.values())

    def kits_at(self, visit_code: str) -> int:
        return math.ceil(self.units_per_visit[visit_code] / self.units_per_kit)


@dataclass(frozen=True)
class Stock:
    """A site's stock as every role may see it: counts by status, no arm."""

    site: str
    available: int
    expired: int
    expiring_soon: int
    dispensed: int
    returned: int
    destroyed: int
    low: bool


@dataclass(frozen=True)
class Compliance:
    """Dosing compliance of one subject, counted both ways (visits and units)."""

    visits_dosed: int
    dosing_visits: int
    units_given: int
    units_planned: int

    @property
    def by_visits(self) -> float:
        return self.visits_dosed / self.dosing_visits if self.dosing_visits else 0.0

    @property
    def by_units(self) -> float:
        return self.units_given / self.units_planned if self.units_planned else 0.0


def regimen(study: Study) -> Regimen:
    """The dosing regimen declared by the study file."""
    definition = study_definition(study)
    if definition.dosing is None:
        raise SupplyError("study", f"{study.code!r} declares no dosing regimen")
    randomization = definition.randomization
    return Regimen(
        units_per_visit=dict(definition.dosing.units_per_visit),
        units_per_kit=randomization.units_per_kit if randomization else 1,
        low_stock_kits=randomization.low_stock_kits if randomization else 0,
        reading=definition.dosing.reading,
    )


# --------------------------------------------------------------------------------------------
# Receiving


def receive_kits(
    site: Site,
    numbers: Iterable[int],
    *,
    expiry: dt.date,
    lot: str = "",
    by: Any,
) -> list[Kit]:
    """Record kits of the sealed kit list as received at ``site``.

    Raises
    ------
    SupplyError
        No sealed list, a number not on the kit list or already received, an expiry not in the
        future, or no kit at all.
    NotAllowed
        ``by`` is not the site's pharmacist (``None`` is a system operation).
    """
    _check_pharmacist(by, site)
    numbers = list(dict.fromkeys(int(n) for n in numbers))
    if not numbers:
        raise SupplyError("kits", "no kit number given")
    if expiry <= timezone.localdate():
        raise SupplyError("expiry", f"{expiry.isoformat()} is not in the future")
    sealed = active_list(site.study)
    if sealed is None:
        raise SupplyError("list", f"study {site.study.code!r} has no sealed kit list")
    known = set(
        SealedKit.objects.filter(sealed_list=sealed, kit_number__in=numbers).values_list(
            "kit_number", flat=True
        )
    )
    unknown = [n for n in numbers if n not in known]
    if unknown:
        raise SupplyError("kits", f"kit {unknown[0]} is not on the sealed kit list")
    with transaction.atomic():
        taken = list(
            Kit.objects.filter(study=site.study, number__in=numbers).values_list(
                "number", "site__code"
            )
        )
        if taken:
            number, where = taken[0]
            raise SupplyError("kits", f"kit {number} was already received at {where}")
        now = timezone.now()
        kits = [
            Kit.objects.create(
                study=site.study,
                sealed_list=sealed,
                site=site,
                number=number,
                lot=lot,
                expiry=expiry,
                received_at=now,
            )
            for number in numbers
        ]
        KitEvent.objects.bulk_create(
            KitEvent(kit=kit, kind=KitEventKind.RECEIVED, at=now, by=_user(by)) for kit in kits
        )
        record(
            "kit.receive",
            user=by,
            entity_type="randomization.kit",
            entity_id=",".join(str(n) for n in numbers[:20]) + ("…" if len(numbers) > 20 else ""),
            study=site.study.code,
            site=site.code,
            changes={"kits": numbers, "expiry": expiry.isoformat(), "lot": lot},
        )
    return kits


def kits_for_shipment(study: Study, per_arm: int) -> list[int]:
    """Kit numbers for a balanced shipment: ``per_arm`` not-yet-received kits of each arm.

    A system operation of the central supply (the arms are used, not returned): the result is a
    plain list of numbers in ascending order, which says nothing about the arms.
    """
    sealed = active_list(study)
    if sealed is None:
        raise SupplyError("list", f"study {study.code!r} has no sealed kit list")
    received = Kit.objects.filter(study=study).values("number")
    chosen: list[int] = []
    for arm in (
        SealedKit.objects.filter(sealed_list=sealed).values_list("arm", flat=True).distinct()
    ):
        free = (
            SealedKit.objects.filter(sealed_list=sealed, arm=arm)
            .exclude(kit_number__in=received)
            .order_by("kit_number")
            .values_list("kit_number", flat=True)[:per_arm]
        )
        numbers = list(free)
        if len(numbers) < per_arm:
            raise SupplyError(
                "per_arm",
                f"{per_arm} kits per arm asked, the kit list has only {len(numbers)} left",
            )
        chosen.extend(numbers)
    return sorted(chosen)


# --------------------------------------------------------------------------------------------
# Dispensing


def dispense(
    subject: Subject, visit_code: str, *, by: Any, on: dt.date | None = None
) -> Dispensation:
    """Dispense the kits of a dosing visit: kits of the subject's arm, nobody seeing the arm.

    Raises
    ------
    SupplyError
        Not randomized, withdrawn, not a dosing visit, already dispensed for this visit, a date
        in the future or before day 0, or too few kits of the subject's arm at the site (the
        message does not say which arm).
    NotAllowed
        ``by`` is not investigator, coordinator or pharmacist at the subject's site.
    """
    _check_site_staff(by, subject.site)
    plan = regimen(subject.study)
    if visit_code not in plan.units_per_visit:
        raise SupplyError(
            "visit", f"{visit_code!r} is not a dosing visit ({', '.join(plan.dosing_visits)})"
        )
    today = timezone.localdate()
    on = on or today
    allocation = Allocation.objects.filter(subject=subject).first()
    if allocation is None:
        raise SupplyError("subject", f"{subject.subject_id} is not randomized")
    if on > today or on < allocation.d0_date:
        raise SupplyError(
            "date", f"{on.isoformat()} is not between day 0 ({allocation.d0_date}) and today"
        )
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        if subject.status != SubjectStatus.RANDOMIZED:
            raise SupplyError(
                "subject", f"{subject.subject_id} is {subject.status}; no kit can be dispensed"
            )
        if Dispensation.objects.filter(subject=subject, visit_code=visit_code).exists():
            raise SupplyError(
                "visit", f"{subject.subject_id} already received the kits of {visit_code}"
            )
        now = timezone.now()
        dispensation = Dispensation.objects.create(
            subject=subject,
            visit_code=visit_code,
            units=plan.units_per_visit[visit_code],
            dispensed_on=on,
            dispensed_at=now,
            dispensed_by=_user(by),
        )
        numbers = [
            _claim_kit(subject, dispensation, on, now, by) for _ in range(plan.kits_at(visit_code))
        ]
        record(
            "kit.dispense",
            user=by,
            entity=dispensation,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "visit": visit_code,
                "kits": numbers,
                "units": dispensation.units,
                "dispensed_on": on.isoformat(),
            },
        )
    return dispensation


def _claim_kit(
    subject: Subject, dispensation: Dispensation, on: dt.date, now: dt.datetime, by: Any
) -> int:
    candidates = Kit.objects.filter(
        site_id=subject.site_id,
        status=KitStatus.AVAILABLE,
        expiry__gte=on,
        number__in=kits_of_subject_arm(subject),
    ).order_by("expiry", "number")
    while True:
        candidate = candidates.values_list("pk", "number").first()
        if candidate is None:
            raise SupplyError(
                "kits",
                f"no kit available at {subject.site.code} for {subject.subject_id}'s "
                f"{dispensation.visit_code}: the pharmacy must receive kits",
            )
        pk, number = candidate
        won = Kit.objects.filter(pk=pk, status=KitStatus.AVAILABLE).update(
            status=KitStatus.DISPENSED, subject=subject, dispensation=dispensation
        )
        if won == 1:
            KitEvent.objects.create(
                kit_id=pk, kind=KitEventKind.DISPENSED, at=now, by=_user(by), subject=subject
            )
            return number


# --------------------------------------------------------------------------------------------
# Administration, returns, destruction


def record_administration(
    subject: Subject,
    kit_number: int,
    *,
    given_on: dt.date,
    given_time: dt.time,
    injection_site: str,
    given_by: Any,
    by: Any,
) -> Administration:
    """Record one unit of a kit dispensed to the subject as given.

    Raises
    ------
    SupplyError
        The kit was not dispensed to this subject, all its units are recorded already, the
        injection site is unknown, the date is before the dispensing or in the future, or the
        person who gave it does not work at the site.
    """
    _check_site_staff(by, subject.site)
    if injection_site not in InjectionSite.values:
        raise SupplyError(
            "injection_site",
            f"{injection_site!r} is not one of {', '.join(InjectionSite.values)}",
        )
    if given_by is None or not policy.may_enter_data(given_by, subject.site):
        who = getattr(given_by, "username", given_by)
        raise SupplyError(
            "given_by", f"{who!r} is not investigator or coordinator at {subject.site.code}"
        )
    plan = regimen(subject.study)
    with transaction.atomic():
        kit = (
            Kit.objects.select_for_update(of=("self",))
            .select_related("dispensation")
            .filter(study=subject.study, number=kit_number, subject=subject)
            .first()
        )
        if kit is None or kit.status != KitStatus.DISPENSED:
            raise SupplyError("kit", f"kit {kit_number} is not dispensed to {subject.subject_id}")
        if kit.administrations.count() >= plan.units_per_kit:
            raise SupplyError("kit", f"kit {kit_number} has no unit left to give")
        if given_on < kit.dispensation.dispensed_on or given_on > timezone.localdate():
            raise SupplyError(
                "given_on",
                f"{given_on.isoformat()} is not between the dispensing "
                f"({kit.dispensation.dispensed_on}) and today",
            )
        administration = Administration.objects.create(
            kit=kit,
            subject=subject,
            visit_code=kit.dispensation.visit_code,
            given_on=given_on,
            given_time=given_time,
            injection_site=injection_site,
            given_by=given_by,
            recorded_at=timezone.now(),
            recorded_by=_user(by),
        )
        record(
            "kit.administer",
            user=by,
            entity=administration,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "kit": kit_number,
                "visit": administration.visit_code,
                "given": f"{given_on.isoformat()} {given_time.isoformat('minutes')}",
                "injection_site": injection_site,
                "given_by": given_by.username,
            },
        )
    return administration


def return_kit(site: Site, kit_number: int, *, reason: str, by: Any) -> Kit:
    """A dispensed kit comes back to the pharmacy with units unused."""
    _check_site_staff(by, site)
    return _change_status(
        site,
        kit_number,
        from_statuses={KitStatus.DISPENSED},
        to=KitStatus.RETURNED,
        kind=KitEventKind.RETURNED,
        reason=reason,
        by=by,
    )


def destroy_kit(site: Site, kit_number: int, *, reason: str, by: Any) -> Kit:
    """An available (expired, damaged) or returned kit is destroyed by the pharmacy."""
    _check_pharmacist(by, site)
    return _change_status(
        site,
        kit_number,
        from_statuses={KitStatus.AVAILABLE, KitStatus.RETURNED},
        to=KitStatus.DESTROYED,
        kind=KitEventKind.DESTROYED,
        reason=reason,
        by=by,
    )


def _change_status(
    site: Site,
    kit_number: int,
    *,
    from_statuses: set[str],
    to: str,
    kind: str,
    reason: str,
    by: Any,
) -> Kit:
    reason = (reason or "").strip()
    if not reason:
        raise SupplyError("reason", f"a reason is required to mark kit {kit_number} {to}")
    with transaction.atomic():
        kit = Kit.objects.select_for_update().filter(site=site, number=kit_number).first()
        if kit is None:
            raise SupplyError("kit", f"kit {kit_number} is not in the stock of {site.code}")
        if kit.status not in from_statuses:
            raise SupplyError("kit", f"kit {kit_number} is {kit.status}; it cannot be {to}")
        if (
            to == KitStatus.RETURNED
            and kit.administrations.count() >= regimen(site.study).units_per_kit
        ):
            raise SupplyError("kit", f"kit {kit_number} was given in full; nothing to return")
        old = kit.status
        Kit.objects.filter(pk=kit.pk, status=old).update(status=to)
        kit.status = to
        KitEvent.objects.create(
            kit=kit, kind=kind, at=timezone.now(), by=_user(by), subject=kit.subject, reason=reason
        )
        record(
            f"kit.{kind}",
            user=by,
            entity=kit,
            study=site.study.code,
            site=site.code,
            changes={"kit": kit_number, "status": [old, to]},
            reason=reason,
        )
    return kit


# --------------------------------------------------------------------------------------------
# Reads (no arm)


def stock(site: Site, today: dt.date | None = None) -> Stock:
    """Counts of the site's kits; ``low`` when any arm is below the study's warning level.

    ``low`` is computed per arm inside the database and only its yes/no leaves it, so the
    warning can be shown to blinded staff (who should ask the pharmacy to reorder).
    """
    today = today or timezone.localdate()
    kits = Kit.objects.filter(site=site)
    usable = kits.filter(status=KitStatus.AVAILABLE, expiry__gte=today)
    return Stock(
        site=site.code,
        available=usable.count(),
        expired=kits.filter(status=KitStatus.AVAILABLE, expiry__lt=today).count(),
        expiring_soon=usable.filter(
            expiry__lt=today + dt.timedelta(days=EXPIRY_NOTICE_DAYS)
        ).count(),
        dispensed=kits.filter(status=KitStatus.DISPENSED).count(),
        returned=kits.filter(status=KitStatus.RETURNED).count(),
        destroyed=kits.filter(status=KitStatus.DESTROYED).count(),
        low=_low(site, today),
    )


def _low(site: Site, today: dt.date) -> bool:
    sealed = active_list(site.study)
    if sealed is None:
        return False
    threshold = regimen(site.study).low_stock_kits
    usable = Kit.objects.filter(site=site, status=KitStatus.AVAILABLE, expiry__gte=today).values(
        "number"
    )
    for arm in SealedKit.objects.filter(sealed_list=sealed).values("arm").distinct():
        count = SealedKit.objects.filter(
            sealed_list=sealed, arm=arm["arm"], kit_number__in=usable
        ).count()
        if count < threshold:
            return True
    return False


def dispensations(subject: Subject) -> list[dict[str, Any]]:
    """The subject's dispensings with kit numbers and what was given from each kit (no arm)."""
    result = []
    for item in Dispensation.objects.filter(subject=subject).order_by("dispensed_on", "id"):
        kits = []
        for kit in item.kits.order_by("number"):
            given = list(kit.administrations.order_by("given_on", "given_time"))
            kits.append({"number": kit.number, "status": kit.status, "administrations": given})
        result.append({"dispensation": item, "kits": kits})
    return result


def compliance(subject: Subject) -> Compliance:
    """Visits with at least one unit given out of the dosing visits; units given out of planned."""
    plan = regimen(subject.study)
    given = Administration.objects.filter(subject=subject)
    visits = set(given.values_list("visit_code", flat=True)) & set(plan.dosing_visits)
    return Compliance(
        visits_dosed=len(visits),
        dosing_visits=len(plan.dosing_visits),
        units_given=given.count(),
        units_planned=plan.total_units,
    )


# --------------------------------------------------------------------------------------------
# Permissions


def _check_site_staff(by: Any, site: Site) -> None:
    if by is None:
        return
    roles = policy.roles(by, site.study, site) & {
        Role.INVESTIGATOR,
        Role.COORDINATOR,
        Role.PHARMACIST,
    }
    if not roles or not policy.may_see_site(by, site):
        raise NotAllowed(
            "site", f"{getattr(by, 'username', by)!r} may not handle kits at {site.code}"
        )


def _check_pharmacist(by: Any, site: Site) -> None:
    if by is None:
        return
    if Role.PHARMACIST not in policy.roles(by, site.study, site) or not policy.may_see_site(
        by, site
    ):
        raise NotAllowed(
            "site", f"{getattr(by, 'username', by)!r} is not the pharmacist of {site.code}"
        )


def _user(by: Any) -> Any:
    return by if getattr(by, "pk", None) else None
