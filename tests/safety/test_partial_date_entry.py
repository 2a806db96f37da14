"""Partial AE dates as entered: ``UN`` / ``UNK`` and ISO 8601 reduced forms are accepted on the
AE form (page and API) and stored in canonical form; impossible dates are refused naming the item
and the value, and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tests.api.review_client import Api
from tests.capture.conftest import d0, planned_subject  # noqa: F401 - fixtures
from trialdesk.capture.models import FormRecord
from trialdesk.capture.records import definition_of
from trialdesk.protocol.errors import ItemValueError
from trialdesk.safety.models import AdverseEvent
from trialdesk.safety.partial_dates import parse_partial_date

ACCEPTED = [
    ("2026-UN-UN", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    ("2026-UNK-UNK", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    ("2026-un-unk", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    ("2026", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    ("2026-03-UN", "2026-03", dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
    ("2026-03-UNK", "2026-03", dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
    ("2026-03", "2026-03", dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
    ("2024-02-UN", "2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29)),
]

REFUSED = [
    ("2026-02-30", "has a day that does not exist in its month"),
    ("2025-02-29", "has a day that does not exist in its month"),
    ("2026-13", "has a month outside 01–12"),
    ("2026-00-UN", "has a month outside 01–12"),
    ("2026-UN-14", "has a day but no month"),
    ("2026-UNK-14", "has a day but no month"),
    ("UNK-03-14", "is not a date"),
    ("UNK", "is not a date"),
    ("2026-3", "is not a date"),
    ("03/2026", "is not a date"),
    ("2026-03-UNKN", "is not a date"),
    ("1850-UN-UN", "has a year outside 1900–2100"),
]


@pytest.mark.parametrize(("text", "canonical", "earliest", "latest"), ACCEPTED)
def test_unk_and_iso_reduced_forms_parse(text, canonical, earliest, latest):
    parsed = parse_partial_date(text, "ae_start_date")
    assert str(parsed) == canonical
    assert (parsed.earliest(), parsed.latest()) == (earliest, latest)


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "canonical", "earliest", "latest"), ACCEPTED)
def test_the_study_files_partial_items_store_the_canonical_text(
    ns_dupi, text, canonical, earliest, latest
):
    definition = definition_of(ns_dupi)
    assert definition.parse_value("AE", "ae_start_date", text) == canonical
    assert definition.parse_value("CM", "cm_start_date", text) == canonical
    assert definition.parse_value("AE", "ae_end_date", "2026-03-14") == dt.date(2026, 3, 14)


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "problem"), REFUSED)
def test_the_study_files_partial_items_refuse_impossible_dates(ns_dupi, text, problem):
    with pytest.raises(ItemValueError) as caught:
        definition_of(ns_dupi).parse_value("AE", "ae_end_date", text)
    assert caught.value.item == "ae_end_date" and caught.value.value == text
    assert problem in str(caught.value)


@pytest.mark.django_db
def test_a_date_that_is_not_partial_still_needs_the_whole_date(studies):
    definition = definition_of(studies["ns-dupi"])
    screening = definition.screening_form
    with pytest.raises(ItemValueError, match="is not a date"):
        definition.parse_value(screening, "birth_date", "1990-UN-UN")


# --- through the API and the page -----------------------------------------------------------------


@pytest.fixture
def ae_subject(planned_subject):  # noqa: F811 - fixture
    """A Toulouse subject with visits planned (the AE form needs no randomization)."""
    return planned_subject


def _ae(start, end=None):
    values = {"ae_term": "Headache", "ae_start_date": start, "ae_ongoing": end is None}
    if end is not None:
        values["ae_end_date"] = end
    return {"values": values}


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "canonical", "earliest", "latest"), ACCEPTED[:7])
def test_the_api_accepts_partial_ae_dates(
    client,
    ae_subject,
    claire,
    text,
    canonical,
    earliest,
    latest,
):
    api = Api(client, claire)
    path = f"/subjects/{ae_subject.subject_id}/records/AE?visit=W2"
    response = api.post(path, _ae(text))
    assert response.status_code == 201, response.content
    assert response.json()["values"]["ae_start_date"] == canonical
    events = client.get(
        f"/api/v1/studies/ns-dupi/safety/subjects/{ae_subject.subject_id}/adverse-events",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    ).json()
    (event,) = events
    assert event["start"] == canonical
    assert (event["start_earliest"], event["start_latest"]) == (
        earliest.isoformat(),
        latest.isoformat(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "problem"), REFUSED)
def test_the_api_refuses_impossible_ae_dates_and_writes_nothing(
    client,
    ae_subject,
    claire,
    text,
    problem,
):
    api = Api(client, claire)
    path = f"/subjects/{ae_subject.subject_id}/records/AE?visit=W2"
    response = api.post(path, _ae("2026-03-UN", end=text))
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith(f"ae_end_date: {text!r} {problem}")
    assert not FormRecord.objects.filter(subject=ae_subject, form="AE").exists()
    assert not AdverseEvent.objects.exists()


@pytest.mark.django_db
def test_the_ae_page_accepts_unk_and_refuses_an_impossible_day(
    client,
    ae_subject,
    claire,
):
    client.force_login(claire)
    url = reverse("capture:new_record", args=["ns-dupi", ae_subject.subject_id, "AE"])
    url += "?visit=W2"
    refused = client.post(url, {"action": "save", "ae_term": "Rash", "ae_start_date": "2026-02-30"})
    assert refused.status_code == 400
    page = refused.content.decode()
    assert 'data-field="ae_start_date"' in page and "2026-02-30" in page
    assert "has a day that does not exist in its month" in page
    assert not FormRecord.objects.filter(subject=ae_subject, form="AE").exists()
    saved = client.post(url, {"action": "save", "ae_term": "Rash", "ae_start_date": "2026-03-UNK"})
    assert saved.status_code == 302, saved.content[:2000]
    event = AdverseEvent.objects.get()
    assert (event.term, event.start, event.start_latest) == (
        "Rash",
        "2026-03",
        dt.date(2026, 3, 31),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        ("2026-03-14", "2025", True),  # the whole of 2025 is before 14 March 2026
        ("2026-03-14", "2026-02", True),
        ("2026-03", "2026-02-28", True),
        ("2026-03-14", "2026-03", False),  # may be on or after the 14th: not refused
        ("2026", "2026-01-01", False),
        ("2026-03-14", "2026-03-13", True),
        ("2026-03-14", "2026-03-14", False),
    ],
)
def test_an_end_before_the_start_is_refused_with_partial_dates(
    client, ae_subject, claire, start, end, refused
):
    api = Api(client, claire)
    path = f"/subjects/{ae_subject.subject_id}/records/AE?visit=W2"
    response = api.post(path, _ae(start, end=end))
    if refused:
        assert response.status_code == 422, response.content
        assert response.json()["detail"].startswith("ae_end_date:")
        assert "end date is before the start date" in response.json()["detail"]
        assert not FormRecord.objects.filter(subject=ae_subject, form="AE").exists()
    else:
        assert response.status_code == 201, response.content
