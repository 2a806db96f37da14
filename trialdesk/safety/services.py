"""Deriving the safety rows from the form records, and the safety actions of the site.

:func:`on_form_saved` is connected to :data:`trialdesk.capture.signals.form_saved` and runs in
the save's transaction: an exception here rolls the form save back, and every row written is
audited in the same transaction. By form:

``AE`` (adverse events)
    One :class:`~trialdesk.safety.models.AdverseEvent` per record (:func:`sync_adverse_event`).
    A first save as serious starts a :class:`~trialdesk.safety.models.SaeReport` clock
    (due 24 hours later) and e-mails the sponsor's safety contact after the commit.
``INFECT_LOG`` (skin infection log)
    One :class:`~trialdesk.safety.models.SkinInfection` per record, linked to exactly one adverse
    event (:func:`sync_skin_infection`): an AE-form event of the subject that is a skin infection
    starting when the infection did, else a new event known from the log only, which the AE form
    adopts when the site records it there.
any form with ``lab_test`` groups (the safety laboratory form)
    One :class:`~trialdesk.safety.models.LabResult` per test (:func:`sync_lab_results`): value
    and unit as reported, range (the form's limits, else the site's
    :class:`~trialdesk.safety.models.ReferenceRange`), standard units, flag, and CTCAE grade
    against the subject's D0 value. A grade ≥ 3 raises a :class:`~trialdesk.safety.models.LabAlert`
    e-mailed to the site's investigators after the commit.

Values are read from the stored items (JSON: dates as ISO text, partial dates as text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from trialdesk.accounts import policy
from trialdesk.accounts.models import Role
from trialdesk.audit.services import record as audit
from trialdesk.capture.models import FormRecord, ValueState
from trialdesk.protocol.definitions import version_definition
from trialdesk.protocol.models import Site, Study
from trialdesk.protocol.schema import Form, ItemGroup
from trialdesk.screening.models import EligibilityAssessment, Subject

from . import ctcae, notifications
from .aesi import suggest_aesi
from .models import (
    AdverseEvent,
    AeOrigin,
    Flag,
    LabAlert,
    LabResult,
    RangeSource,
    ReferenceRange,
    SaeReport,
    SkinInfection,
)
from .partial_dates import PartialDate, PartialDateError, parse_partial_date
from .units import UnitError, convert

#: The form whose records are adverse events, and the skin infection log.
AE_FORM = "AE"
INFECTION_FORM = "INFECT_LOG"
#: The AESI code of skin infections (code list ``AESI``).
SKIN_INFECTION = "skin_infection"
#: Seriousness criteria items of the AE form, in the order they are listed.
SERIOUSNESS_CRITERIA = (
    "sae_death",
    "sae_life_threatening",
    "sae_hospitalisation",
    "sae_disability",
    "sae_congenital_anomaly",
    "sae_medically_important",
)
#: The SAE reporting deadline.
SAE_DEADLINE = dt.timedelta(hours=24)
#: Lowest CTCAE grade that raises a laboratory alert.
ALERT_GRADE = 3


class SafetyError(ValueError):
    """A safety action that cannot be done; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SafetyNotAllowed(SafetyError):
    """The acting user's role does not allow this action here."""


# --------------------------------------------------------------------------------------------
# The signal receiver


def on_form_saved(sender: Any, record: FormRecord, by: Any = None, **kwargs: Any) -> None:
    """Derive the safety rows of a saved form record (connected in the app's ``ready``)."""
    definition = version_definition(record.study_version)
    if record.form == AE_FORM:
        sync_adverse_event(record, by=by)
    elif record.form == INFECTION_FORM:
        sync_skin_infection(record, by=by)
    else:
        form = definition.form(record.form)
        if any(group.lab_test for group in form.item_groups):
            sync_lab_results(record, form, definition.reference_visit.code, by=by)


def stored_values(record: FormRecord) -> dict[str, Any]:
    """The record's stored values by item (``None`` for empty, not done or unknown)."""
    return {
        row.item: row.value if row.state == ValueState.VALUE else None
        for row in record.values.all()
    }


