"""The visit schedule: planned dates and windows from day 0, visits done or missed, worklist.

When a subject is randomized (:data:`~trialdesk.randomization.signals.subject_randomized`, in the
randomization's transaction) :func:`plan_on_randomization` plans every visit of the study file:
``planned = D0 + day``, window ``[planned − window_before, planned + window_after]``. The day-0
visit is recorded done on the D0 date. A subject of an observational study (``ns-cohort``) has
no randomization: :func:`~trialdesk.capture.cohort.enrol` plans their visits from the enrolment
date, which is then their day 0, and they are followed while *eligible* (enrolled).

A visit done outside its window is accepted and records a
:class:`~trialdesk.capture.models.ProtocolDeviation`. A visit still planned after its window
closed is *overdue*; the site marks it *missed* with a reason. Withdrawal and loss to follow-up
end the schedule (:func:`discontinue`). Every change is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.audit.services import record
from trialdesk.protocol.definitions import study_definition
from trialdesk.protocol.models import Site, Study, StudyKind
from trialdesk.randomization.models import Allocation
from trialdesk.screening.models import Subject, SubjectStatus

from .models import (
    DeviationKind,
    Discontinuation,
    ExitKind,
    ProtocolDeviation,
    Visit,
    VisitStatus,
)

#: The worklist shows visits whose window opens within this many days.
UPCOMING_DAYS = 7

OBSERVATIONAL = StudyKind.OBSERVATIONAL
#: Subjects whose visits are followed: randomized in a trial, enrolled in an observational study.
_FOLLOWED = Q(subject__status=SubjectStatus.RANDOMIZED) | Q(
    subject__study__kind=OBSERVATIONAL, subject__status=SubjectStatus.ELIGIBLE
)


class ScheduleError(ValueError):
    """A schedule change that cannot be made; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ScheduleNotAllowed(ScheduleError):
    """The acting user may not change this subject's schedule."""


class VisitState:
    """Where a visit stands on a given day (a display state, derived, never stored)."""

    UPCOMING = "upcoming"
    DUE = "due"
    OVERDUE = "overdue"
    DONE = "done"
    DONE_OUT_OF_WINDOW = "done_out_of_window"
    MISSED = "missed"


@dataclass(frozen=True)
class WorkItem:
    """One line of a site worklist."""

    state: str
    subject_id: str
    site: str
    visit: Visit


def visit_state(visit: Visit, today: dt.date) -> str:
    """The display state of a visit on ``today``."""
    if visit.status == VisitStatus.DONE:
        return VisitState.DONE_OUT_OF_WINDOW if visit.out_of_window else VisitState.DONE
    if visit.status == VisitStatus.MISSED:
        return VisitState.MISSED
    if today > visit.window_end:
        return VisitState.OVERDUE
    if today >= visit.window_start:
        return VisitState.DUE
    return VisitState.UPCOMING


# --------------------------------------------------------------------------------------------
# Planning


def plan_on_randomization(sender: Any, *, allocation: Allocation, by: Any, **kwargs: Any) -> None:
    """Receiver of ``subject_randomized``: plan the visits of the new subject."""
    plan_visits(allocation.subject, allocation.d0_date, by=by)


def plan_visits(subject: Subject, d0: dt.date, *, by: Any) -> list[Visit]:
    """Create the subject's visits from the study file, the day-0 visit done on ``d0``."""
    definition = study_definition(subject.study)
    with transaction.atomic():
        if Visit.objects.filter(subject=subject).exists():
            raise ScheduleError("subject", f"{subject.subject_id} already has a visit schedule")
        visits = []
        for order, declared in enumerate(definition.visits, start=1):
            start, end = declared.window(d0)
            done = declared.day == 0
            visits.append(
                Visit.objects.create(
                    subject=subject,
                    code=declared.code,
                    order=order,
                    day=declared.day,
                    planned_date=declared.planned_date(d0),
                    window_start=start,
                    window_end=end,
                    status=VisitStatus.DONE if done else VisitStatus.PLANNED,
                    done_on=d0 if done else None,
                    updated_by=_user(by),
                )
            )
        record(
            "schedule.plan",
            user=by,
            entity=subject,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "d0_date": d0.isoformat(),
                "visits": {v.code: v.planned_date.isoformat() for v in visits},
            },
        )
    return visits


