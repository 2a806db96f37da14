"""Case report forms: saving a form record, the one path every page, API call and job takes.

:func:`save_form` validates and writes one record of a form of the study file:

1. the acting user may enter data at the subject's site (``None`` is the system);
2. the record is not locked (a locked form, subject or study refuses every write);
3. every item given is a declared, non-computed item; its value parses to the item's type and
   range (:meth:`~trialdesk.protocol.schema.Study.parse_value`), or it is marked *not done* or
   *unknown* with a reason;
4. after the first save, a change needs a reason for change;
5. computed items are computed from the others (in file order);
6. the study file's edit checks run over the names the study declares for the form
   (its items, ``visit_date``, ``d0_date``, ``planned_units``, ``last_dosing_date``,
   ``OTHER.item``, ``REPEATING.records``): a *hard* check that fires refuses the save naming the
   item and value, a *soft* one saves and raises a query;
7. required items must be filled (or marked not done / unknown) to mark the form complete.

Nothing is written unless every step passes. The write is audited in the same transaction with
``{item: [old, new]}`` per changed item; signatures whose content changed are invalidated; the
verification of changed items is withdrawn; :data:`~trialdesk.capture.signals.form_saved` is
sent last.

Values are stored as JSON: dates as ``YYYY-MM-DD``, "never" as ``"never"``, partial dates as
text. :func:`stored_item` gives the JSON form of an item (a value, or
``{"state": ..., "reason": ...}``) that the audit trail records.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from trialdesk.accounts import policy
from trialdesk.audit.services import record as audit
from trialdesk.lib.hashing import canonical_json, sha256_hex
from trialdesk.protocol import (
    NEVER,
    UNKNOWN,
    EvaluationError,
    ItemValueError,
    ProtocolError,
    UnknownCodeError,
)
from trialdesk.protocol.definitions import study_definition, version_definition
from trialdesk.protocol.schema import Form, Item
from trialdesk.protocol.schema import Study as StudyDefinition
from trialdesk.randomization.models import Administration
from trialdesk.screening.models import EligibilityAssessment, Subject

from .models import (
    FormRecord,
    ItemValue,
    Lock,
    LockScope,
    Query,
    QueryMessage,
    QueryStatus,
    RecordStatus,
    Signature,
    ValueState,
    Visit,
)
from .signals import form_saved


class CaptureError(ValueError):
    """A form write that cannot be made; ``field`` names the item or input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class CaptureNotAllowed(CaptureError):
    """The acting user's role does not allow this action here."""


class RecordLocked(CaptureError):
    """The record, its subject or its study is locked."""


class HardCheckFailed(CaptureError):
    """A hard edit check fired: the save is refused."""

    def __init__(self, field: str, message: str, check_id: str, texts: Any = None) -> None:
        self.check_id = check_id
        self.texts = texts
        super().__init__(field, message)

    def in_language(self, language: str) -> str:
        """The refusal with the check's message in ``language`` (``en`` or ``fr``)."""
        if self.texts is None:
            return str(self)
        return str(self).replace(self.texts.en, self.texts.get(language))


class ReasonRequired(CaptureError):
    """A change of saved data without a reason for change."""


@dataclass(frozen=True)
class Entry:
    """One item as entered: a raw value, or a state (not done / unknown) with its reason."""

    value: Any = None
    state: str = ValueState.VALUE
    reason: str = ""


@dataclass
class SaveResult:
    """What :func:`save_form` did: the record, the changes, and the queries soft checks raised."""

    record: FormRecord
    created: bool
    changes: dict[str, list[Any]] = field(default_factory=dict)
    queries: list[Query] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Values as JSON and back


def to_json(value: Any) -> Any:
    """The JSON form of a typed item value (dates as ISO text, never as ``"never"``)."""
    if value is NEVER:
        return "never"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def stored_item(state: str, value: Any, reason: str) -> Any:
    """How an item appears in the audit trail and in signed content."""
    if state == ValueState.VALUE:
        return value
    return {"state": state, "reason": reason}


def _stored(row: ItemValue | None) -> Any:
    if row is None:
        return None
    return stored_item(row.state, row.value, row.reason)