def _partial(value: Any, field: str) -> PartialDate | None:
    if value in (None, ""):
        return None
    try:
        return parse_partial_date(value, field)
    except PartialDateError:
        return None


def _audit_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {
        key: [before.get(key), value] for key, value in after.items() if before.get(key) != value
    }


def _snapshot(instance: Any, fields: list[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(instance, name)) for name in fields}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Adverse events

_AE_FIELDS = [
    "term",
    "start",
    "end",
    "ongoing",
    "serious",
    "seriousness_criteria",
    "severity",
    "ctcae_grade",
    "relationship",
    "action",
    "outcome",
    "aesi",
    "aesi_category",
    "aesi_suggested",
    "visit_code",
    "origin",
]


def _set_dates(event: AdverseEvent, which: str, value: PartialDate | None) -> None:
    setattr(event, which, str(value) if value else "")
    setattr(event, f"{which}_earliest", value.earliest() if value else None)
    setattr(event, f"{which}_latest", value.latest() if value else None)


def _fill_from_ae_form(event: AdverseEvent, record: FormRecord, values: Mapping[str, Any]) -> None:
    event.record = record
    event.origin = AeOrigin.AE_FORM
    event.term = (values.get("ae_term") or "").strip()[:200]
    _set_dates(event, "start", _partial(values.get("ae_start_date"), "ae_start_date"))
    _set_dates(event, "end", _partial(values.get("ae_end_date"), "ae_end_date"))
    event.ongoing = values.get("ae_ongoing")
    event.seriousness_criteria = [code for code in SERIOUSNESS_CRITERIA if values.get(code)]
    event.serious = bool(values.get("ae_serious"))
    event.severity = values.get("ae_severity") or ""
    event.ctcae_grade = values.get("ae_ctcae_grade")
    event.relationship = values.get("ae_relationship") or ""
    event.action = values.get("ae_action") or ""
    event.outcome = values.get("ae_outcome") or ""
    event.aesi = values.get("ae_aesi")
    event.aesi_category = values.get("ae_aesi_category") or ""
    event.aesi_suggested = suggest_aesi(event.term).category or ""
    event.visit_code = record.visit_code


def is_skin_infection(event: AdverseEvent) -> bool:
    """Whether the event is a skin infection: by the investigator's AESI category, or by its term.

    This decides the link to the skin infection log, not whether the event counts as an AESI.
    """
    return SKIN_INFECTION in (event.aesi_category, event.aesi_suggested)


def _best_match(candidates: list[AdverseEvent], when: PartialDate | None) -> AdverseEvent | None:
    """The candidate whose start may be ``when``: the same text first, then the oldest."""
    if when is None:
        return None
    fitting = [
        event
        for event in candidates
        if (start := _partial(event.start, "start")) is not None and start.overlaps(when)
    ]
    fitting.sort(key=lambda event: (event.start != str(when), event.pk))
    return fitting[0] if fitting else None


def sync_adverse_event(record: FormRecord, *, by: Any) -> AdverseEvent:
    """Create or update the adverse event of an AE form record; start or stop its SAE clock."""
    subject = record.subject
    values = stored_values(record)
    event = AdverseEvent.objects.select_for_update().filter(record=record).first()
    created = event is None
    adopted = False
    if event is None:
        event = AdverseEvent(study=subject.study, site=subject.site, subject=subject)
    before = {} if created else _snapshot(event, _AE_FIELDS)
    _fill_from_ae_form(event, record, values)
    if created and is_skin_infection(event):
        logged_only = list(
            AdverseEvent.objects.select_for_update().filter(
                subject=subject, record__isnull=True, origin=AeOrigin.INFECTION_LOG
            )
        )
        found = _best_match(logged_only, _partial(event.start, "start"))
        if found is not None:
            before = _snapshot(found, _AE_FIELDS)
            _fill_from_ae_form(found, record, values)
            event, created, adopted = found, False, True
    event.save()
    changes = _audit_changes(before, _snapshot(event, _AE_FIELDS))
    if created or changes:
        audit(
            "safety.ae.create" if created else "safety.ae.change",
            user=by,
            entity=event,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "record": record.pk,
                "adopted_from_infection_log": adopted,
                **changes,
            },
        )
    _sync_sae_clock(event, by=by)
    return event


