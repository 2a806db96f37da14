"""``/api/v1/studies/{study}/randomization/``: randomize, dispense, administer, unblind, kits.

The same services and policy as the pages. A study the caller has no role in, and a subject or
site the caller may not see, are 404 (as if they did not exist); an operation the caller's role
does not allow is 403; a refused randomization (already randomized, not eligible, no consent,
stratum exhausted) is 409; invalid input is 422 with a message naming the field and the value.
Answers never hold an arm, except ``arm`` for the users the policy allows to see it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError

from trialdesk.accounts import policy
from trialdesk.protocol import ProtocolError
from trialdesk.protocol.definitions import StudyDefinitionUnavailable
from trialdesk.protocol.models import Site, Study
from trialdesk.screening import services as screening
from trialdesk.screening.api import study_or_404, subject_or_404
from trialdesk.screening.models import Subject

from . import allocation, supply, unblinding
from .errors import AllocationRefused, NotAllowed, RandomizationError
from .sealing import stock_by_arm_for
from .summary import treatment_summary

router = Router(tags=["randomization"])


class RandomizeIn(Schema):
    d0_date: dt.date | None = None


class RandomizedOut(Schema):
    subject_id: str
    randomization_number: str
    d0_date: dt.date
    randomized_at: dt.datetime
    dispensed_visit: str | None
    kit_numbers: list[int]


class CheckOut(Schema):
    field: str
    message: str


class ChecksOut(Schema):
    subject_id: str
    may_randomize: bool
    refusals: list[CheckOut]


class AdministrationOut(Schema):
    given_on: dt.date
    given_time: dt.time
    injection_site: str
    given_by: str | None


class KitOut(Schema):
    number: int
    status: str
    administrations: list[AdministrationOut]


class DispensationOut(Schema):
    visit: str
    units: int
    dispensed_on: dt.date
    dispensed_by: str | None
    kits: list[KitOut]


class DosingVisitOut(Schema):
    visit: str
    units: int
    dispensed: bool


class ComplianceOut(Schema):
    visits_dosed: int
    dosing_visits: int
    units_given: int
    units_planned: int
    by_visits: float
    by_units: float
    reading: str


class ArmOut(Schema):
    code: str
    name: str


class TreatmentOut(Schema):
    subject_id: str
    site: str
    status: str
    randomized: bool
    randomization_number: str | None
    d0_date: dt.date | None
    randomized_at: dt.datetime | None
    randomized_by: str | None
    unblinded: bool
    dosing_visits: list[DosingVisitOut] = []
    dispensations: list[DispensationOut]
    compliance: ComplianceOut | None
    arm: ArmOut | None


class DispenseIn(Schema):
    visit: str
    on: dt.date | None = None


class AdministerIn(Schema):
    kit: int
    given_on: dt.date
    given_time: dt.time
    injection_site: str
    given_by: str | None = None


class UnblindIn(Schema):
    reason: str
    password: str


class UnblindOut(Schema):
    subject_id: str
    arm: ArmOut
    at: dt.datetime
    notified: list[str]


class ReceiveIn(Schema):
    kits: list[int]
    expiry: dt.date
    lot: str = ""


class KitChangeIn(Schema):
    reason: str


class KitStatusOut(Schema):
    number: int
    status: str


class StockOut(Schema):
    site: str
    available: int
    expired: int
    expiring_soon: int
    dispensed: int
    returned: int
    destroyed: int
    low: bool
    available_by_arm: dict[str, int] | None


class SiteCountOut(Schema):
    events: int
    subjects: int


class UnblindingEventOut(Schema):
    subject_id: str
    site: str
    at: dt.datetime
    requested_by: str
    reason: str


class UnblindingsOut(Schema):
    events: int
    subjects: int
    by_site: dict[str, SiteCountOut]
    visible_events: list[UnblindingEventOut]


# --------------------------------------------------------------------------------------------


def _site(request: HttpRequest, study: Study, code: str) -> Site:
    site = policy.visible_sites(request.user, study).filter(code=code).first()
    if site is None:
        raise HttpError(404, f"site: {code!r} not found")
    return site


def _refused(error: Exception) -> HttpError:
    if isinstance(error, NotAllowed):
        return HttpError(403, str(error))
    if isinstance(error, AllocationRefused):
        return HttpError(409, str(error))
    if isinstance(error, StudyDefinitionUnavailable | ProtocolError):
        return HttpError(409, f"study: {error}")
    return HttpError(422, str(error))


_FAILURES = (RandomizationError, StudyDefinitionUnavailable, ProtocolError)


# --------------------------------------------------------------------------------------------


@router.get("/subjects/{subject_id}", response=TreatmentOut, summary="A subject's treatment")
def subject_treatment(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    found = study_or_404(request, study)
    try:
        return treatment_summary(request.user, subject_or_404(request, found, subject_id))
    except _FAILURES as error:
        raise _refused(error) from None


@router.get(
    "/subjects/{subject_id}/checks", response=ChecksOut, summary="May this subject be randomized?"
)
def randomization_checks(request: HttpRequest, study: Path[str], subject_id: str) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    refusals = allocation.refusal_reasons(subject)
    return {
        "subject_id": subject.subject_id,
        "may_randomize": not refusals,
        "refusals": [{"field": r.field, "message": r.message} for r in refusals],
    }


@router.post(
    "/subjects/{subject_id}/randomize",
    response={201: RandomizedOut},
    summary="Randomize: a number and the D0 kits, never the arm",
)
def randomize(request: HttpRequest, study: Path[str], subject_id: str, payload: RandomizeIn) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    try:
        result = allocation.randomize(subject, by=request.user, on=payload.d0_date)
    except _FAILURES as error:
        raise _refused(error) from None
    return Status(
        201,
        {
            "subject_id": result.subject_id,
            "randomization_number": result.randomization_number,
            "d0_date": result.d0_date,
            "randomized_at": result.randomized_at,
            "dispensed_visit": result.dispensed_visit,
            "kit_numbers": list(result.kit_numbers),
        },
    )


@router.post(
    "/subjects/{subject_id}/dispense",
    response={201: DispensationOut},
    summary="Dispense the kits of a dosing visit",
)
def dispense(request: HttpRequest, study: Path[str], subject_id: str, payload: DispenseIn) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    try:
        supply.dispense(subject, payload.visit, by=request.user, on=payload.on)
        summary = treatment_summary(request.user, subject)
    except _FAILURES as error:
        raise _refused(error) from None
    return Status(201, next(d for d in summary["dispensations"] if d["visit"] == payload.visit))


@router.post(
    "/subjects/{subject_id}/administrations",
    response={201: TreatmentOut},
    summary="Record one unit of a dispensed kit as given",
)
def administer(
    request: HttpRequest, study: Path[str], subject_id: str, payload: AdministerIn
) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    given_by = request.user
    if payload.given_by is not None:
        given_by = next((u for u in _site_staff(subject) if u.username == payload.given_by), None)
        if given_by is None:
            raise HttpError(
                422,
                f"given_by: {payload.given_by!r} is not investigator or coordinator at "
                f"{subject.site.code}",
            )
    try:
        supply.record_administration(
            subject,
            payload.kit,
            given_on=payload.given_on,
            given_time=payload.given_time,
            injection_site=payload.injection_site,
            given_by=given_by,
            by=request.user,
        )
        return Status(201, treatment_summary(request.user, subject))
    except _FAILURES as error:
        raise _refused(error) from None


@router.post(
    "/subjects/{subject_id}/unblind",
    response={201: UnblindOut},
    summary="Emergency unblinding by an investigator (password re-entered)",
)
def unblind(request: HttpRequest, study: Path[str], subject_id: str, payload: UnblindIn) -> Any:
    subject = subject_or_404(request, study_or_404(request, study), subject_id)
    try:
        result = unblinding.unblind(
            subject, by=request.user, reason=payload.reason, password=payload.password
        )
    except _FAILURES as error:
        raise _refused(error) from None
    return Status(
        201,
        {
            "subject_id": subject.subject_id,
            "arm": {"code": result.arm.code, "name": result.arm.name(_language(request))},
            "at": result.unblinding.at,
            "notified": list(result.notified),
        },
    )


@router.get("/unblindings", response=UnblindingsOut, summary="Unblinding counts (for the DSMB)")
def unblindings(request: HttpRequest, study: Path[str]) -> Any:
    found = study_or_404(request, study)
    counts = unblinding.unblinding_counts(found)
    counts["visible_events"] = [
        {
            "subject_id": u.subject.subject_id,
            "site": u.site.code,
            "at": u.at,
            "requested_by": u.requested_by.username,
            "reason": u.reason,
        }
        for u in unblinding.unblindings_for(request.user, found)
    ]
    return counts


@router.get("/sites/{site}/stock", response=StockOut, summary="A site's kit stock")
def stock(request: HttpRequest, study: Path[str], site: str) -> Any:
    found = study_or_404(request, study)
    site_row = _site(request, found, site)
    try:
        summary = supply.stock(site_row)
    except _FAILURES as error:
        raise _refused(error) from None
    result = dict(summary.__dict__)
    result["available_by_arm"] = None
    if policy.may_see_allocation(request.user, found, site_row):
        result["available_by_arm"] = stock_by_arm_for(request.user, site_row)
    return result


@router.post(
    "/sites/{site}/kits",
    response={201: list[KitStatusOut]},
    summary="Receive kits of the sealed kit list (pharmacist)",
)
def receive(request: HttpRequest, study: Path[str], site: str, payload: ReceiveIn) -> Any:
    site_row = _site(request, study_or_404(request, study), site)
    try:
        kits = supply.receive_kits(
            site_row, payload.kits, expiry=payload.expiry, lot=payload.lot, by=request.user
        )
    except _FAILURES as error:
        raise _refused(error) from None
    return Status(201, [{"number": k.number, "status": k.status} for k in kits])


@router.post(
    "/sites/{site}/kits/{number}/return", response=KitStatusOut, summary="A kit comes back"
)
def return_kit(
    request: HttpRequest, study: Path[str], site: str, number: int, payload: KitChangeIn
) -> Any:
    site_row = _site(request, study_or_404(request, study), site)
    try:
        kit = supply.return_kit(site_row, number, reason=payload.reason, by=request.user)
    except _FAILURES as error:
        raise _refused(error) from None
    return {"number": kit.number, "status": kit.status}


@router.post("/sites/{site}/kits/{number}/destroy", response=KitStatusOut, summary="Destroy a kit")
def destroy_kit(
    request: HttpRequest, study: Path[str], site: str, number: int, payload: KitChangeIn
) -> Any:
    site_row = _site(request, study_or_404(request, study), site)
    try:
        kit = supply.destroy_kit(site_row, number, reason=payload.reason, by=request.user)
    except _FAILURES as error:
        raise _refused(error) from None
    return {"number": kit.number, "status": kit.status}


def _site_staff(subject: Subject) -> list[Any]:
    return screening.consent_takers(subject.site)


def _language(request: HttpRequest) -> str:
    return getattr(request, "LANGUAGE_CODE", "en") or "en"
