"""The screening pages with the Django test client: log, screening form, verdict, subject,
consent, screen failure; cross-site access and identity hiding first."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from tests.screening.screening_data import CRITERIA, eligible_data
from trialdesk.audit.models import AuditEvent
from trialdesk.screening import eligibility, services
from trialdesk.screening.models import ConsentRecord, IdentityRecord, ScreeningEntry, Subject
from trialdesk.web.i18n import compile_catalogs

pytestmark = pytest.mark.django_db

IDENTITY = {
    "first_name": "Jeanne",
    "last_name": "Durand",
    "phone": "0611223344",
    "email": "jeanne@example.org",
}


def _form(data, **identity):
    """Screening data as the browser posts it (booleans as true/false, "never" as a box)."""
    posted = {"site": "TLS", **IDENTITY, **identity}
    for key, value in data.items():
        if value == "never":
            posted[f"{key}__never"] = "1"
        elif isinstance(value, bool):
            posted[key] = "true" if value else "false"
        elif value is not None:
            posted[key] = str(value)
    return posted


def _subject(claire, ns_dupi, tls, **changes):
    return services.screen(
        ns_dupi, tls, eligible_data(**changes), by=claire, identity=IDENTITY
    ).subject


def _url(name, *args):
    return reverse(f"screening:{name}", args=["ns-dupi", *args])


def test_anonymous_users_are_sent_to_login(client, ns_dupi):
    response = client.get(_url("log"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_home_page_links_to_the_screening_log(client, claire):
    client.force_login(claire)
    page = client.get(reverse("home")).content.decode()
    assert f'href="{_url("log")}"' in page


def test_the_screening_form_is_generated_from_the_study_file(client, claire, definition):
    client.force_login(claire)
    page = client.get(_url("screen")).content.decode()
    for code, item in eligibility.screening_items(definition).items():
        assert f'name="{code}"' in page
        assert item.label.en in page.replace("&#x27;", "'")
        if item.allow_never:
            assert f'name="{code}__never"' in page
    assert 'name="nasa_total"' in page and 'max="12"' in page
    for name in ("first_name", "last_name", "phone", "email"):
        assert f'name="{name}"' in page


def test_screening_a_person_through_the_form_shows_the_verdict(client, claire, ns_dupi):
    client.force_login(claire)
    data = eligible_data(last_biologic="2025-01-01")
    response = client.post(_url("screen"), _form(data))
    assert response.status_code == 302
    subject = Subject.objects.get()
    assert subject.subject_id == "TLS-001" and subject.identity.last_name == "Durand"
    assessment = subject.assessments.get()
    assert assessment.data == data
    assert response["Location"] == _url("assessment", "TLS-001", assessment.pk)
    page = client.get(response["Location"]).content.decode()
    assert 'data-verdict="not_eligible"' in page
    for criterion in CRITERIA:
        assert f'data-testid="criterion-{criterion}"' in page
    assert 'data-testid="criterion-EXC05" data-result="not_met"' in page
    assert "73 days before the screening date" in page


def test_the_verdict_page_speaks_french(client, claire, ns_dupi, tls):
    subject = _subject(claire, ns_dupi, tls, nasa_total=4)
    client.force_login(claire)
    url = _url("assessment", subject.subject_id, subject.assessments.get().pk)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Non rempli : Forme modérée à sévère" in page


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("nasa_total", "13", "nasa_total): &#x27;13&#x27; is above the maximum 12"),
        ("birth_date", "1990-02-30", "birth_date): &#x27;1990-02-30&#x27; is not a date"),
        ("sex", "X", "sex): &#x27;X&#x27; is not one of the codes"),
        ("email", "nope", "email: &#x27;nope&#x27; is not an e-mail address"),
        ("last_name", "", "last_name: is required"),
        ("site", "NCK", "site: &#x27;NCK&#x27; is not a site where you may screen"),
    ],
)
def test_the_form_rejects_bad_input_naming_the_field_and_value_and_writes_nothing(
    client, claire, ns_dupi, field, value, expected
):
    client.force_login(claire)
    before = AuditEvent.objects.count()
    response = client.post(_url("screen"), {**_form(eligible_data()), field: value})
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not ScreeningEntry.objects.exists() and not IdentityRecord.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_date_and_never_together_are_refused(client, claire, ns_dupi):
    client.force_login(claire)
    form = {**_form(eligible_data()), "last_biologic": "2024-01-01"}
    response = client.post(_url("screen"), form)
    assert response.status_code == 400
    assert "last_biologic): give a date or tick" in response.content.decode()
    assert not Subject.objects.exists()


def test_a_hard_edit_check_is_shown_on_its_field(client, claire, ns_dupi):
    client.force_login(claire)
    response = client.post(_url("screen"), {**_form(eligible_data()), "birth_date": "2025-06-01"})
    assert response.status_code == 400
    assert "The date of birth is after the screening date" in response.content.decode()
    assert not Subject.objects.exists()


def test_the_log_lists_screen_failures_with_reasons(client, claire, ns_dupi, tls):
    failed = _subject(claire, ns_dupi, tls, nasa_total=3)
    services.mark_screen_failure(failed, ["INC04"], by=claire)
    _subject(claire, ns_dupi, tls)
    client.force_login(claire)
    page = client.get(_url("log")).content.decode()
    assert 'data-testid="entry-TLS-S001"' in page and 'data-testid="entry-TLS-S002"' in page
    assert 'data-testid="reason-INC04"' in page
    assert "Durand" not in page  # the log holds no identity


def test_the_log_of_paris_shows_nothing_of_toulouse(client, claire, paul, ns_dupi, tls):
    _subject(claire, ns_dupi, tls)
    client.force_login(paul)
    page = client.get(_url("log")).content.decode()
    assert "TLS-S001" not in page
    assert client.get(_url("log") + "?site=TLS").status_code == 404


@pytest.mark.parametrize("name", ["subject", "reassess", "consent", "withdraw", "failure"])
def test_paul_gets_404_for_a_toulouse_subject(client, claire, paul, ns_dupi, tls, name):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(paul)
    assert client.get(_url(name, subject.subject_id)).status_code == 404
    assert client.post(_url(name, subject.subject_id), {"reason": "x"}).status_code == 404
    assessment = subject.assessments.get()
    assert client.get(_url("assessment", subject.subject_id, assessment.pk)).status_code == 404


def test_a_study_without_a_role_is_404(client, claire, ns_dupi):
    client.force_login(claire)
    assert client.get(reverse("screening:log", args=["no-such-study"])).status_code == 404


@pytest.mark.parametrize("persona", ["manon", "simon", "ugo", "sophie", "diane", "pierre"])
def test_identity_is_hidden_from_other_roles(client, request, claire, ns_dupi, tls, persona):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(request.getfixturevalue(persona))
    response = client.get(_url("subject", subject.subject_id))
    assert response.status_code == 200
    page = response.content.decode()
    assert "TLS-001" in page
    for value in IDENTITY.values():
        assert value not in page
    assert 'data-testid="identity"' not in page


@pytest.mark.parametrize("persona", ["claire", "ines"])
def test_identity_is_shown_to_the_sites_staff(client, request, claire, ns_dupi, tls, persona):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(request.getfixturevalue(persona))
    page = client.get(_url("subject", subject.subject_id)).content.decode()
    assert 'data-testid="identity"' in page and "Jeanne Durand" in page


@pytest.mark.parametrize("name", ["reassess", "consent", "withdraw", "failure"])
def test_a_monitor_may_read_but_not_write(client, claire, manon, ns_dupi, tls, name):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(manon)
    assert client.get(_url(name, subject.subject_id)).status_code == 403
    assert client.post(_url(name, subject.subject_id), {"reason": "x"}).status_code == 403
    assert client.get(_url("screen")).status_code == 403


def test_recording_consent_through_the_page(client, claire, ines, ns_dupi, tls, consent_fr):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(claire)
    page = client.get(_url("consent", subject.subject_id)).content.decode()
    assert "Note d&#x27;information et consentement" in page
    response = client.post(
        _url("consent", subject.subject_id),
        {"document": str(consent_fr.pk), "signed_at": "2025-03-15T10:30", "obtained_by": "ines"},
    )
    assert response.status_code == 302
    consent = ConsentRecord.objects.get()
    assert consent.obtained_by == ines
    page = client.get(_url("subject", subject.subject_id)).content.decode()
    assert 'data-testid="consented">yes' in page


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("signed_at", "yesterday", "signed_at: &#x27;yesterday&#x27; is not a date and time"),
        ("signed_at", "2023-06-01T10:00", "is not valid on 2023-06-01"),
        (
            "obtained_by",
            "manon",
            "obtained_by: &#x27;manon&#x27; is not investigator or coordinator",
        ),
        ("document", "999999", "document: &#x27;999999&#x27; is not a consent document"),
    ],
)
def test_the_consent_form_rejects_bad_input(
    client, claire, manon, ns_dupi, tls, consent_fr, field, value, expected
):
    subject = _subject(claire, ns_dupi, tls)
    client.force_login(claire)
    form = {
        "document": str(consent_fr.pk),
        "signed_at": "2025-03-15T10:30",
        "obtained_by": "claire",
        field: value,
    }
    response = client.post(_url("consent", subject.subject_id), form)
    assert response.status_code == 400
    assert expected in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_withdrawing_consent_through_the_page(client, claire, ns_dupi, tls, consent_fr):
    subject = _subject(claire, ns_dupi, tls)
    services.record_consent(
        subject, consent_fr, dt.datetime(2025, 3, 15, 10, 30), obtained_by=claire, by=claire
    )
    client.force_login(claire)
    assert client.post(_url("withdraw", subject.subject_id), {"reason": ""}).status_code == 400
    response = client.post(_url("withdraw", subject.subject_id), {"reason": "moved abroad"})
    assert response.status_code == 302
    assert not services.has_valid_consent(subject)


def test_recording_a_screen_failure_prefills_the_failed_criteria(client, claire, ns_dupi, tls):
    subject = _subject(claire, ns_dupi, tls, nasa_total=3, current_infection=True)
    client.force_login(claire)
    page = client.get(_url("failure", subject.subject_id)).content.decode()
    assert 'value="INC04" checked' in page and 'value="EXC11" checked' in page
    assert 'value="INC01" checked' not in page
    response = client.post(_url("failure", subject.subject_id), {"reasons": ["INC04", "EXC11"]})
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.screening_entry.failure_reasons == ["INC04", "EXC11"]
    assert (
        client.post(_url("failure", subject.subject_id), {"reasons": ["INC04"]}).status_code == 400
    )


def test_reassessment_through_the_page_is_prefilled_and_adds_a_row(client, claire, ns_dupi, tls):
    subject = _subject(claire, ns_dupi, tls, nasa_total=None)
    client.force_login(claire)
    page = client.get(_url("reassess", subject.subject_id)).content.decode()
    assert 'name="birth_date" id="id_birth_date" value="1990-06-01"' in page
    assert 'name="last_biologic__never" value="1" checked' in page
    form = _form(eligible_data())
    response = client.post(_url("reassess", subject.subject_id), form)
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.assessments.count() == 2 and services.is_eligible(subject)


@pytest.fixture
def french_catalog(settings, tmp_path):
    """The French catalogue compiled as ``trialdesk setup`` does, into a temporary directory."""
    source = Path(settings.LOCALE_PATHS[0]) / "fr" / "LC_MESSAGES" / "django.po"
    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(source, target / "django.po")
    compile_catalogs([tmp_path])
    settings.LOCALE_PATHS = [tmp_path]  # Django drops its cached catalogues on this change


def test_the_pages_are_in_french(client, claire, ns_dupi, tls, french_catalog):
    subject = _subject(claire, ns_dupi, tls, nasa_total=4)
    client.force_login(claire)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    log = client.get(_url("log")).content.decode()
    assert "Registre de sélection" in log and "Sélectionner une personne" in log
    subject_page = client.get(_url("subject", subject.subject_id)).content.decode()
    assert "Consentement valide" in subject_page and "Statut" in subject_page
    verdict = client.get(_url("assessment", subject.subject_id, subject.assessments.get().pk))
    page = verdict.content.decode()
    assert "Non éligible" in page and "Non rempli : Forme modérée à sévère" in page
    form = client.get(_url("screen")).content.decode()
    assert "Date de naissance" in form and "— inconnu —" in form


def test_data_managers_register_consent_documents(client, diane, ns_dupi):
    client.force_login(diane)
    url = _url("documents")
    bad = client.post(
        url, {"title": "Consent", "version": "2.0", "language": "fr", "valid_from": "2025-13-01"}
    )
    assert bad.status_code == 400
    assert "valid_from: &#x27;2025-13-01&#x27; is not a date" in bad.content.decode()
    response = client.post(
        url,
        {
            "title": "Consentement",
            "version": "2.0",
            "language": "fr",
            "valid_from": "2025-01-01",
            "valid_until": "",
        },
    )
    assert response.status_code == 302
    document = services.consent_documents(ns_dupi).get()
    assert (document.version, document.valid_until) == ("2.0", None)
    assert 'data-testid="document-2.0-fr"' in client.get(url).content.decode()


@pytest.mark.parametrize("persona", ["claire", "ines", "manon", "sophie"])
def test_other_roles_read_the_consent_documents_but_may_not_register_one(
    client, request, ns_dupi, consent_fr, persona
):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(_url("documents")).content.decode()
    assert 'data-testid="document-1.0-fr"' in page and 'data-testid="document-form"' not in page
    response = client.post(
        _url("documents"),
        {"title": "x", "version": "9", "language": "fr", "valid_from": "2025-01-01"},
    )
    assert response.status_code == 403
    assert services.consent_documents(ns_dupi).count() == 1


def test_the_subject_page_shows_an_assessment_made_by_no_user(client, claire, ns_dupi, tls):
    """Regression: an assessment recorded by the system (no user) made the page fail."""
    from trialdesk.screening.models import EligibilityAssessment

    subject = _subject(claire, ns_dupi, tls)
    EligibilityAssessment.objects.filter(subject=subject).update(assessed_by=None)
    client.force_login(claire)
    response = client.get(_url("subject", subject.subject_id))
    assert response.status_code == 200
    assert "<td>–</td>" in response.content.decode()