def _sync_sae_clock(event: AdverseEvent, *, by: Any) -> None:
    report = SaeReport.objects.select_for_update().filter(adverse_event=event).first()
    now = timezone.now()
    study, site = event.study.code, event.site.code
    if event.serious and report is None:
        recipients = notifications.safety_contacts()
        report = SaeReport.objects.create(
            adverse_event=event,
            site=event.site,
            clock_started_at=now,
            due_at=now + SAE_DEADLINE,
            started_by=by if getattr(by, "pk", None) else None,
            notified_to=recipients,
        )
        audit(
            "safety.sae.clock_started",
            user=by,
            entity=report,
            study=study,
            site=site,
            changes={
                "subject_id": event.subject.subject_id,
                "term": event.term,
                "criteria": event.seriousness_criteria,
                "due_at": report.due_at.isoformat(),
                "notified": recipients,
            },
        )
        transaction.on_commit(lambda: notifications.send_sae_notice(report, recipients))
    elif event.serious and report.withdrawn_at is not None:
        report.withdrawn_at = None
        report.save(update_fields=["withdrawn_at"])
        audit("safety.sae.reinstated", user=by, entity=report, study=study, site=site)
    elif not event.serious and report is not None and report.withdrawn_at is None:
        report.withdrawn_at = now
        report.save(update_fields=["withdrawn_at"])
        audit(
            "safety.sae.withdrawn",
            user=by,
            entity=report,
            study=study,
            site=site,
            changes={"serious": [True, False]},
            reason="the adverse event was corrected to non-serious",
        )


# --------------------------------------------------------------------------------------------
# Skin infections


def sync_skin_infection(record: FormRecord, *, by: Any) -> SkinInfection:
    """The skin infection of an infection-log record, linked to exactly one adverse event."""
    subject = record.subject
    values = stored_values(record)
    kind = values.get("infection_type") or ""
    onset = _partial(values.get("infection_onset_date"), "infection_onset_date")
    infection = SkinInfection.objects.select_for_update().filter(record=record).first()
    if infection is not None:
        infection.infection_type = kind
        infection.onset = str(onset) if onset else ""
        infection.save()
        event = infection.adverse_event
        if event.origin == AeOrigin.INFECTION_LOG and event.record_id is None:
            _fill_from_log(event, kind, onset)
            event.save()
        return infection
    event = _ae_for_infection(subject, onset)
    linked = event is not None
    if event is None:
        event = AdverseEvent(
            study=subject.study,
            site=subject.site,
            subject=subject,
            origin=AeOrigin.INFECTION_LOG,
            visit_code=record.visit_code,
        )
        _fill_from_log(event, kind, onset)
        event.save()
    infection = SkinInfection.objects.create(
        subject=subject,
        record=record,
        infection_type=kind,
        onset=str(onset) if onset else "",
        adverse_event=event,
    )
    audit(
        "safety.infection.link",
        user=by,
        entity=infection,
        study=subject.study.code,
        site=subject.site.code,
        changes={
            "subject_id": subject.subject_id,
            "record": record.pk,
            "adverse_event": event.pk,
            "linked_to_ae_form": linked,
            "term": event.term,
        },
    )
    return infection


def _fill_from_log(event: AdverseEvent, kind: str, onset: PartialDate | None) -> None:
    event.term = f"Skin infection ({kind})" if kind else "Skin infection"
    event.aesi_suggested = SKIN_INFECTION
    _set_dates(event, "start", onset)