def values_of(record: FormRecord, definition: StudyDefinition | None = None) -> dict[str, Any]:
    """The record's typed values by item code, every item of the form included (``None`` for
    empty, not done or unknown)."""
    definition = definition or version_definition(record.study_version)
    rows = {row.item: row for row in record.values.all()}
    values: dict[str, Any] = {}
    for item in definition.form(record.form).items:
        row = rows.get(item.code)
        if row is None or row.state != ValueState.VALUE or row.value is None:
            values[item.code] = None
            continue
        try:
            values[item.code] = definition.parse_value(record.form, item.code, row.value)
        except (ItemValueError, UnknownCodeError):
            values[item.code] = row.value
    return values


def items_of(record: FormRecord) -> dict[str, Any]:
    """The record's items as stored (JSON values, or state and reason), by item code."""
    return {row.item: _stored(row) for row in record.values.all()}


def parse_entry(definition: StudyDefinition, form: Form, code: str, raw: Any) -> Entry:
    """Turn one input (a raw value, an :class:`Entry` or ``{"state", "reason"}``) into an entry.

    Raises
    ------
    CaptureError
        Unknown item, computed item, unparsable value, state without reason.
    """
    try:
        item = form.item(code)
    except (UnknownCodeError, KeyError):
        raise CaptureError(code, f"is not an item of form {form.code}") from None
    if item.computed is not None:
        raise CaptureError(code, "is computed by the system and cannot be entered")
    if isinstance(raw, Entry):
        entry = raw
    elif isinstance(raw, Mapping):
        entry = Entry(raw.get("value"), raw.get("state") or ValueState.VALUE, raw.get("reason", ""))
    else:
        entry = Entry(raw)
    if entry.state not in ValueState.values:
        raise CaptureError(
            code, f"state {entry.state!r} is not one of {', '.join(ValueState.values)}"
        )
    if entry.state != ValueState.VALUE:
        reason = (entry.reason or "").strip()
        if not reason:
            raise CaptureError(code, f"a reason is required to mark it {entry.state}")
        return Entry(None, entry.state, reason)
    try:
        parsed = definition.parse_value(form.code, code, entry.value)
    except ItemValueError as error:
        raise CaptureError(code, f"{error.value!r} {error.reason}") from None
    return Entry(to_json(parsed))


# --------------------------------------------------------------------------------------------
# Saving


