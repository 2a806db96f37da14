"""The randomization, treatment, unblinding, schedule, worklist and pharmacy pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.randomization.trial_world import PERSONA_PASSWORD as PASSWORD
from trialdesk.audit.models import AuditEvent
from trialdesk.randomization.allocation import randomize
from trialdesk.randomization.models import Allocation, Dispensation, Kit
from trialdesk.screening.models import SubjectStatus

pytestmark = pytest.mark.django_db


def TODAY():  # noqa: N802 - reads like the constant it stands for
    return timezone.localdate()


def _url(name, *args):
    return reverse(f"randomization:{name}", args=["ns-dupi", *args])


def _page(response):
    return response.content.decode()


@pytest.fixture
def randomized(stocked, new_subject, claire):
    """A Toulouse subject randomized today (row 1: DUPI)."""
    subject = new_subject("TLS")
    randomize(subject, by=claire)
    return subject


def test_the_randomize_page_shows_the_checks_then_randomizes(client, stocked, new_subject, claire):
    subject = new_subject("TLS")
    client.force_login(claire)
    page = _page(client.get(_url("randomize", subject.subject_id)))
    assert 'data-testid="check-eligibility" data-ok="yes"' in page
    assert 'data-testid="randomize-form"' in page
    response = client.post(_url("randomize", subject.subject_id), {"d0_date": TODAY().isoformat()})
    assert response.status_code == 302
    assert response["Location"] == _url("treatment", subject.subject_id)
    treatment = _page(client.get(response["Location"]))
    assert "TLS-R001" in treatment
    assert "randomized: TLS-R001. Dispense kits" in treatment
    assert 'data-testid="arm"' not in treatment and "DUPI" not in treatment


def test_the_randomize_page_names_every_failed_check(client, stocked, new_subject, claire):
    subject = new_subject("TLS", consent=False, nasa_total=2)
    client.force_login(claire)
    page = _page(client.get(_url("randomize", subject.subject_id)))
    assert 'data-testid="check-eligibility" data-ok="no"' in page
    assert 'data-testid="check-consent" data-ok="no"' in page
    assert f"{subject.subject_id} has no valid signed consent" in page
    assert 'data-testid="randomize-form"' not in page
    response = client.post(_url("randomize", subject.subject_id), {"d0_date": TODAY().isoformat()})
    assert response.status_code == 400
    assert f"{subject.subject_id} is not eligible" in _page(response)
    assert not Allocation.objects.exists()


def test_a_malformed_date_is_named_and_nothing_is_written(client, stocked, new_subject, claire):
    subject = new_subject("TLS")
    client.force_login(claire)
    response = client.post(_url("randomize", subject.subject_id), {"d0_date": "2025-02-30"})
    assert response.status_code == 400
    assert "d0_date: &#x27;2025-02-30&#x27; is not a date" in _page(response)
    assert not Allocation.objects.exists()


def test_a_monitor_reads_but_may_not_randomize(client, stocked, new_subject, manon):
    subject = new_subject("TLS")
    client.force_login(manon)
    assert client.get(_url("randomize", subject.subject_id)).status_code == 200
    response = client.post(_url("randomize", subject.subject_id), {"d0_date": TODAY().isoformat()})
    assert response.status_code == 403
    assert not Allocation.objects.exists()


def test_paul_sees_nothing_of_toulouse(client, randomized, paul):
    client.force_login(paul)
    for name in ("randomize", "treatment", "schedule", "unblind"):
        assert client.get(_url(name, randomized.subject_id)).status_code == 404, name
    assert client.get(_url("pharmacy") + "?site=TLS").status_code == 404
    assert client.get(_url("worklist") + "?site=TLS").status_code == 404
    worklist = _page(client.get(_url("worklist")))
    assert randomized.subject_id not in worklist and "TLS" not in worklist.split("<main>")[1]
    pharmacy = _page(client.get(_url("pharmacy")))
    assert "NCK" in pharmacy and "TLS" not in pharmacy.split("<main>")[1]


def test_dispensing_a_dosing_visit_and_recording_the_injection(client, randomized, claire):
    client.force_login(claire)
    url = _url("treatment", randomized.subject_id)
    again = client.post(url, {"action": "dispense", "visit": "D0", "on": TODAY().isoformat()})
    assert again.status_code == 400 and "already received the kits of D0" in _page(again)
    response = client.post(url, {"action": "dispense", "visit": "W2", "on": TODAY().isoformat()})
    assert response.status_code == 302
    w2 = Dispensation.objects.get(subject=randomized, visit_code="W2")
    (kit,) = w2.kits.all()
    bad = client.post(
        url,
        {
            "action": "administer",
            "kit": kit.number,
            "given_on": TODAY().isoformat(),
            "given_time": "25:99",
            "injection_site": "thigh_left",
            "given_by": "claire",
        },
    )
    assert bad.status_code == 400 and "given_time: &#x27;25:99&#x27; is not a time" in _page(bad)
    ok = client.post(
        url,
        {
            "action": "administer",
            "kit": kit.number,
            "given_on": TODAY().isoformat(),
            "given_time": "09:30",
            "injection_site": "thigh_left",
            "given_by": "claire",
        },
    )
    assert ok.status_code == 302
    page = _page(client.get(url))
    assert "1/8 dosing visits, 1/9 units given" in page


def test_a_monitor_may_not_dispense(client, randomized, manon):
    client.force_login(manon)
    response = client.post(
        _url("treatment", randomized.subject_id),
        {"action": "dispense", "visit": "W2", "on": TODAY().isoformat()},
    )
    assert response.status_code == 403
    assert not Dispensation.objects.filter(visit_code="W2").exists()


def test_an_unknown_action_is_named(client, randomized, claire):
    client.force_login(claire)
    response = client.post(_url("treatment", randomized.subject_id), {"action": "explode"})
    assert response.status_code == 400
    assert "action: &#x27;explode&#x27; is not an action" in _page(response)


def test_emergency_unblinding_needs_an_investigator_a_reason_and_the_password(
    client, randomized, claire, ines, settings, django_capture_on_commit_callbacks
):
    settings.UNBLINDING_NOTIFY_EMAILS = ["unblinded-contact@sponsor.example"]
    client.force_login(claire)
    assert client.get(_url("unblind", randomized.subject_id)).status_code == 403
    client.force_login(ines)
    url = _url("unblind", randomized.subject_id)
    wrong = client.post(url, {"reason": "anaphylaxis", "password": "not my password"})
    assert wrong.status_code == 400
    assert "password: the password does not match" in _page(wrong)
    assert AuditEvent.objects.filter(action="randomization.unblind.refused").count() == 1
    assert not mail.outbox
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail leaves after commit
        with_reason = client.post(url, {"reason": "anaphylaxis at W2", "password": PASSWORD})
    assert with_reason.status_code == 200
    assert 'data-testid="arm">Dupilumab 300 mg (DUPI)' in _page(with_reason)
    (message,) = mail.outbox
    assert message.to == ["unblinded-contact@sponsor.example"]
    assert randomized.subject_id in message.body and "anaphylaxis at W2" in message.body
    assert "DUPI" not in message.body and "Dupilumab" not in message.body
    # From now on the investigator sees this subject's arm; the coordinator still does not.
    assert 'data-testid="arm"' in _page(client.get(_url("treatment", randomized.subject_id)))
    client.force_login(claire)
    treatment = _page(client.get(_url("treatment", randomized.subject_id)))
    assert 'data-testid="unblinded-flag"' in treatment and 'data-testid="arm"' not in treatment


def test_the_schedule_page_records_visits_deviations_and_withdrawal(
    client, stocked, new_subject, claire
):
    subject = new_subject("TLS")
    d0 = TODAY() - dt.timedelta(days=30)
    randomize(subject, by=claire, on=d0)
    client.force_login(claire)
    url = _url("schedule", subject.subject_id)
    page = _page(client.get(url))
    assert 'data-testid="visit-D0" data-state="done"' in page
    assert 'data-testid="visit-W2" data-state="overdue"' in page
    late = client.post(
        url, {"action": "done", "visit": "W2", "done_on": (d0 + dt.timedelta(days=20)).isoformat()}
    )
    assert late.status_code == 302
    page = _page(client.get(url))
    assert 'data-testid="visit-W2" data-state="done_out_of_window"' in page
    assert "W2 done on" in page and "3 day(s) after its window" in page
    missed = client.post(url, {"action": "missed", "visit": "W4", "reason": ""})
    assert missed.status_code == 400 and "reason: a reason is required" in _page(missed)
    client.post(url, {"action": "missed", "visit": "W4", "reason": "in hospital"})
    gone = client.post(
        url,
        {
            "action": "discontinue",
            "kind": "withdrawn",
            "on": TODAY().isoformat(),
            "reason": "moved abroad",
        },
    )
    assert gone.status_code == 302
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.WITHDRAWN
    assert 'data-testid="discontinuation"' in _page(client.get(url))


def test_the_worklist_shows_overdue_and_missed_visits_of_my_sites(
    client, stocked, new_subject, claire
):
    early = new_subject("TLS")
    randomize(early, by=claire, on=TODAY() - dt.timedelta(days=30))
    client.force_login(claire)
    client.post(
        _url("schedule", early.subject_id), {"action": "missed", "visit": "W2", "reason": "flu"}
    )
    page = _page(client.get(_url("worklist")))
    assert f'data-testid="work-{early.subject_id}-W2" data-state="missed"' in page
    assert f'data-testid="work-{early.subject_id}-W4" data-state="due"' in page
    today = randomize(new_subject("TLS"), by=claire)
    assert f"work-{today.subject_id}-W2" not in page


def test_the_pharmacist_sees_stock_by_arm_receives_and_destroys(
    client, stocked, pierre, claire, ns_dupi
):
    from trialdesk.randomization.models import SealedKit

    client.force_login(claire)
    blinded = _page(client.get(_url("pharmacy") + "?site=TLS"))
    assert 'data-testid="stock-by-arm"' not in blinded and "DUPI" not in blinded
    assert (
        client.post(
            _url("pharmacy"),
            {"action": "receive", "site": "TLS", "kits": "1", "expiry": "2030-01-01"},
        ).status_code
        == 403
    )
    client.force_login(pierre)
    page = _page(client.get(_url("pharmacy") + "?site=TLS"))
    assert 'data-testid="stock-by-arm"' in page and "Dupilumab 300 mg 12" in page
    received = set(Kit.objects.values_list("number", flat=True))
    spare = SealedKit.objects.exclude(kit_number__in=received).values_list("kit_number", flat=True)[
        :2
    ]
    bad = client.post(
        _url("pharmacy"),
        {"action": "receive", "site": "TLS", "kits": f"{spare[0]} x12", "expiry": "2030-01-01"},
    )
    assert bad.status_code == 400 and "kits: &#x27;x12&#x27; is not a kit number" in _page(bad)
    ok = client.post(
        _url("pharmacy"),
        {
            "action": "receive",
            "site": "TLS",
            "kits": f"{spare[0]}, {spare[1]}",
            "expiry": "2030-01-01",
        },
    )
    assert ok.status_code == 302
    assert Kit.objects.filter(number__in=list(spare), site__code="TLS").count() == 2
    gone = client.post(
        _url("pharmacy"), {"action": "destroy", "site": "TLS", "kit": spare[0], "reason": "dropped"}
    )
    assert gone.status_code == 302
    assert Kit.objects.get(number=spare[0]).status == "destroyed"


def test_the_unblinding_page_counts_for_the_dsmb(client, randomized, ines, sophie):
    client.force_login(ines)
    client.post(_url("unblind", randomized.subject_id), {"reason": "SAE", "password": PASSWORD})
    client.force_login(sophie)
    page = _page(client.get(_url("unblindings")))
    assert 'data-testid="unblinding-total">1<' in page
    assert "DUPI" not in page and "Dupilumab" not in page


def test_low_stock_warns_on_the_worklist(client, ns_dupi, sealed, new_subject, claire):
    from tests.randomization.trial_world import receive_all

    receive_all(ns_dupi, "TLS", 2)  # below the study's warning level (3 kits of an arm)
    client.force_login(claire)
    page = _page(client.get(_url("worklist")))
    assert 'data-testid="low-stock-TLS"' in page
    receive_all(ns_dupi, "TLS", 1)
    assert 'data-testid="low-stock-TLS"' not in _page(client.get(_url("worklist")))


def test_the_pages_speak_french(client, stocked, new_subject, claire):
    subject = new_subject("TLS")
    client.force_login(claire)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    page = _page(client.get(_url("randomize", subject.subject_id)))
    assert "Vérifications" in page and "Consentement signé valide" in page and "Randomiser" in page
    client.post(_url("randomize", subject.subject_id), {"d0_date": TODAY().isoformat()})
    treatment = _page(client.get(_url("treatment", subject.subject_id)))
    assert "Numéro de randomisation" in treatment and "randomisé : TLS-R001" in treatment
    assert "Visites d'administration" in treatment and "Semaine 2" in treatment
    schedule = _page(client.get(_url("schedule", subject.subject_id)))
    assert "Calendrier des visites" in schedule and "à venir" in schedule
    assert "Liste de travail" in _page(client.get(_url("worklist")))


def test_the_cohort_has_no_randomization_pages(client, studies, claire):
    client.force_login(claire)
    for name in ("pharmacy", "unblindings"):
        assert client.get(reverse(f"randomization:{name}", args=["ns-cohort"])).status_code == 404
    assert client.get(reverse("randomization:worklist", args=["ns-cohort"])).status_code == 200