def _ae_for_infection(subject: Subject, onset: PartialDate | None) -> AdverseEvent | None:
    candidates = [
        event
        for event in AdverseEvent.objects.select_for_update(of=("self",)).filter(
            subject=subject, record__isnull=False, skin_infection__isnull=True
        )
        if is_skin_infection(event)
    ]
    return _best_match(candidates, onset)


# --------------------------------------------------------------------------------------------
# Laboratory results


def _group_items(group: ItemGroup) -> dict[str, str]:
    """``{"value": "alt_value", "unit": ..., "lln": ..., "uln": ...}`` of a lab group."""
    found = {}
    for item in group.items:
        for part in ("value", "unit", "lln", "uln"):
            if item.code.endswith(f"_{part}"):
                found[part] = item.code
    return found


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def subject_sex_and_birth(subject: Subject) -> tuple[str, dt.date | None]:
    """The subject's sex and birth date from their latest eligibility assessment."""
    assessment = (
        EligibilityAssessment.objects.filter(subject=subject)
        .order_by("-assessed_at", "-id")
        .first()
    )
    data = assessment.data if assessment else {}
    try:
        birth = dt.date.fromisoformat(data.get("birth_date") or "")
    except ValueError:
        birth = None
    return (data.get("sex") or ""), birth


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def find_reference_range(
    site: Site, lab_name: str, test: str, on: dt.date, *, sex: str = "", age: int | None = None
) -> ReferenceRange | None:
    """The site laboratory's range of ``test`` valid ``on`` that fits the subject, if any.

    Among the ranges valid on that day (the latest ``valid_from`` not after it), one for the
    subject's sex beats one for any sex, and one with age bounds that hold beats one without.
    """
    rows = ReferenceRange.objects.filter(
        site=site, lab_name__iexact=lab_name.strip(), test=test, valid_from__lte=on
    ).filter(Q(sex="") | Q(sex=sex))
    fitting = [
        row
        for row in rows
        if (row.age_min is None or (age is not None and age >= row.age_min))
        and (row.age_max is None or (age is not None and age < row.age_max))
    ]
    if not fitting:
        return None
    return max(
        fitting,
        key=lambda r: (
            r.valid_from,
            r.sex != "",
            r.age_min is not None or r.age_max is not None,
            r.pk,
        ),
    )


def flag_of(value: Decimal | None, lln: Decimal | None, uln: Decimal | None) -> str:
    """``L`` below the LLN, ``H`` above the ULN, ``N`` within, blank without limits."""
    if value is None or (lln is None and uln is None):
        return Flag.UNKNOWN
    if lln is not None and value < lln:
        return Flag.LOW
    if uln is not None and value > uln:
        return Flag.HIGH
    return Flag.NORMAL


_LAB_FIELDS = ["value", "unit", "lln", "uln", "value_std", "flag", "baseline", "grade"]


def sync_lab_results(
    record: FormRecord, form: Form, baseline_visit: str, *, by: Any
) -> list[LabResult]:
    """The lab results of a laboratory form record, graded; regrade later visits after D0."""
    subject = record.subject
    values = stored_values(record)
    sampled_at = _sampled_at(values.get("lab_sampled_at"))
    lab_name = (values.get("lab_name") or "").strip()
    sex, birth = subject_sex_and_birth(subject)
    on = timezone.localtime(sampled_at).date() if sampled_at else timezone.localdate()
    is_baseline = record.visit_code == baseline_visit
    results, changed = [], {}
    for group in form.item_groups:
        if not group.lab_test:
            continue
        codes = _group_items(group)
        result = LabResult.objects.filter(record=record, test=group.lab_test).first()
        value = _decimal(values.get(codes.get("value", "")))
        if result is None and value is None:
            continue
        if result is None:
            result = LabResult(
                study=subject.study, site=subject.site, subject=subject, record=record
            )
        before = _snapshot(result, _LAB_FIELDS) if result.pk else {}
        result.test = group.lab_test
        result.visit_code = record.visit_code
        result.is_baseline = is_baseline
        result.sampled_at = sampled_at
        result.lab_name = lab_name
        result.value = value
        result.unit = values.get(codes.get("unit", "")) or ""
        lln = _decimal(values.get(codes.get("lln", "")))
        uln = _decimal(values.get(codes.get("uln", "")))
        _set_range(result, lln, uln, on, sex=sex, age=_age(birth, on))
        _standardize(result)
        result.baseline = result.value_std if is_baseline else None
        if not is_baseline:
            result.baseline = _baseline_of(subject, result.test, baseline_visit)
        _grade(result)
        result.save()
        after = _snapshot(result, _LAB_FIELDS)
        if diff := _audit_changes(before, after):
            changed[result.test] = diff
        results.append(result)
        _raise_alert(result, by=by)
    if changed:
        audit(
            "safety.lab.derive",
            user=by,
            entity=record,
            entity_type="capture.formrecord",
            study=subject.study.code,
            site=subject.site.code,
            changes={"subject_id": subject.subject_id, "visit": record.visit_code, **changed},
        )
    if is_baseline:
        for result in results:
            regrade_after_baseline(subject, result.test, result.value_std, by=by)
    return results