# --------------------------------------------------------------------------------------------
# Visits done, missed; discontinuation


def record_visit(subject: Subject, code: str, done_on: dt.date, *, by: Any) -> Visit:
    """Record a visit as done on ``done_on``; outside its window it also records a deviation."""
    _check_may_enter(by, subject.site)
    with transaction.atomic():
        visit = _open_visit(subject, code)
        if done_on > timezone.localdate():
            raise ScheduleError("done_on", f"{done_on.isoformat()} is in the future")
        d0 = day0(subject)
        if done_on < d0:
            raise ScheduleError("done_on", f"{done_on.isoformat()} is before day 0 ({d0})")
        outside = not (visit.window_start <= done_on <= visit.window_end)
        visit.status = VisitStatus.DONE
        visit.done_on = done_on
        visit.out_of_window = outside
        visit.updated_by = _user(by)
        visit.save(update_fields=["status", "done_on", "out_of_window", "updated_by", "updated_at"])
        record(
            "visit.done",
            user=by,
            entity=visit,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "visit": code,
                "status": [VisitStatus.PLANNED, VisitStatus.DONE],
                "done_on": [None, done_on.isoformat()],
                "out_of_window": outside,
            },
        )
        if outside:
            _deviation(visit, done_on, by=by)
    return visit


def mark_missed(subject: Subject, code: str, *, reason: str, by: Any) -> Visit:
    """Record that a planned visit did not take place, with the reason."""
    _check_may_enter(by, subject.site)
    reason = (reason or "").strip()
    if not reason:
        raise ScheduleError("reason", f"a reason is required to mark {code} missed")
    with transaction.atomic():
        visit = _open_visit(subject, code)
        visit.status = VisitStatus.MISSED
        visit.missed_reason = reason
        visit.updated_by = _user(by)
        visit.save(update_fields=["status", "missed_reason", "updated_by", "updated_at"])
        record(
            "visit.missed",
            user=by,
            entity=visit,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "visit": code,
                "status": [VisitStatus.PLANNED, VisitStatus.MISSED],
            },
            reason=reason,
        )
    return visit


def discontinue(
    subject: Subject, kind: str, *, on: dt.date, reason: str, by: Any
) -> Discontinuation:
    """Record a followed subject's withdrawal or loss to follow-up (reason and date).

    The subject's status becomes ``withdrawn`` or ``lost_to_follow_up``: no more kits are
    dispensed, and their planned visits leave the worklist.
    """
    _check_may_enter(by, subject.site)
    if kind not in ExitKind.values:
        raise ScheduleError("kind", f"{kind!r} is not one of {', '.join(ExitKind.values)}")
    reason = (reason or "").strip()
    if not reason:
        raise ScheduleError("reason", "a reason is required")
    if on > timezone.localdate():
        raise ScheduleError("on", f"{on.isoformat()} is in the future")
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        _check_followed(subject)
        old_status = subject.status
        d0 = day0(subject)
        if on < d0:
            raise ScheduleError("on", f"{on.isoformat()} is before day 0 ({d0})")
        exit_ = Discontinuation.objects.create(
            subject=subject, kind=kind, on=on, reason=reason, recorded_by=_user(by)
        )
        status = (
            SubjectStatus.WITHDRAWN
            if kind == ExitKind.WITHDRAWN
            else SubjectStatus.LOST_TO_FOLLOW_UP
        )
        Subject.objects.filter(pk=subject.pk).update(status=status)
        record(
            "subject.discontinue",
            user=by,
            entity=exit_,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "kind": kind,
                "on": on.isoformat(),
                "status": [old_status, status],
            },
            reason=reason,
        )
    subject.status = status
    return exit_


# --------------------------------------------------------------------------------------------
# Reads


def visits_of(subject: Subject) -> list[Visit]:
    return list(Visit.objects.filter(subject=subject).order_by("order"))