def save_form(
    subject: Subject,
    form_code: str,
    data: Mapping[str, Any],
    *,
    by: Any,
    visit_code: str = "",
    number: int | None = None,
    reason: str = "",
    complete: bool = False,
    patient_entered: bool = False,
    actor: str = "",
) -> SaveResult:
    """Validate and save one form record of a subject (see the module docstring).

    Parameters
    ----------
    subject : Subject
        The subject whose casebook holds the record.
    form_code : str
        A form of the study file.
    data : Mapping
        Item code → raw value (JSON or form text), :class:`Entry`, or
        ``{"state": "not_done" | "unknown", "reason": ...}``. Items not given keep their value.
    by : User or None
        The acting user (``None``: the system or a patient's one-time link).
    visit_code : str
        The visit of a visit form (required for it); for a repeating record, the visit it was
        reported at (optional).
    number : int, optional
        A repeating record's number: ``None`` creates the next record, a number changes it.
    reason : str
        The reason for change; required when an existing record's values change.
    complete : bool
        Mark the form complete: every required item must then be filled or marked.
    patient_entered : bool
        The values come from the patient (ePRO).
    actor : str
        How the audit trail names an actor who is not a user (``by`` is ``None``), such as
        ``"patient via link <prefix>"``.

    Raises
    ------
    CaptureError
        With ``field`` naming the item (or ``form``, ``visit``, ``reason``…) and the reason;
        :class:`CaptureNotAllowed`, :class:`RecordLocked`, :class:`HardCheckFailed` and
        :class:`ReasonRequired` are its kinds. Nothing is written then.
    """
    check_may_enter(by, subject)
    version = subject.study.current_version
    definition = definition_of(subject.study)
    form = _form(definition, form_code)
    visit_code = _check_visit(definition, form, subject, visit_code)
    entries = {code: parse_entry(definition, form, code, raw) for code, raw in data.items()}
    reason = (reason or "").strip()
    with transaction.atomic():
        subject = _locked_subject(subject)
        record, created = _record_for(subject, form, visit_code, number, version=version, by=by)
        if not created:  # a new record was checked through its subject's and study's locks
            check_unlocked(record)  # once: nothing below locks or unlocks in this transaction
        before = {row.item: row for row in record.values.all()}
        after = _merge(before, entries)
        context = evaluation_context(definition, record, names=names_read(definition, form))
        typed = _typed(definition, form, after)
        for item in form.items:
            if item.computed is not None:
                value = _compute(item, {**context, **typed})
                typed[item.code] = value
                after[item.code] = (ValueState.VALUE, to_json(value), "", True)
        fired = _run_checks(definition, form, {**context, **typed}, after)
        if complete:
            _check_required(form, after)
        changes = _changes(before, after)
        if not created and changes and not reason:
            first = next(iter(changes))
            raise ReasonRequired(
                "reason", f"a reason for change is required to change {first} of {record}"
            )
        _write_values(record, before, after, changes, by)
        old_status = record.status
        record.completed = complete or (record.completed and not _missing_required(form, after))
        record.study_version = version
        record.patient_entered = record.patient_entered or patient_entered
        record.updated_by = _user(by)
        if changes and not created:
            record.revision += 1
            if record.verified_at is not None:
                record.verified_at = None
                record.verified_by = None
        record.save()
        queries = [_auto_query(record, check, item, value) for check, item, value in fired]
        queries = [query for query in queries if query is not None]
        if changes and not created:
            invalidate_signatures(record, by=by, reason=reason)
        new_status = refresh_status(record, locked=False)
        audit(
            "form.create" if created else "form.change",
            user=by,
            entity=record,
            study=subject.study.code,
            site=subject.site.code,
            changes={
                "subject_id": subject.subject_id,
                "form": record.form,
                "visit": record.visit_code,
                "number": record.number,
                "version": version.version,
                "items": changes,
                "status": [old_status if not created else RecordStatus.NOT_STARTED, new_status],
                "patient_entered": patient_entered,
            },
            reason=reason,
            username=actor,
        )
        form_saved.send(sender=FormRecord, record=record, by=by, created=created, changes=changes)
    return SaveResult(record, created, changes, queries)


def _locked_subject(subject: Subject) -> Subject:
    """The subject's row locked for the save, with the study and site already loaded."""
    locked = Subject.objects.select_for_update().get(pk=subject.pk)
    if locked.study_id == subject.study_id and locked.site_id == subject.site_id:
        locked.study, locked.site = subject.study, subject.site
    return locked


def names_read(definition: StudyDefinition, form: Form) -> frozenset[str]:
    """The names the form's edit checks and computed items read."""
    names: set[str] = set()
    for check in definition.checks_of(form.code):
        names.update(check.expression.names)
    for item in form.items:
        if item.computed is not None:
            names.update(item.computed.names)
    return frozenset(names)


def _changes(
    before: Mapping[str, ItemValue], after: Mapping[str, tuple[str, Any, str, bool]]
) -> dict[str, list[Any]]:
    """``{item: [old, new]}`` for every item whose stored form changes (new empty items skipped)."""
    changes = {}
    for code, (state, value, why, _computed) in after.items():
        old = _stored(before.get(code))
        new = stored_item(state, value, why)
        if old != new and not (code not in before and new is None):
            changes[code] = [old, new]
    return changes


def _merge(
    before: Mapping[str, ItemValue], entries: Mapping[str, Entry]
) -> dict[str, tuple[str, Any, str, bool]]:
    after = {code: (row.state, row.value, row.reason, row.computed) for code, row in before.items()}
    for code, entry in entries.items():
        after[code] = (entry.state, entry.value, entry.reason, False)
    return after


