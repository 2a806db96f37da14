"""What one form save costs in queries, pinned so that it cannot grow unnoticed, and the shortcuts
that keep it low: the page's role controls from one look-up, the evaluation context narrowed to
the names a form's expressions read.

The counts are exact: a change that adds a query to every save (or every page) fails here and
must update the number on purpose (``docs/benchmarks.md``, "Form saves under load").
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.capture.forms_data import form_values
from trialdesk.accounts import policy
from trialdesk.capture import locks, queries, signatures, verification
from trialdesk.capture.models import FormRecord
from trialdesk.capture.records import evaluation_context, names_read, save_form
from trialdesk.protocol.definitions import study_definition
from trialdesk.screening.models import Subject
from trialdesk.web.views_capture import _roles

pytestmark = pytest.mark.django_db

#: Queries of one change of an ITCH_PAIN form posted through its page (a coordinator, a reason):
#: session, user, study, subject, visit, record, role check, visit, then the transaction.
PAGE_SAVE_QUERIES = 21
#: The same change through ``save_form`` with the subject, study and site already loaded.
SERVICE_SAVE_QUERIES = 14
#: The ITCH_PAIN form page of a saved record.
FORM_PAGE_QUERIES = 16


def _url(subject, visit="W2", form="ITCH_PAIN"):
    return reverse("capture:form", args=["ns-dupi", subject.subject_id, visit, form])


def _post(client, subject, pruritus, reason=""):
    data = {"action": "save", "visit": "W2", "pruritus_score": str(pruritus), "pain_score": "3"}
    if reason:
        data["reason"] = reason
    return client.post(_url(subject), data)


def _statements(context):
    """The SQL statements run, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in context.captured_queries if "SAVEPOINT" not in q["sql"].upper()]


def test_a_change_posted_through_the_page_takes_a_fixed_number_of_queries(
    client, planned_subject, claire
):
    client.force_login(claire)
    assert _post(client, planned_subject, 5).status_code == 302
    with CaptureQueriesContext(connection) as context:
        response = _post(client, planned_subject, 6, reason="transcription error")
    assert response.status_code == 302
    statements = _statements(context)
    assert len(statements) == PAGE_SAVE_QUERIES, "\n".join(statements)
    record = FormRecord.objects.get(subject=planned_subject, form="ITCH_PAIN", visit_code="W2")
    assert record.revision == 2
    assert record.values.get(item="pruritus_score").value == 6


def test_a_change_through_save_form_takes_a_fixed_number_of_queries(planned_subject, claire):
    subject = Subject.objects.select_related("study__current_version", "site").get(
        pk=planned_subject.pk
    )
    subject.site.study = subject.study
    save_form(subject, "ITCH_PAIN", {"pruritus_score": 5}, by=claire, visit_code="W2")
    with CaptureQueriesContext(connection) as context:
        result = save_form(
            subject, "ITCH_PAIN", {"pruritus_score": 7}, by=claire, visit_code="W2", reason="typo"
        )
    assert result.changes == {"pruritus_score": [5, 7]}
    statements = _statements(context)
    assert len(statements) == SERVICE_SAVE_QUERIES, "\n".join(statements)


def test_the_form_page_takes_a_fixed_number_of_queries(client, planned_subject, claire):
    client.force_login(claire)
    _post(client, planned_subject, 5)
    with CaptureQueriesContext(connection) as context:
        response = client.get(_url(planned_subject))
    assert response.status_code == 200
    statements = _statements(context)
    assert len(statements) == FORM_PAGE_QUERIES, "\n".join(statements)


@pytest.mark.parametrize(
    "persona", ["claire", "paul", "ines", "manon", "pierre", "ugo", "simon", "diane", "sophie"]
)
def test_the_page_controls_are_the_answers_of_the_services_role_checks(
    request, persona, planned_subject, new_subject
):
    """``_roles`` answers from one look-up what each service asks on its own, for every persona
    and for a subject at each site the persona may see."""
    user = request.getfixturevalue(persona)
    subjects = [planned_subject, new_subject("NCK")]
    compared = 0
    for subject in subjects:
        subject = Subject.objects.select_related("study", "site").get(pk=subject.pk)
        if not policy.may_see_subject(user, subject):
            continue
        page_request = RequestFactory().get("/")
        page_request.user = user
        probe = FormRecord(subject=subject)
        expected = {
            "may_enter": policy.may_enter_data(user, subject.site),
            "may_verify": verification.may_verify(user, probe),
            "may_raise": queries.may_raise(user, probe),
            "may_sign": signatures.may_sign(user, subject),
            "may_lock": locks.may_lock(user, subject.study),
        }
        with CaptureQueriesContext(connection) as context:
            assert _roles(page_request, subject) == expected, (persona, subject.site.code)
        assert len(context.captured_queries) == 1
        compared += 1
    assert compared >= 1


def test_the_narrowed_context_holds_every_name_a_form_reads_with_the_full_value(
    subject, claire, d0
):
    """For every form of the study file, the context built from the names its checks and
    computed items read gives those names the values the full context gives them."""
    definition = study_definition(subject.study)
    for code in ("NASA", "AE", "DRUG"):
        form = definition.form(code)
        save_form(subject, code, form_values(definition, form, d0), by=claire, visit_code="D0")
    checked = set()
    for form in definition.forms:
        visits = definition.visits_of(form.code)
        probe = FormRecord(
            subject=subject, form=form.code, visit_code=visits[0].code if visits else ""
        )
        names = names_read(definition, form)
        full = evaluation_context(definition, probe)
        narrow = evaluation_context(definition, probe, names=names)
        for name in names & full.keys():
            assert narrow[name] == full[name], (form.code, name)
            checked.add(name.split(".", 1)[-1] if "." in name else name)
    # The comparison covered each kind of name: dates, dosing, counts, other forms, screening.
    assert {"visit_date", "last_dosing_date", "records", "nasa_total", "planned_units"} <= checked
