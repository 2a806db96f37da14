"""Enrolment in an observational study (``ns-cohort``): a subject without randomization.

:func:`enrol` numbers the subject like screening does (a log entry ``TLS-S001`` and a subject
``TLS-001``), saves the enrolment form (the study's ``screening_form``) through
:func:`~trialdesk.capture.records.save_form`, and plans the visits from the enrolment date (day
0: the start of the treatment followed). The subject's status is *eligible* (screening has no
"enrolled" status); their forms go through the same machinery as the trial's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from trialdesk.audit.services import record as audit
from trialdesk.protocol.models import Site, Study
from trialdesk.screening.models import Outcome, ScreeningEntry, Subject, SubjectStatus

from .records import CaptureError, check_may_enter, definition_of, save_form
from .schedule import plan_visits


def enrol(study: Study, site: Site, data: Mapping[str, Any], *, by: Any) -> Subject:
    """Enrol a subject of an observational study with their enrolment form.

    Raises
    ------
    CaptureError
        A randomized study, a site of another study, a user who may not enter data there, an
        invalid or incomplete enrolment form (naming the item), an enrolment date in the future.
    """
    if study.kind != "observational":
        raise CaptureError("study", f"{study.code} is randomized: screen and randomize instead")
    if site.study_id != study.pk:
        raise CaptureError("site", f"{site.code!r} is not a site of {study.code}")
    definition = definition_of(study)
    form = definition.screening_form
    if form is None:
        raise CaptureError("study", f"{study.code} declares no enrolment form")
    date_item = next(
        (item.code for item in definition.form(form).items if item.data_type == "date"), None
    )
    d0 = definition.parse_value(form, date_item, data.get(date_item)) if date_item else None
    if d0 is None:
        raise CaptureError(date_item or "date", "the enrolment date is required")
    if d0 > timezone.localdate():
        raise CaptureError(date_item, f"{d0.isoformat()} is in the future")
    with transaction.atomic():
        Site.objects.select_for_update().get(pk=site.pk)
        number = (ScreeningEntry.objects.filter(site=site).aggregate(n=Max("number"))["n"] or 0) + 1
        entry = ScreeningEntry.objects.create(
            study=study,
            site=site,
            number=number,
            screening_number=f"{site.code}-S{number:03d}",
            screening_date=d0,
            outcome=Outcome.ELIGIBLE,
            study_version=study.current_version,
            created_by=by if getattr(by, "pk", None) else None,
        )
        subject = Subject.objects.create(
            study=study,
            site=site,
            number=number,
            subject_id=f"{site.code}-{number:03d}",
            screening_entry=entry,
            status=SubjectStatus.ELIGIBLE,
            study_version=study.current_version,
        )
        check_may_enter(by, subject)
        audit(
            "cohort.enrol",
            user=by,
            entity=subject,
            study=study.code,
            site=site.code,
            changes={"subject_id": [None, subject.subject_id], "d0_date": d0.isoformat()},
        )
        save_form(subject, form, data, by=by, complete=True)
        plan_visits(subject, d0, by=by)
    return subject


def plan_if_missing(subject: Subject, *, by: Any) -> list[Any]:
    """Plan the visits of a cohort subject who has none yet, from their enrolment date.

    For a subject whose enrolment form was saved some other way (an import, a later fix):
    returns the visits planned, or ``[]`` when the subject already has a schedule.

    Raises
    ------
    CaptureError
        Not an observational study, or no enrolment date saved yet.
    """
    from .models import Visit
    from .records import find_record, values_of

    check_may_enter(by, subject)
    if subject.study.kind != "observational":
        raise CaptureError(
            "study", f"{subject.study.code} is randomized: visits follow randomization"
        )
    if Visit.objects.filter(subject=subject).exists():
        return []
    definition = definition_of(subject.study)
    form = definition.screening_form
    record = find_record(subject, form) if form else None
    values = values_of(record, definition) if record is not None else {}
    dates = (
        [item.code for item in definition.form(form).items if item.data_type == "date"]
        if form
        else []
    )
    d0 = values.get(dates[0]) if dates else None
    if d0 is None:
        raise CaptureError("enrolment_date", f"{subject.subject_id} has no enrolment date saved")
    return plan_visits(subject, d0, by=by)
