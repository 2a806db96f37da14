"""Adverse events from the AE form: fields, partial dates, AESI, the SAE clock and its e-mail,
skin infections recorded once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import transaction

from tests.safety.safety_data import ae_data, infection_data, serious
from trialdesk.audit.models import AuditEvent
from trialdesk.capture.records import save_form
from trialdesk.safety import services
from trialdesk.safety.models import AdverseEvent, AeOrigin, SaeReport, SkinInfection


def _save_ae(subject, by, data, number=None, reason=""):
    return save_form(
        subject, "AE", data, by=by, visit_code="W2", number=number, reason=reason
    ).record


def test_the_ae_form_makes_one_adverse_event_with_its_answers(subject, claire):
    data = ae_data(
        "Headache",
        "2025-03",
        ae_ongoing=False,
        ae_end_date="2025-04-02",
        ae_severity="moderate",
        ae_relationship="possible",
        ae_action="interrupted",
        ae_outcome="recovered",
    )
    record = _save_ae(subject, claire, data)
    event = AdverseEvent.objects.get()
    assert event.record == record and event.origin == AeOrigin.AE_FORM
    assert (event.term, event.start, event.end) == ("Headache", "2025-03", "2025-04-02")
    assert (event.start_earliest, event.start_latest) == (dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    assert event.end_earliest == event.end_latest == dt.date(2025, 4, 2)
    assert (event.severity, event.relationship, event.action, event.outcome) == (
        "moderate",
        "possible",
        "interrupted",
        "recovered",
    )
    assert event.serious is False and event.seriousness_criteria == []
    assert not SaeReport.objects.exists()
    assert AuditEvent.objects.filter(action="safety.ae.create", entity_id=str(event.pk)).exists()


def test_a_change_updates_the_same_event_and_is_audited(subject, claire):
    record = _save_ae(subject, claire, ae_data("Headache"))
    _save_ae(subject, claire, {"ae_term": "Migraine"}, number=record.number, reason="typo")
    event = AdverseEvent.objects.get()
    assert event.term == "Migraine"
    change = AuditEvent.objects.get(action="safety.ae.change")
    assert '"term":["Headache","Migraine"]' in change.changes


def test_a_serious_event_starts_a_24_hour_clock_and_mails_the_safety_contact_after_commit(
    subject, claire, safety_email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
    report = SaeReport.objects.get()
    assert report.due_at - report.clock_started_at == dt.timedelta(hours=24)
    assert report.adverse_event.seriousness_criteria == ["sae_hospitalisation"]
    assert report.is_open and report.notified_to == safety_email
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == safety_email
    assert subject.subject_id in message.subject and "Pneumonia" in message.subject
    assert "sae_hospitalisation" in message.body
    assert "DUPI" not in message.body and "PBO" not in message.body
    assert AuditEvent.objects.filter(action="safety.sae.clock_started").count() == 1


def test_nothing_is_mailed_before_the_commit(subject, claire, safety_email):
    _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
    assert SaeReport.objects.count() == 1
    assert mail.outbox == []


def test_a_rolled_back_save_starts_no_clock_and_mails_nobody(
    subject, claire, safety_email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
            raise RuntimeError("the page failed after the save")
    assert callbacks == []
    assert mail.outbox == []
    assert not SaeReport.objects.exists() and not AdverseEvent.objects.exists()


def test_a_receiver_failure_rolls_the_form_save_back(subject, claire, monkeypatch):
    from trialdesk.capture.models import FormRecord

    def broken(*args, **kwargs):
        raise RuntimeError("safety failed")

    monkeypatch.setattr(services, "_sync_sae_clock", broken)
    with pytest.raises(RuntimeError):
        _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
    assert not FormRecord.objects.filter(form="AE").exists()


def test_correcting_to_non_serious_withdraws_the_clock_and_back_reinstates_it(
    subject, claire, safety_email, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record = _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
        not_serious = {"ae_serious": False, "sae_hospitalisation": False}
        _save_ae(subject, claire, not_serious, number=record.number, reason="not hospitalised")
        report = SaeReport.objects.get()
        assert report.withdrawn_at is not None and not report.is_open
        _save_ae(subject, claire, serious(), number=record.number, reason="was hospitalised")
    report.refresh_from_db()
    assert report.is_open
    assert SaeReport.objects.count() == 1 and len(mail.outbox) == 1


def test_the_site_records_the_report_once(subject, claire, paul):
    _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
    report = SaeReport.objects.get()
    with pytest.raises(services.SafetyNotAllowed):
        services.mark_sae_reported(report, by=paul)
    services.mark_sae_reported(report, by=claire)
    report.refresh_from_db()
    assert report.reported_at is not None and report.reported_by == claire and not report.is_open
    with pytest.raises(services.SafetyError, match="already recorded as reported"):
        services.mark_sae_reported(report, by=claire)
    event = AuditEvent.objects.get(action="safety.sae.reported")
    assert '"late":false' in event.changes


def test_the_open_clocks_are_those_of_visible_sites(subject, paris_subject, claire, paul, diane):
    _save_ae(subject, claire, ae_data("Pneumonia", **serious()))
    _save_ae(paris_subject, paul, ae_data("Sepsis", **serious()))
    study = subject.study
    assert [r.adverse_event.term for r in services.sae_clocks(claire, study)] == ["Pneumonia"]
    assert [r.adverse_event.term for r in services.sae_clocks(paul, study)] == ["Sepsis"]
    assert len(services.sae_clocks(diane, study)) == 2
    assert services.time_left(services.sae_clocks(claire, study)[0]) > dt.timedelta(hours=23)


def test_the_aesi_is_suggested_from_the_term_and_the_investigator_answer_wins(subject, claire):
    unanswered = ae_data("Conjonctivite", ae_aesi=None)
    _save_ae(subject, claire, unanswered)
    event = AdverseEvent.objects.get()
    assert event.aesi is None and event.aesi_suggested == "conjunctivitis"
    assert event.is_aesi and event.aesi_code == "conjunctivitis"
    _save_ae(subject, claire, {"ae_aesi": False}, number=event.record.number, reason="review")
    event.refresh_from_db()
    assert event.aesi_suggested == "conjunctivitis" and not event.is_aesi and event.aesi_code == ""


def test_the_investigator_may_flag_what_the_keywords_miss(subject, claire):
    _save_ae(subject, claire, ae_data("Red eye", ae_aesi=True, ae_aesi_category="conjunctivitis"))
    event = AdverseEvent.objects.get()
    assert event.aesi_suggested == "" and event.is_aesi and event.aesi_code == "conjunctivitis"


def _save_infection(subject, by, data, number=None, reason=""):
    return save_form(
        subject, "INFECT_LOG", data, by=by, visit_code="W2", number=number, reason=reason
    ).record


def test_a_skin_infection_alone_is_one_adverse_event(subject, claire):
    record = _save_infection(subject, claire, infection_data("2025-01-10"))
    infection = SkinInfection.objects.get()
    event = AdverseEvent.objects.get()
    assert infection.record == record and infection.adverse_event == event
    assert event.origin == AeOrigin.INFECTION_LOG and event.record is None
    assert event.term == "Skin infection (bacterial)" and event.start == "2025-01-10"
    assert event.aesi_code == "skin_infection"
    _save_infection(subject, claire, {"infection_type": "viral"}, number=1, reason="typo")
    event.refresh_from_db()
    assert AdverseEvent.objects.count() == 1 and event.term == "Skin infection (viral)"


def test_the_ae_form_adopts_the_event_of_the_infection_log(subject, claire):
    _save_infection(subject, claire, infection_data("2025-01-10"))
    record = _save_ae(
        subject,
        claire,
        ae_data("Impetigo", "2025-01-10", ae_aesi=True, ae_aesi_category="skin_infection"),
    )
    event = AdverseEvent.objects.get()
    assert event.record == record and event.origin == AeOrigin.AE_FORM
    assert event.term == "Impetigo" and event.skin_infection.record.form == "INFECT_LOG"
    assert AuditEvent.objects.filter(
        action="safety.ae.change", changes__contains='"adopted_from_infection_log":true'
    ).exists()


def test_an_infection_logged_after_its_ae_links_to_it(subject, claire):
    _save_ae(subject, claire, ae_data("Impétigo", "2025-01"))
    _save_ae(subject, claire, ae_data("Headache", "2025-01-10"))
    _save_infection(subject, claire, infection_data("2025-01-10"))
    assert AdverseEvent.objects.count() == 2
    infection = SkinInfection.objects.get()
    assert infection.adverse_event.term == "Impétigo"


def test_two_infections_are_two_events_and_an_unrelated_ae_is_not_taken(subject, claire):
    _save_ae(subject, claire, ae_data("Impetigo", "2024-06-01"))
    _save_infection(subject, claire, infection_data("2025-01-10"))
    _save_infection(subject, claire, infection_data("2025-01-10", "viral"))
    assert SkinInfection.objects.count() == 2
    assert AdverseEvent.objects.count() == 3
    assert AdverseEvent.objects.filter(origin=AeOrigin.INFECTION_LOG).count() == 2
