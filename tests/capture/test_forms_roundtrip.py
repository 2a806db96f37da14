"""Generated from the study files: every form saves with valid values and reloads unchanged."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.capture.forms_data import form_values
from trialdesk.capture.cohort import enrol
from trialdesk.capture.models import FormRecord, Visit
from trialdesk.capture.records import save_form, values_of
from trialdesk.protocol import load_study, resolve_study_path

pytestmark = pytest.mark.django_db

NS_DUPI = load_study(resolve_study_path("ns-dupi"))
NS_COHORT = load_study(resolve_study_path("ns-cohort"))
ENROLLED_ON = dt.date(2025, 1, 6)


def _first_visit(definition, form):
    visits = definition.visits_of(form.code)
    return visits[0].code if visits else ""


@pytest.mark.parametrize("form", NS_DUPI.forms, ids=lambda form: form.code)
def test_every_ns_dupi_form_round_trips(planned_subject, claire, d0, form):
    subject = planned_subject
    visit_code = _first_visit(NS_DUPI, form)
    data = form_values(NS_DUPI, form, d0)
    result = save_form(
        subject,
        form.code,
        data,
        by=claire,
        visit_code=visit_code,
        complete=True,
        reason="round trip",
    )
    reloaded = FormRecord.objects.get(pk=result.record.pk)
    values = values_of(reloaded)
    for code, raw in data.items():
        assert values[code] == NS_DUPI.parse_value(form.code, code, raw), code
    assert reloaded.status == "complete"
    assert reloaded.study_version.version == NS_DUPI.version


@pytest.fixture
def cohort_subject(studies, claire):
    cohort = studies["ns-cohort"]
    data = form_values(NS_COHORT, NS_COHORT.form("ENROLMENT"), ENROLLED_ON)
    data["birth_date"] = "2018-05-01"
    return enrol(cohort, cohort.sites.get(code="TLS"), data, by=claire)


def test_a_cohort_subject_is_enrolled_without_randomization(cohort_subject):
    assert cohort_subject.subject_id == "TLS-001" and cohort_subject.status == "eligible"
    enrolment = FormRecord.objects.get(subject=cohort_subject, form="ENROLMENT")
    assert enrolment.status == "complete" and enrolment.visit_code == ""
    codes = list(Visit.objects.filter(subject=cohort_subject).values_list("code", flat=True))
    assert codes == [visit.code for visit in NS_COHORT.visits]


@pytest.mark.parametrize("form", NS_COHORT.forms, ids=lambda form: form.code)
def test_every_ns_cohort_form_round_trips(cohort_subject, claire, form):
    visit_code = _first_visit(NS_COHORT, form)
    data = form_values(NS_COHORT, form, ENROLLED_ON)
    result = save_form(
        cohort_subject,
        form.code,
        data,
        by=claire,
        visit_code=visit_code,
        complete=True,
        reason="round trip",
    )
    values = values_of(FormRecord.objects.get(pk=result.record.pk))
    for code, raw in data.items():
        assert values[code] == NS_COHORT.parse_value(form.code, code, raw), code


def test_visits_are_planned_for_a_cohort_subject_without_any(cohort_subject, claire):
    from trialdesk.capture.cohort import plan_if_missing

    assert plan_if_missing(cohort_subject, by=claire) == []
    Visit.objects.filter(subject=cohort_subject).delete()
    planned = plan_if_missing(cohort_subject, by=claire)
    assert [v.code for v in planned] == [visit.code for visit in NS_COHORT.visits]
    assert planned[0].done_on == ENROLLED_ON