def _sampled_at(raw: Any) -> dt.datetime | None:
    if not raw:
        return None
    moment = raw if isinstance(raw, dt.datetime) else parse_datetime(str(raw))
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _set_range(
    result: LabResult,
    lln: Decimal | None,
    uln: Decimal | None,
    on: dt.date,
    *,
    sex: str,
    age: int | None,
) -> None:
    result.reference_range = None
    if lln is not None or uln is not None:
        result.lln, result.uln, result.range_source = lln, uln, RangeSource.FORM
        return
    found = find_reference_range(result.site, result.lab_name, result.test, on, sex=sex, age=age)
    if found is None:
        result.lln = result.uln = None
        result.range_source = RangeSource.NONE
        return
    result.lln, result.uln = found.lln, found.uln
    result.range_source, result.reference_range = RangeSource.REFERENCE, found


def _standardize(result: LabResult) -> None:
    result.value_std = result.lln_std = result.uln_std = None
    result.standard_unit = ""
    result.grade_note = ""
    if result.value is None:
        return
    try:
        converted = convert(result.test, result.value, result.unit)
        limits_unit = (
            result.reference_range.unit if result.reference_range is not None else result.unit
        )
        limits = convert(result.test, 0, limits_unit, lln=result.lln, uln=result.uln)
    except UnitError as error:
        result.grade_note = str(error)[:200]
        return
    result.standard_unit = converted.unit
    result.value_std = converted.value
    result.lln_std, result.uln_std = limits.lln, limits.uln


def _baseline_of(subject: Subject, test: str, baseline_visit: str) -> Decimal | None:
    row = (
        LabResult.objects.filter(subject=subject, test=test, visit_code=baseline_visit)
        .exclude(value_std=None)
        .first()
    )
    return row.value_std if row else None


def _grade(result: LabResult) -> None:
    result.flag = flag_of(result.value_std, result.lln_std, result.uln_std)
    result.grade = None
    if result.value_std is None or result.test not in ctcae.TESTS:
        return
    try:
        result.grade = ctcae.grade(
            result.test,
            result.value_std,
            lln=result.lln_std,
            uln=result.uln_std,
            baseline=result.baseline,
        )
    except ctcae.GradingError as error:
        result.grade_note = str(error)[:200]
        return
    if result.grade is None:
        result.grade_note = "not gradable from these numbers (limits or baseline missing)"


def regrade_after_baseline(
    subject: Subject, test: str, baseline: Decimal | None, *, by: Any
) -> None:
    """Regrade the subject's later results of ``test`` against a new or changed D0 value."""
    for result in LabResult.objects.filter(subject=subject, test=test, is_baseline=False):
        if result.baseline == baseline:
            continue
        old = result.grade
        result.baseline = baseline
        _grade(result)
        result.save()
        if old != result.grade:
            audit(
                "safety.lab.regrade",
                user=by,
                entity=result,
                study=subject.study.code,
                site=subject.site.code,
                changes={
                    "subject_id": subject.subject_id,
                    "visit": result.visit_code,
                    "test": test,
                    "baseline": _jsonable(baseline),
                    "grade": [old, result.grade],
                },
                reason="the D0 value changed",
            )
        _raise_alert(result, by=by)


