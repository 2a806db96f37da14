"""What pages and the API show about a subject's treatment, built once for both.

The blinded summary is built from operational tables only (no arm in them). The arm is added
by :func:`treatment_summary` only when :func:`~trialdesk.accounts.policy.may_see_subject_allocation`
says yes, through :func:`~trialdesk.randomization.sealing.arm_for`; for everybody else the code
path never touches the sealed tables.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation

from trialdesk.accounts import policy
from trialdesk.screening.models import Subject

from .models import Allocation, Dispensation
from .sealing import arm_for
from .supply import compliance, regimen


def treatment_summary(user: Any, subject: Subject) -> dict[str, Any]:
    """Allocation number, dispensings with kits and administrations, compliance, and the arm
    for a user allowed to see it (``arm`` is ``None`` otherwise)."""
    allocation = Allocation.objects.filter(subject=subject).select_related("randomized_by").first()
    summary: dict[str, Any] = {
        "subject_id": subject.subject_id,
        "site": subject.site.code,
        "status": subject.status,
        "randomized": allocation is not None,
        "randomization_number": allocation.randomization_number if allocation else None,
        "d0_date": allocation.d0_date if allocation else None,
        "randomized_at": allocation.randomized_at if allocation else None,
        "randomized_by": _username(allocation.randomized_by) if allocation else None,
        "unblinded": bool(allocation and allocation.unblinded_at),
        "dispensations": [],
        "compliance": None,
        "arm": None,
    }
    if allocation is None:
        return summary
    plan = regimen(subject.study)
    summary["dispensations"] = [_dispensation(d) for d in _dispensations(subject)]
    summary["dosing_visits"] = [
        {"visit": code, "units": units, "dispensed": code in _dispensed_visits(summary)}
        for code, units in plan.units_per_visit.items()
    ]
    result = compliance(subject)
    summary["compliance"] = {
        "visits_dosed": result.visits_dosed,
        "dosing_visits": result.dosing_visits,
        "units_given": result.units_given,
        "units_planned": result.units_planned,
        "by_visits": round(result.by_visits, 4),
        "by_units": round(result.by_units, 4),
        "reading": plan.reading,
    }
    if policy.may_see_subject_allocation(user, subject):
        arm = arm_for(user, subject)
        summary["arm"] = {"code": arm.code, "name": arm.name(translation.get_language() or "en")}
    return summary


def _dispensations(subject: Subject) -> list[Dispensation]:
    return list(
        Dispensation.objects.filter(subject=subject)
        .select_related("dispensed_by")
        .prefetch_related("kits__administrations__given_by")
        .order_by("dispensed_on", "id")
    )


def _dispensation(item: Dispensation) -> dict[str, Any]:
    return {
        "visit": item.visit_code,
        "units": item.units,
        "dispensed_on": item.dispensed_on,
        "dispensed_by": _username(item.dispensed_by),
        "kits": [
            {
                "number": kit.number,
                "status": kit.status,
                "status_label": str(kit.get_status_display()),
                "administrations": [
                    {
                        "given_on": a.given_on,
                        "given_time": a.given_time,
                        "injection_site": a.injection_site,
                        "injection_site_label": str(a.get_injection_site_display()),
                        "given_by": _username(a.given_by),
                    }
                    for a in sorted(
                        kit.administrations.all(), key=lambda a: (a.given_on, a.given_time, a.pk)
                    )
                ],
            }
            for kit in sorted(item.kits.all(), key=lambda k: k.number)
        ],
    }


def _dispensed_visits(summary: dict[str, Any]) -> set[str]:
    return {d["visit"] for d in summary["dispensations"]}


def _username(user: Any) -> str | None:
    return user.username if user is not None else None