def worklist(
    user: Any, study: Study, site: Site | None = None, today: dt.date | None = None
) -> list[WorkItem]:
    """Visits to act on at the sites the user may see: overdue, due, upcoming within a week,
    and missed. Subjects who left the study are not listed."""
    today = today or timezone.localdate()
    sites = policy.visible_sites(user, study)
    if site is not None:
        sites = sites.filter(pk=site.pk)
    visits = (
        Visit.objects.filter(subject__study=study, subject__site__in=sites)
        .filter(_FOLLOWED)
        .exclude(status=VisitStatus.DONE)
        .filter(window_start__lte=today + dt.timedelta(days=UPCOMING_DAYS))
        .select_related("subject", "subject__site")
        .order_by("window_end", "subject__subject_id", "order")
    )
    order = {VisitState.OVERDUE: 0, VisitState.DUE: 1, VisitState.UPCOMING: 2, VisitState.MISSED: 3}
    items = [
        WorkItem(visit_state(v, today), v.subject.subject_id, v.subject.site.code, v)
        for v in visits
    ]
    return sorted(items, key=lambda item: order[item.state])


def deviations_of(subject: Subject) -> list[ProtocolDeviation]:
    return list(ProtocolDeviation.objects.filter(subject=subject).select_related("visit"))


def day0(subject: Subject) -> dt.date:
    """The subject's day 0: the randomization's D0 date, or for a subject of an observational
    study their enrolment date (the planned date of the day-0 visit planned from it).

    Raises
    ------
    ScheduleError
        The subject has neither (not randomized, or no schedule planned).
    """
    allocation = Allocation.objects.filter(subject=subject).only("d0_date").first()
    if allocation is not None:
        return allocation.d0_date
    if subject.study.kind == OBSERVATIONAL:
        visit = Visit.objects.filter(subject=subject, day=0).only("planned_date").first()
        if visit is not None:
            return visit.planned_date
        raise ScheduleError("subject", f"{subject.subject_id} has no visit schedule planned")
    raise ScheduleError("subject", f"{subject.subject_id} is {subject.status}, not randomized")


def is_followed(subject: Subject) -> bool:
    """Is the subject in follow-up (randomized, or enrolled in an observational study)?"""
    if subject.status == SubjectStatus.RANDOMIZED:
        return True
    return subject.study.kind == OBSERVATIONAL and subject.status == SubjectStatus.ELIGIBLE


def _check_followed(subject: Subject) -> None:
    if not is_followed(subject):
        expected = "enrolled" if subject.study.kind == OBSERVATIONAL else "randomized"
        raise ScheduleError("subject", f"{subject.subject_id} is {subject.status}, not {expected}")


def _open_visit(subject: Subject, code: str) -> Visit:
    subject = Subject.objects.select_for_update().get(pk=subject.pk)
    _check_followed(subject)
    visit = Visit.objects.select_for_update().filter(subject=subject, code=code).first()
    if visit is None:
        raise ScheduleError("visit", f"{code!r} is not a visit of {subject.subject_id}")
    if visit.status != VisitStatus.PLANNED:
        raise ScheduleError("visit", f"{subject.subject_id} {code} is already {visit.status}")
    return visit


def _deviation(visit: Visit, done_on: dt.date, *, by: Any) -> ProtocolDeviation:
    days = (
        (done_on - visit.window_end).days
        if done_on > visit.window_end
        else (done_on - visit.window_start).days
    )
    deviation = ProtocolDeviation.objects.create(
        subject=visit.subject,
        visit=visit,
        kind=DeviationKind.VISIT_OUT_OF_WINDOW,
        description=(
            f"{visit.code} done on {done_on.isoformat()}, {abs(days)} day(s) "
            f"{'after' if days > 0 else 'before'} its window "
            f"{visit.window_start.isoformat()}–{visit.window_end.isoformat()}"
        ),
        occurred_on=done_on,
        recorded_by=_user(by),
    )
    record(
        "deviation.record",
        user=by,
        entity=deviation,
        study=visit.subject.study.code,
        site=visit.subject.site.code,
        changes={
            "subject_id": visit.subject.subject_id,
            "kind": deviation.kind,
            "visit": visit.code,
            "description": deviation.description,
        },
    )
    return deviation


def _check_may_enter(by: Any, site: Site) -> None:
    if by is None:
        return
    if not policy.may_enter_data(by, site):
        raise ScheduleNotAllowed(
            "site", f"{getattr(by, 'username', by)!r} may not record visits at {site.code}"
        )


def _user(by: Any) -> Any:
    return by if getattr(by, "pk", None) else None
