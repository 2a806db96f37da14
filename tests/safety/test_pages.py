"""Safety pages: worklist of SAE clocks and alerts, a subject's AEs and labs; cross-site 404,
role 403, blind by construction, French."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.safety.safety_data import ae_data, lab_data, serious
from trialdesk.capture.records import save_form
from trialdesk.randomization.allocation import randomize
from trialdesk.safety.models import LabAlert, SaeReport

pytestmark = pytest.mark.django_db


def _ae(subject, by, data):
    return save_form(subject, "AE", data, by=by, visit_code="W2").record


def _lab(subject, by, visit, on, **values):
    return save_form(subject, "LAB", lab_data(on, **values), by=by, visit_code=visit).record


def test_the_worklist_shows_the_open_sae_clocks_and_alerts_of_my_site(
    client, subject, paris_subject, claire, paul, d0
):
    _ae(subject, claire, ae_data("Pneumonia", **serious()))
    _ae(paris_subject, paul, ae_data("Sepsis", **serious()))
    _lab(subject, claire, "D0", d0, NEUT=(0.4, "10^9/L", 1.8, 7.5))
    client.force_login(claire)
    page = client.get(reverse("safety:worklist", args=["ns-dupi"]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Pneumonia" in text and "Sepsis" not in text
    assert re.search(r'data-testid="time-left">2[34]\.\d h<', text)
    assert f'data-testid="alert-{subject.subject_id}-NEUT"' in text
    assert f'data-testid="sae-{paris_subject.subject_id}"' not in text


def test_the_site_records_the_report_from_the_worklist(client, subject, claire, paul):
    _ae(subject, claire, ae_data("Pneumonia", **serious()))
    report = SaeReport.objects.get()
    url = reverse("safety:sae_reported", args=["ns-dupi", report.pk])
    client.force_login(paul)
    assert client.post(url).status_code == 404
    client.force_login(claire)
    assert client.post(url).status_code == 302
    report.refresh_from_db()
    assert report.reported_by == claire
    page = client.get(reverse("safety:worklist", args=["ns-dupi"]))
    assert "Pneumonia" not in page.content.decode()


def test_only_an_investigator_of_the_site_acknowledges_an_alert(client, subject, claire, ines, d0):
    _lab(subject, claire, "D0", d0, NEUT=(0.4, "10^9/L", 1.8, 7.5))
    alert = LabAlert.objects.get()
    url = reverse("safety:acknowledge", args=["ns-dupi", alert.pk])
    client.force_login(claire)
    assert client.post(url).status_code == 403
    client.force_login(ines)
    assert client.post(url, {"back": "alerts"})["Location"].endswith("/safety/alerts/")
    assert LabAlert.objects.get().acknowledged_by == ines


def test_subject_pages_are_404_across_sites(client, subject, paul):
    client.force_login(paul)
    for name in ("safety:adverse_events", "safety:labs"):
        assert client.get(reverse(name, args=["ns-dupi", subject.subject_id])).status_code == 404
    assert client.get(reverse("safety:worklist", args=["ns-dupi"]) + "?site=TLS").status_code == 404


def test_the_lab_page_shows_flags_grades_and_units(client, subject, claire, manon, d0):
    _lab(subject, claire, "D0", d0, CREAT=(1.2, "mg/dL", 0.6, 1.1), HGB=(95, "g/L", 130, 170))
    client.force_login(manon)
    text = client.get(reverse("safety:labs", args=["ns-dupi", subject.subject_id])).content.decode()
    creat = text[text.index('data-testid="lab-D0-CREAT"') :]
    assert "1.2 mg/dL" in creat and "106.104 umol/L" in creat
    assert '<td data-testid="flag">High</td>' in creat
    assert '<td data-testid="grade">1</td>' in creat
    hgb = text[text.index('data-testid="lab-D0-HGB"') :]
    assert "9.5 g/dL" in hgb and '<td data-testid="grade">2</td>' in hgb


def test_the_ae_page_in_french(client, subject, claire):
    _ae(subject, claire, ae_data("Conjonctivite", ae_aesi=None, ae_severity="moderate"))
    client.force_login(claire)
    client.cookies["django_language"] = "fr"
    text = client.get(
        reverse("safety:adverse_events", args=["ns-dupi", subject.subject_id]),
        HTTP_ACCEPT_LANGUAGE="fr",
    ).content.decode()
    assert "Modérée" in text
    assert "Conjonctivite, kératite ou blépharite" in text
    assert "Événements indésirables" in text


def _normalized(text, subject):
    text = text.replace(subject.subject_id, "SUBJECT")
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", text)
    return re.sub(r"/(safety/(sae|alerts)/)\d+/", r"/\1N/", text)


def test_pages_are_identical_for_subjects_in_different_arms(
    client, stocked, new_subject, claire, d0
):
    """TLS rows 1 and 2 are DUPI and PBO (trial_world): same data, same pages."""
    first, second = new_subject("TLS"), new_subject("TLS")
    for subject in (first, second):
        randomize(subject, by=claire, on=d0)
        _ae(subject, claire, ae_data("Headache", "2025-01-10"))
        _lab(subject, claire, "D0", d0, ALT=(30, "U/L", None, 40))
    client.force_login(claire)
    for name in ("safety:adverse_events", "safety:labs"):
        pages = [
            _normalized(
                client.get(reverse(name, args=["ns-dupi", s.subject_id])).content.decode(), s
            )
            for s in (first, second)
        ]
        assert pages[0] == pages[1]
        assert "DUPI" not in pages[0] and "PBO" not in pages[0] and "Placebo" not in pages[0]


def test_data_managers_add_reference_ranges_others_read_them(client, subject, diane, claire):
    url = reverse("safety:reference_ranges", args=["ns-dupi"])
    good = {
        "site": "TLS",
        "lab_name": "CHU",
        "test": "HGB",
        "unit": "g/dL",
        "lln": "12,0",
        "uln": "16",
        "sex": "F",
        "age_min": "",
        "age_max": "",
        "valid_from": "2020-01-01",
    }
    client.force_login(claire)
    assert client.post(url, good).status_code == 403
    client.force_login(diane)
    refused = client.post(url, {**good, "lln": "17"})
    assert refused.status_code == 400 and "lln: 17 is above uln=16" in refused.content.decode()
    assert client.post(url, {**good, "unit": "mg/dL"}).status_code == 400
    assert client.post(url, good).status_code == 302
    client.force_login(claire)
    page = client.get(url).content.decode()
    assert "CHU" in page and "12.0" in page and "Add a reference range" not in page


def test_the_home_page_links_to_the_safety_pages(client, claire, studies):
    client.force_login(claire)
    page = client.get(reverse("home")).content.decode()
    assert reverse("safety:worklist", args=["ns-dupi"]) in page