def _raise_alert(result: LabResult, *, by: Any) -> None:
    if result.grade is None or result.grade < ALERT_GRADE:
        return
    if LabAlert.objects.filter(lab_result=result, grade=result.grade).exists():
        return
    recipients = notifications.site_investigators(result.site)
    alert = LabAlert.objects.create(
        lab_result=result,
        site=result.site,
        grade=result.grade,
        raised_at=timezone.now(),
        notified_to=recipients,
    )
    audit(
        "safety.lab.alert",
        user=by,
        entity=alert,
        study=result.study.code,
        site=result.site.code,
        changes={
            "subject_id": result.subject.subject_id,
            "visit": result.visit_code,
            "test": result.test,
            "value_std": _jsonable(result.value_std),
            "unit": result.standard_unit,
            "grade": result.grade,
            "notified": recipients,
        },
    )
    transaction.on_commit(lambda: notifications.send_lab_alert(alert, recipients))


# --------------------------------------------------------------------------------------------
# Reading (for the pages and the API: always through the access policy)


def adverse_events_of(subject: Subject) -> QuerySet[AdverseEvent]:
    return AdverseEvent.objects.filter(subject=subject).select_related("sae_report")


def lab_results_of(subject: Subject) -> QuerySet[LabResult]:
    return LabResult.objects.filter(subject=subject).order_by("sampled_at", "visit_code", "test")


def _sites(user: Any, study: Study, site: Site | None) -> QuerySet[Site]:
    sites = policy.visible_sites(user, study)
    return sites.filter(pk=site.pk) if site is not None else sites


def sae_clocks(
    user: Any, study: Study, site: Site | None = None, *, open_only: bool = True
) -> QuerySet[SaeReport]:
    """SAE clocks at the sites the user may see, soonest due first."""
    rows = SaeReport.objects.filter(
        adverse_event__study=study, site__in=_sites(user, study, site)
    ).select_related("adverse_event", "adverse_event__subject", "site")
    if open_only:
        rows = rows.filter(reported_at__isnull=True, withdrawn_at__isnull=True)
    return rows.order_by("due_at", "id")


def lab_alerts(
    user: Any, study: Study, site: Site | None = None, *, open_only: bool = True
) -> QuerySet[LabAlert]:
    """Laboratory alerts at the sites the user may see, newest first."""
    rows = LabAlert.objects.filter(
        lab_result__study=study, site__in=_sites(user, study, site)
    ).select_related("lab_result", "lab_result__subject", "site")
    if open_only:
        rows = rows.filter(acknowledged_at__isnull=True)
    return rows.order_by("-raised_at", "id")


def find_sae(user: Any, study: Study, pk: int) -> SaeReport | None:
    return sae_clocks(user, study, open_only=False).filter(pk=pk).first()


def find_alert(user: Any, study: Study, pk: int) -> LabAlert | None:
    return lab_alerts(user, study, open_only=False).filter(pk=pk).first()


def time_left(report: SaeReport, now: dt.datetime | None = None) -> dt.timedelta:
    """Time until the report is due (negative when overdue)."""
    return report.due_at - (now or timezone.now())


# --------------------------------------------------------------------------------------------
# Site actions