def _typed(
    definition: StudyDefinition, form: Form, after: Mapping[str, tuple[str, Any, str, bool]]
) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for item in form.items:
        state, value, _reason, _computed = after.get(item.code, (ValueState.VALUE, None, "", False))
        if state != ValueState.VALUE or value is None:
            typed[item.code] = None
        else:
            typed[item.code] = definition.parse_value(form.code, item.code, value)
    return typed


def _compute(item: Item, values: Mapping[str, Any]) -> Any:
    try:
        value = item.computed.evaluate(values)  # type: ignore[union-attr]
    except EvaluationError as error:
        raise CaptureError(item.code, f"cannot be computed: {error}") from None
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if item.data_type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if (
        item.data_type == "decimal"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return round(float(value), item.decimals if item.decimals is not None else 6)
    return value


def _run_checks(
    definition: StudyDefinition,
    form: Form,
    values: Mapping[str, Any],
    after: Mapping[str, tuple[str, Any, str, bool]],
) -> list[tuple[Any, str, Any]]:
    """Evaluate the form's edit checks; raise on the first hard one that fires; list soft ones."""
    fired = []
    for check in definition.checks_of(form.code):
        try:
            result = check.expression.evaluate(values)
        except EvaluationError as error:
            raise CaptureError(check.item or check.id, f"check {check.id}: {error}") from None
        if result is not True:
            continue
        item = check.item or ""
        value = after.get(item, (None, None, "", False))[1] if item else None
        if check.severity == "hard":
            shown = repr(value) if item else _values_read(check, after)
            raise HardCheckFailed(
                item or check.id,
                f"{shown} refused by check {check.id}: {check.message.en}",
                check.id,
                check.message,
            )
        fired.append((check, item, value))
    return fired


def _values_read(check: Any, after: Mapping[str, tuple[str, Any, str, bool]]) -> str:
    """The entered values a check without an item reads, as ``name=value`` pairs."""
    pairs = [
        f"{name}={after[name][1]!r}"
        for name in sorted(check.expression.names)
        if name in after and after[name][1] is not None
    ]
    return ", ".join(pairs) or "the values"


def _missing_required(form: Form, after: Mapping[str, tuple[str, Any, str, bool]]) -> list[str]:
    missing = []
    for item in form.items:
        if not item.required:
            continue
        state, value, _reason, _computed = after.get(item.code, (ValueState.VALUE, None, "", False))
        if state == ValueState.VALUE and value is None:
            missing.append(item.code)
    return missing


def _check_required(form: Form, after: Mapping[str, tuple[str, Any, str, bool]]) -> None:
    missing = _missing_required(form, after)
    if missing:
        raise CaptureError(
            missing[0],
            f"is required to complete {form.code} (missing: {', '.join(missing)}); "
            "enter it or mark it not done or unknown with a reason",
        )


def _write_values(
    record: FormRecord,
    before: Mapping[str, ItemValue],
    after: Mapping[str, tuple[str, Any, str, bool]],
    changes: Mapping[str, Any],
    by: Any,
) -> None:
    for code in changes:
        state, value, reason, computed = after[code]
        row = before.get(code)
        if row is None:
            row = ItemValue(record=record, item=code)
        row.state, row.value, row.reason, row.computed = state, value, reason, computed
        row.verified_at = None
        row.verified_by = None
        row.updated_by = _user(by)
        # Model.save, not ItemValue.save: the latter looks the locks up again for every item,
        # and save_form has checked them for this record in this transaction.
        models.Model.save(row)


def _auto_query(record: FormRecord, check: Any, item: str, value: Any) -> Query | None:
    """A query raised by a soft check, unless one is already open for it on this record."""
    exists = (
        Query.objects.filter(record=record, check_id=check.id)
        .exclude(status=QueryStatus.CLOSED)
        .exists()
    )
    if exists:
        return None
    text = f"{check.message.en} / {check.message.fr}"
    query = Query.objects.create(record=record, item=item, check_id=check.id, text=text)
    QueryMessage.objects.create(query=query, action="raise", text=text)
    audit(
        "query.raise",
        user=None,
        entity=query,
        study=record.subject.study.code,
        site=record.subject.site.code,
        changes={
            "subject_id": record.subject.subject_id,
            "record": record.pk,
            "item": item,
            "check": check.id,
            "value": value,
            "status": [None, QueryStatus.OPEN],
        },
        reason=text,
    )
    return query


# --------------------------------------------------------------------------------------------
# Context of expressions


def evaluation_context(
    definition: StudyDefinition, record: FormRecord, *, names: frozenset[str] | None = None
) -> dict[str, Any]:
    """The values an edit check or computed item of ``record`` may read besides its own items.

    With ``names`` (what the form's expressions read), only the parts of the context those names
    come from are looked up: the visit dates, the last dosing, the other forms of the visit, the
    counts of repeating records, the screening data. Without, all of it.
    """
    subject = record.subject
    wanted = _ContextParts(definition, names)
    context: dict[str, Any] = {
        "visit_code": record.visit_code or None,
        "planned_units": _planned_units(definition, record.visit_code),
    }
    if wanted.dates:
        visits = {v.code: v for v in Visit.objects.filter(subject=subject)}
        visit = visits.get(record.visit_code)
        d0 = next((v.done_on or v.planned_date for v in visits.values() if v.day == 0), None)
        visit_date = (visit.done_on or visit.planned_date) if visit is not None else None
        context.update({"visit_date": visit_date, "d0_date": d0})
        if wanted.dosing:
            context["last_dosing_date"] = _last_dosing_date(subject, visit_date)
    if record.visit_code and wanted.other_forms:
        others = FormRecord.objects.filter(
            subject=subject, visit_code=record.visit_code, repeating=False
        ).exclude(pk=record.pk)
        for other in others.prefetch_related("values"):
            for code, value in values_of(other, definition).items():
                context[f"{other.form}.{code}"] = value
    if record.visit_code and wanted.counts:
        context.update(_repeating_counts(definition, subject, record.visit_code))
    screening = definition.screening
    if wanted.screening and screening is not None and screening.code != record.form:
        assessment = (
            EligibilityAssessment.objects.filter(subject=subject).order_by("-assessed_at").first()
        )
        for code, raw in (assessment.data if assessment else {}).items():
            try:
                context[f"{screening.code}.{code}"] = definition.parse_value(
                    screening.code, code, raw
                )
            except (ProtocolError, KeyError):
                continue
    return context


class _ContextParts:
    """Which parts of an evaluation context the names read need (all of them for ``None``)."""

    def __init__(self, definition: StudyDefinition, names: frozenset[str] | None) -> None:
        everything = names is None
        names = names or frozenset()
        prefixes = {name.split(".", 1)[0] for name in names if "." in name}
        repeating = {form.code for form in definition.forms if form.repeating}
        screening = definition.screening.code if definition.screening is not None else None
        self.dosing = everything or "last_dosing_date" in names
        self.dates = everything or self.dosing or bool({"visit_date", "d0_date"} & names)
        self.counts = everything or bool(prefixes & repeating)
        self.screening = everything or (screening is not None and screening in prefixes)
        self.other_forms = everything or bool(prefixes - repeating - {screening})


def _repeating_counts(
    definition: StudyDefinition, subject: Subject, visit_code: str
) -> dict[str, int]:
    """``FORM.records`` of every repeating form at a visit, counted in one grouped query."""
    repeating = [form.code for form in definition.forms if form.repeating]
    counted = dict(
        FormRecord.objects.filter(subject=subject, visit_code=visit_code, form__in=repeating)
        .order_by()
        .values("form")
        .annotate(n=Count("pk"))
        .values_list("form", "n")
    )
    return {f"{code}.records": counted.get(code, 0) for code in repeating}


def _planned_units(definition: StudyDefinition, visit_code: str) -> int | None:
    if definition.dosing is None or not visit_code:
        return None
    return definition.dosing.units_per_visit.get(visit_code)


def _last_dosing_date(subject: Subject, until: dt.date | None) -> dt.date | None:
    doses = Administration.objects.filter(subject=subject)
    if until is not None:
        doses = doses.filter(given_on__lte=until)
    return doses.aggregate(last=Max("given_on"))["last"]


# --------------------------------------------------------------------------------------------
# Records, status, locks, signatures


def _record_for(
    subject: Subject, form: Form, visit_code: str, number: int | None, *, version: Any, by: Any
) -> tuple[FormRecord, bool]:
    records = FormRecord.objects.select_for_update().filter(subject=subject, form=form.code)
    if form.repeating:
        if number is not None:
            record = records.filter(number=number).first()
            if record is None:
                raise CaptureError("number", f"{form.code} #{number} does not exist")
            record.subject = subject
            return record, False
        last = records.aggregate(last=Max("number"))["last"] or 0
        _check_subject_unlocked(subject)
        return (
            FormRecord.objects.create(
                subject=subject,
                form=form.code,
                visit_code=visit_code,
                repeating=True,
                number=last + 1,
                study_version=version,
                created_by=_user(by),
                updated_by=_user(by),
            ),
            True,
        )
    record = records.filter(visit_code=visit_code).first()
    if record is not None:
        record.subject = subject
        return record, False
    _check_subject_unlocked(subject)
    return (
        FormRecord.objects.create(
            subject=subject,
            form=form.code,
            visit_code=visit_code,
            study_version=version,
            created_by=_user(by),
            updated_by=_user(by),
        ),
        True,
    )


def active_locks(record: FormRecord) -> Any:
    """The locks in force on a record: its own, its subject's, its study's."""
    return record.active_locks()


def check_unlocked(record: FormRecord) -> None:
    """Refuse any write to a locked record (its own lock, its subject's or its study's)."""
    if record.pk is not None and active_locks(record).exists():
        raise RecordLocked("record", f"{record} is locked; a data manager must unlock it first")


def _check_subject_unlocked(subject: Subject) -> None:
    locked = Lock.objects.filter(unlocked_at__isnull=True).filter(
        Q(scope=LockScope.SUBJECT, subject_id=subject.pk)
        | Q(scope=LockScope.STUDY, study_id=subject.study_id)
    )
    if locked.exists():
        raise RecordLocked("subject", f"{subject.subject_id} is locked; no record can be added")


def refresh_status(record: FormRecord, *, locked: bool | None = None) -> str:
    """Recompute and store the record's status from its facts; return it.

    ``locked`` says whether a lock is in force when the caller has just checked it in this
    transaction (``None``: look it up).
    """
    if locked is None:
        locked = active_locks(record).exists()
    if locked:
        status = RecordStatus.LOCKED
    elif _valid_signatures(record).exists():
        status = RecordStatus.SIGNED
    elif record.verified_at is not None:
        status = RecordStatus.VERIFIED
    elif record.completed:
        status = RecordStatus.COMPLETE
    else:
        status = RecordStatus.IN_PROGRESS
    if status != record.status:
        FormRecord.objects.filter(pk=record.pk).update(status=status)
        record.status = status
    return status


def _valid_signatures(record: FormRecord) -> Any:
    return Signature.objects.filter(
        subject_id=record.subject_id, invalidated_at__isnull=True
    ).filter(Q(scope="casebook") | Q(scope="visit", visit_code=record.visit_code))


def signed_content(subject: Subject, visit_code: str | None = None) -> dict[str, Any]:
    """What a signature covers: the items of every record of a visit, or of the casebook."""
    records = FormRecord.objects.filter(subject=subject).prefetch_related("values")
    if visit_code is not None:
        records = records.filter(visit_code=visit_code)
    return {
        "subject_id": subject.subject_id,
        "visit": visit_code,
        "records": {
            f"{r.visit_code}/{r.form}/{r.number}": items_of(r)
            for r in records.order_by("visit_code", "form", "number")
        },
    }


def invalidate_signatures(record: FormRecord, *, by: Any, reason: str) -> list[Signature]:
    """Invalidate the valid signatures whose signed content no longer matches."""
    invalidated = []
    for signature in _valid_signatures(record).select_for_update():
        visit = signature.visit_code if signature.scope == "visit" else None
        current = sha256_hex(canonical_json(signed_content(record.subject, visit)))
        if current == signature.content_sha256:
            continue
        signature.invalidated_at = timezone.now()
        signature.invalidated_reason = f"{record} changed: {reason}"
        signature.save(update_fields=["invalidated_at", "invalidated_reason"])
        audit(
            "signature.invalidate",
            user=by,
            entity=signature,
            study=record.subject.study.code,
            site=record.subject.site.code,
            changes={
                "subject_id": record.subject.subject_id,
                "scope": signature.scope,
                "visit": signature.visit_code,
                "record": record.pk,
                "valid": [True, False],
            },
            reason=signature.invalidated_reason,
        )
        invalidated.append(signature)
        covered = FormRecord.objects.filter(subject_id=record.subject_id).exclude(pk=record.pk)
        if visit is not None:
            covered = covered.filter(visit_code=visit)
        for other in covered.select_related("subject"):
            refresh_status(other)
    return invalidated


# --------------------------------------------------------------------------------------------
# Reads


def records_of(subject: Subject) -> list[FormRecord]:
    return list(FormRecord.objects.filter(subject=subject).prefetch_related("values"))


def find_record(
    subject: Subject, form_code: str, *, visit_code: str = "", number: int | None = None
) -> FormRecord | None:
    records = FormRecord.objects.filter(subject=subject, form=form_code)
    if number is not None:
        return records.filter(repeating=True, number=number).first()
    return records.filter(repeating=False, visit_code=visit_code).first()


def casebook(subject: Subject, definition: StudyDefinition | None = None) -> list[dict[str, Any]]:
    """The subject's visits × scheduled forms with each record's status, in visit order."""
    definition = definition or definition_of(subject.study)
    records = {
        (r.visit_code, r.form): r
        for r in FormRecord.objects.filter(subject=subject, repeating=False)
    }
    rows = []
    for visit in Visit.objects.filter(subject=subject).order_by("order"):
        forms = []
        for form in definition.forms_at(visit.code):
            if form.repeating:
                count = FormRecord.objects.filter(
                    subject=subject, form=form.code, visit_code=visit.code
                ).count()
                forms.append({"form": form, "record": None, "status": None, "count": count})
                continue
            record = records.get((visit.code, form.code))
            status = record.status if record else RecordStatus.NOT_STARTED
            forms.append({"form": form, "record": record, "status": status, "count": None})
        rows.append({"visit": visit, "forms": forms})
    return rows


# --------------------------------------------------------------------------------------------
# Helpers


def definition_of(study: Any) -> StudyDefinition:
    """The study file of the study's current version, or a :class:`CaptureError`."""
    try:
        return study_definition(study)
    except Exception as error:  # StudyDefinitionUnavailable, ProtocolError
        raise CaptureError("study", str(error)) from None


def _form(definition: StudyDefinition, form_code: str) -> Form:
    try:
        return definition.form(form_code)
    except (UnknownCodeError, KeyError):
        raise CaptureError("form", f"{form_code!r} is not a form of {definition.id}") from None


def _check_visit(definition: StudyDefinition, form: Form, subject: Subject, visit_code: str) -> str:
    visit_code = visit_code or ""
    if not visit_code:
        if form.repeating or form.code == definition.screening_form:
            return ""
        raise CaptureError("visit", f"{form.code} is a visit form: name its visit")
    if not Visit.objects.filter(subject=subject, code=visit_code).exists():
        raise CaptureError(
            "visit", f"{visit_code!r} is not a planned visit of {subject.subject_id}"
        )
    if not form.repeating and form.code not in definition.schedule.get(visit_code, []):
        raise CaptureError("form", f"{form.code} is not scheduled at {visit_code}")
    return visit_code


def check_may_enter(by: Any, subject: Subject) -> None:
    if by is None:
        return
    if not policy.may_enter_data(by, subject.site):
        raise CaptureNotAllowed(
            "site",
            f"{getattr(by, 'username', by)!r} may not enter data at {subject.site.code}",
        )


def _user(by: Any) -> Any:
    return by if getattr(by, "pk", None) else None
