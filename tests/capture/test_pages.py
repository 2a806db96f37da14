"""The case report form pages: rendered from the study file, saves, refusals, roles, blinding."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from tests.capture.forms_data import form_values
from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.capture import locks
from trialdesk.capture.models import FormRecord, Query, Signature
from trialdesk.capture.records import save_form, values_of
from trialdesk.protocol import load_study, resolve_study_path
from trialdesk.randomization.models import Allocation

pytestmark = pytest.mark.django_db

NS_DUPI = load_study(resolve_study_path("ns-dupi"))
DLQI = {f"dlqi_q{i}": "1" for i in range(1, 11)}


def _form_url(subject, visit, form):
    return reverse("capture:form", args=["ns-dupi", subject.subject_id, visit, form])


def _casebook_url(subject):
    return reverse("capture:casebook", args=["ns-dupi", subject.subject_id])


def _page(response):
    return response.content.decode()


def _post_values(data):
    """Form-page fields from JSON values (booleans as true/false)."""
    return {
        key: ("true" if value is True else "false" if value is False else value)
        for key, value in data.items()
    }


def test_every_form_renders_from_the_study_file_and_saves(client, subject, claire, d0):
    """Generated from the study file: every item of every form is on its page, and a post of
    valid values saves them."""
    client.force_login(claire)
    for form in NS_DUPI.forms:
        visits = NS_DUPI.visits_of(form.code)
        if not visits:
            continue
        if form.repeating:
            url = reverse("capture:new_record", args=["ns-dupi", subject.subject_id, form.code])
            url += f"?visit={visits[0].code}"
        else:
            url = _form_url(subject, visits[0].code, form.code)
        page = _page(client.get(url))
        for item in form.items:
            assert f'data-testid="item-{item.code}"' in page, (form.code, item.code)
            assert escape(item.label.en) in page
            if item.unit:
                assert item.unit in page
        data = _post_values(form_values(NS_DUPI, form, d0))
        response = client.post(url, {"action": "save", "complete": "on", **data})
        assert response.status_code == 302, (form.code, _page(response)[:3000])
        record = FormRecord.objects.filter(subject=subject, form=form.code).latest("id")
        assert record.status == "complete"
        values = values_of(record)
        for code, raw in form_values(NS_DUPI, form, d0).items():
            assert values[code] == NS_DUPI.parse_value(form.code, code, raw), (form.code, code)


def test_the_form_page_is_in_french_with_units_and_ranges(client, subject, claire):
    client.force_login(claire)
    client.cookies["django_language"] = "fr"
    page = _page(client.get(_form_url(subject, "D0", "TEWL"), HTTP_ACCEPT_LANGUAGE="fr"))
    assert escape(NS_DUPI.form("TEWL").label.fr) in page
    item = NS_DUPI.item("TEWL", "tewl_value")
    assert escape(item.label.fr) in page and item.unit in page
    assert 'data-testid="range-tewl_value"' in page
    assert "Enregistrer" in page and "Non fait / inconnu" in page
    casebook = _page(client.get(_casebook_url(subject), HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Cahier d" in casebook and "Non commencé" in casebook


def test_a_range_check_refuses_the_save_naming_the_item(client, subject, claire):
    client.force_login(claire)
    response = client.post(_form_url(subject, "D0", "NASA"), {"action": "save", "nasa_total": "13"})
    assert response.status_code == 400
    page = _page(response)
    assert 'data-field="nasa_total"' in page and "13" in page
    assert not FormRecord.objects.exists()


def test_a_soft_check_saves_and_shows_a_query(client, subject, claire):
    client.force_login(claire)
    response = client.post(_form_url(subject, "D0", "NASA"), {"action": "save", "nasa_total": "4"})
    assert response.status_code == 302
    assert Query.objects.filter(check_id="NASA_D0_BELOW_INCLUSION").exists()
    page = _page(client.get(response["Location"]))
    assert 'data-testid="query" data-status="open" data-item="nasa_total"' in page


def test_a_change_without_reason_is_refused_then_saved_with_one(client, subject, claire):
    client.force_login(claire)
    url = _form_url(subject, "D0", "DLQI")
    client.post(url, {"action": "save", **DLQI})
    response = client.post(url, {"action": "save", **DLQI, "dlqi_q1": "3"})
    assert response.status_code == 400 and 'data-field="reason"' in _page(response)
    response = client.post(url, {"action": "save", **DLQI, "dlqi_q1": "3", "reason": "typo"})
    assert response.status_code == 302
    assert values_of(FormRecord.objects.get(form="DLQI"))["dlqi_total"] == 12


def test_monitor_verifies_and_raises_a_query_site_answers(client, subject, claire, manon):
    record = save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record
    url = _form_url(subject, "D0", "DLQI")
    client.force_login(manon)
    page = _page(client.get(url))
    assert 'data-testid="monitor"' in page and 'data-testid="save"' not in page
    client.post(url, {"action": "verify_item", "item": "dlqi_q1"})
    client.post(url, {"action": "raise_query", "item": "dlqi_q2", "text": "Source says 2"})
    assert record.values.get(item="dlqi_q1").verified_at is not None
    query = Query.objects.get(record=record)
    client.force_login(claire)
    page = _page(client.get(url))
    assert 'data-testid="monitor"' not in page
    client.cookies["django_language"] = "fr"
    french = _page(client.get(url, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "dlqi_q2</strong> · Ouverte ·" in french  # one query: singular, not the column's plural
    del client.cookies["django_language"]
    client.post(url, {"action": "answer", "query": query.pk, "text": "corrected"})
    query.refresh_from_db()
    assert query.status == "answered"
    client.force_login(manon)
    client.post(url, {"action": "close", "query": query.pk})
    client.post(url, {"action": "verify_form"})
    query.refresh_from_db()
    record.refresh_from_db()
    assert query.status == "closed" and record.status == "verified"


def test_the_coordinator_cannot_verify(client, subject, claire):
    save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True)
    client.force_login(claire)
    response = client.post(_form_url(subject, "D0", "DLQI"), {"action": "verify_form"})
    assert response.status_code == 403


def test_the_investigator_signs_and_a_change_shows_the_signature_invalid(
    client, subject, claire, ines
):
    save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True)
    client.force_login(ines)
    sign_url = reverse("capture:sign", args=["ns-dupi", subject.subject_id]) + "?visit=D0"
    page = _page(client.get(sign_url))
    assert "complete and accurate" in page
    assert client.post(sign_url, {"password": "wrong"}).status_code == 400
    assert client.post(sign_url, {"password": PERSONA_PASSWORD}).status_code == 302
    assert 'data-testid="signed-D0"' in _page(client.get(_casebook_url(subject)))
    save_form(subject, "DLQI", {"dlqi_q1": 3}, by=claire, visit_code="D0", reason="typo")
    page = _page(client.get(_casebook_url(subject)))
    assert 'data-testid="signature" data-valid="no"' in page
    assert 'data-testid="signed-D0"' not in page
    client.force_login(claire)
    assert client.get(sign_url).status_code == 403
    assert Signature.objects.count() == 1


def test_a_locked_form_refuses_the_page_write(client, subject, claire, diane):
    record = save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record
    client.force_login(diane)
    url = _form_url(subject, "D0", "DLQI")
    client.post(url, {"action": "lock"})
    record.refresh_from_db()
    assert record.status == "locked"
    client.force_login(claire)
    page = _page(client.get(url))
    assert 'data-testid="locked"' in page and 'data-testid="save"' not in page
    response = client.post(url, {"action": "save", **DLQI, "dlqi_q1": "3", "reason": "x"})
    assert response.status_code == 400 and 'data-field="record"' in _page(response)
    assert values_of(record)["dlqi_q1"] == 1


def test_the_data_management_page_counts_queries_and_locks(client, subject, claire, diane):
    save_form(subject, "NASA", {"nasa_total": 4}, by=claire, visit_code="D0")
    client.force_login(diane)
    url = reverse("capture:data_management", args=["ns-dupi"])
    page = _page(client.get(url))
    assert 'data-testid="counts-TLS"' in page and 'data-testid="counts-NCK"' in page
    assert "NASA" in page
    locked = client.post(
        url, {"action": "lock_subject", "subject": subject.subject_id, "reason": "clean"}, follow=True
    )
    assert f"Casebook of {subject.subject_id} locked." in _page(locked)
    lock = locks.active_lock("subject", study=subject.study, subject=subject)
    assert lock is not None
    unlocked = client.post(url, {"action": "unlock", "lock": lock.pk, "reason": "query"}, follow=True)
    assert f"Unlocked: subject lock #{lock.pk}." in _page(unlocked)
    assert locks.active_lock("subject", study=subject.study, subject=subject) is None
    client.force_login(claire)
    assert client.post(url, {"action": "lock_study"}).status_code == 403


def test_paul_sees_nothing_of_toulouse(client, subject, claire, paul):
    record = save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record
    client.force_login(paul)
    urls = [
        _casebook_url(subject),
        _form_url(subject, "D0", "DLQI"),
        reverse("capture:sign", args=["ns-dupi", subject.subject_id]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(_form_url(subject, "D0", "DLQI"), {"action": "save"}).status_code == 404
    page = _page(client.get(reverse("capture:data_management", args=["ns-dupi"])))
    assert "counts-TLS" not in page and subject.subject_id not in page
    assert record.pk


@pytest.mark.parametrize("persona", ["claire", "manon", "ines", "diane", "simon", "sophie"])
def test_blinded_roles_pages_carry_no_arm(client, request, subject, claire, persona):
    user = request.getfixturevalue(persona)
    save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True)
    assert Allocation.objects.filter(subject=subject).exists()
    names = [text for arm in NS_DUPI.arms for text in (arm.name.en, arm.name.fr)]
    codes = re.compile(r"(?<![-\w])(" + "|".join(arm.code for arm in NS_DUPI.arms) + r")(?![-\w])")
    client.force_login(user)
    urls = [
        _casebook_url(subject),
        _form_url(subject, "D0", "DLQI"),
        reverse("capture:data_management", args=["ns-dupi"]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        page = _page(response)
        assert not codes.search(page), url
        assert not [name for name in names if escape(name) in page], url


def test_item_level_sdv_and_query_buttons(client, subject, claire, manon):
    record = save_form(subject, "DLQI", DLQI, by=claire, visit_code="D0", complete=True).record
    url = _form_url(subject, "D0", "DLQI")
    client.force_login(manon)
    page = _page(client.get(url))
    assert 'data-testid="sdv-dlqi_q4"' in page and 'data-testid="sdv-dlqi_total"' not in page
    client.post(url, {"action": "save", "sdv_item": "dlqi_q4"})
    client.post(url, {"action": "save", "query_item": "dlqi_q5", "query__dlqi_q5": "Source: 2"})
    assert record.values.get(item="dlqi_q4").verified_at is not None
    assert Query.objects.get(record=record).item == "dlqi_q5"
    page = _page(client.get(url))
    assert 'data-testid="verified-dlqi_q4"' in page and 'data-testid="queries-dlqi_q5"' in page


def test_a_hard_check_refusal_is_in_the_pages_language(client, subject, claire, d0):
    client.force_login(claire)
    url = reverse("capture:new_record", args=["ns-dupi", subject.subject_id, "AE"]) + "?visit=W2"
    data = {"action": "save", "ae_term": "Rash", "ae_start_date": d0.isoformat()}
    data["ae_end_date"] = "2000-01-01"
    response = client.post(url, data, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    message = NS_DUPI.edit_check("AE_END_BEFORE_START").message
    page = _page(response)
    assert 'data-field="ae_end_date"' in page and "2000-01-01" in page
    assert escape(message.fr) in page or message.fr in page
    assert 'value="Rash"' in page


def test_the_casebook_counts_repeating_records_per_visit(client, subject, claire):
    save_form(subject, "CM", {"cm_name": "Emollient"}, by=claire, visit_code="W2")
    client.force_login(claire)
    page = _page(client.get(_casebook_url(subject)))
    w2 = page.split('data-testid="cell-W2-CM"')[1].split("</li>")[0]
    d0 = page.split('data-testid="cell-D0-CM"')[1].split("</li>")[0]
    assert "1 record(s)" in " ".join(w2.split()) and "0 record(s)" in " ".join(d0.split())


NS_COHORT = load_study(resolve_study_path("ns-cohort"))


def test_every_cohort_form_renders_and_saves_through_its_page(client, studies, claire):
    """The observational cohort uses the same pages: enrolment form, then every visit form."""
    import datetime as dt

    from trialdesk.capture.cohort import enrol

    cohort = studies["ns-cohort"]
    on = dt.date(2025, 1, 6)
    data = form_values(NS_COHORT, NS_COHORT.form("ENROLMENT"), on)
    data["birth_date"] = "2018-05-01"
    subject = enrol(cohort, cohort.sites.get(code="TLS"), data, by=claire)
    client.force_login(claire)
    enrolment = _page(
        client.get(reverse("capture:enrolment", args=["ns-cohort", subject.subject_id]))
    )
    assert 'data-testid="item-enrolment_date"' in enrolment
    for form in NS_COHORT.forms:
        visits = NS_COHORT.visits_of(form.code)
        if not visits:
            continue
        args = ["ns-cohort", subject.subject_id]
        if form.repeating:
            url = (
                reverse("capture:new_record", args=[*args, form.code]) + f"?visit={visits[0].code}"
            )
        else:
            url = reverse("capture:form", args=[*args, visits[0].code, form.code])
        page = _page(client.get(url))
        for item in form.items:
            assert f'data-testid="item-{item.code}"' in page, (form.code, item.code)
        posted = _post_values(form_values(NS_COHORT, form, on))
        response = client.post(url, {"action": "save", "complete": "on", **posted})
        assert response.status_code == 302, (form.code, _page(response)[:2000])
    assert FormRecord.objects.filter(subject=subject).count() == 1 + len(
        [f for f in NS_COHORT.forms if NS_COHORT.visits_of(f.code)]
    )


def test_a_coordinator_enrols_a_cohort_subject_through_the_page(client, studies, claire, paul):
    import datetime as dt

    url = reverse("capture:enrol", args=["ns-cohort"])
    client.force_login(claire)
    page = _page(client.get(url))
    assert 'data-testid="item-enrolment_date"' in page and 'value="NCK"' not in page
    data = _post_values(form_values(NS_COHORT, NS_COHORT.form("ENROLMENT"), dt.date(2025, 1, 6)))
    data["birth_date"] = "2018-05-01"
    refused = client.post(url, {**data, "site": "NCK"})
    assert refused.status_code == 400 and 'data-field="site"' in _page(refused)
    response = client.post(url, {**data, "site": "TLS"})
    assert response.status_code == 302
    assert response["Location"] == reverse("capture:casebook", args=["ns-cohort", "TLS-001"])
    assert 'data-testid="visit-BL"' in _page(client.get(response["Location"]))
    assert client.get(reverse("capture:enrol", args=["ns-dupi"])).status_code == 404