def mark_sae_reported(report: SaeReport, *, by: Any, at: dt.datetime | None = None) -> SaeReport:
    """Record that the SAE report was sent to the sponsor (the site's investigator or nurse).

    Raises
    ------
    SafetyNotAllowed
        The user may not enter data at the site.
    SafetyError
        Already reported, or ``at`` in the future or before the clock started.
    """
    if not policy.may_enter_data(by, report.site):
        raise SafetyNotAllowed("sae", f"you may not report SAEs at {report.site.code}")
    now = timezone.now()
    at = at or now
    if at > now or at < report.clock_started_at:
        raise SafetyError("reported_at", f"{at.isoformat()} is outside the clock's start and now")
    with transaction.atomic():
        claimed = SaeReport.objects.filter(pk=report.pk, reported_at__isnull=True).update(
            reported_at=at, reported_by=by
        )
        if claimed != 1:
            raise SafetyError("sae", f"SAE report #{report.pk} was already recorded as reported")
        report.refresh_from_db()
        audit(
            "safety.sae.reported",
            user=by,
            entity=report,
            study=report.adverse_event.study.code,
            site=report.site.code,
            changes={
                "subject_id": report.adverse_event.subject.subject_id,
                "reported_at": at.isoformat(),
                "late": at > report.due_at,
            },
        )
    return report


def acknowledge_alert(alert: LabAlert, *, by: Any) -> LabAlert:
    """An investigator of the site has reviewed a laboratory alert.

    Raises
    ------
    SafetyNotAllowed
        The user is not an investigator at the alert's site.
    SafetyError
        The alert was already acknowledged.
    """
    site_roles = {
        m.role for m in policy.memberships(by, alert.site.study) if m.site_id == alert.site_id
    }
    if Role.INVESTIGATOR not in site_roles:
        raise SafetyNotAllowed("alert", f"only an investigator of {alert.site.code} may do this")
    with transaction.atomic():
        claimed = LabAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=by
        )
        if claimed != 1:
            raise SafetyError("alert", f"alert #{alert.pk} was already acknowledged")
        alert.refresh_from_db()
        audit(
            "safety.lab.alert_acknowledged",
            user=by,
            entity=alert,
            study=alert.site.study.code,
            site=alert.site.code,
            changes={"subject_id": alert.lab_result.subject.subject_id, "grade": alert.grade},
        )
    return alert


def add_reference_range(
    site: Site,
    *,
    lab_name: str,
    test: str,
    unit: str,
    lln: Decimal | None,
    uln: Decimal | None,
    valid_from: dt.date,
    sex: str = "",
    age_min: int | None = None,
    age_max: int | None = None,
    by: Any,
) -> ReferenceRange:
    """Register a site laboratory's normal range (data managers only), audited.

    Raises
    ------
    SafetyNotAllowed
        The user is not a data manager of the study.
    SafetyError
        Unknown test or unit, LLN above ULN, no limit at all, bad sex or age bounds.
    """
    if Role.DATA_MANAGER not in policy.roles(by, site.study):
        raise SafetyNotAllowed("reference_range", "only data managers register reference ranges")
    if test not in ctcae.TESTS:
        raise SafetyError("test", f"{test!r} is not a graded test code")
    try:
        convert(test, 0, unit)
    except UnitError as error:
        raise SafetyError("unit", str(error)) from None
    if lln is None and uln is None:
        raise SafetyError("uln", "a range needs an LLN, a ULN or both")
    if lln is not None and uln is not None and lln > uln:
        raise SafetyError("lln", f"{lln} is above uln={uln}")
    if sex not in ("", "F", "M"):
        raise SafetyError("sex", f"{sex!r} is not F, M or blank")
    if age_min is not None and age_max is not None and age_min >= age_max:
        raise SafetyError("age_min", f"{age_min} is not below age_max={age_max}")
    with transaction.atomic():
        row = ReferenceRange.objects.create(
            site=site,
            lab_name=lab_name.strip(),
            test=test,
            unit=unit,
            lln=lln,
            uln=uln,
            valid_from=valid_from,
            sex=sex,
            age_min=age_min,
            age_max=age_max,
            created_by=by,
        )
        audit(
            "safety.reference_range.add",
            user=by,
            entity=row,
            study=site.study.code,
            site=site.code,
            changes=_snapshot(
                row,
                [
                    "lab_name",
                    "test",
                    "unit",
                    "lln",
                    "uln",
                    "sex",
                    "age_min",
                    "age_max",
                    "valid_from",
                ],
            ),
        )
    return row
