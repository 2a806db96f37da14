"""Screening, re-assessment, screen failure and consent services: rules, audit, access."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from tests.screening.screening_data import eligible_data
from trialdesk.audit.models import AuditEvent
from trialdesk.screening import services
from trialdesk.screening.models import (
    ConsentRecord,
    EligibilityAssessment,
    IdentityRecord,
    Outcome,
    ScreeningEntry,
    Subject,
    SubjectStatus,
)
from trialdesk.screening.services import ScreeningError, ScreeningPermissionDenied

pytestmark = pytest.mark.django_db

IDENTITY = {
    "first_name": "Jeanne",
    "last_name": "Durand",
    "phone": "0600000000",
    "email": "jeanne.durand@example.org",
}


def _signed(day="2025-03-15", time="10:30"):
    return timezone.make_aware(dt.datetime.fromisoformat(f"{day}T{time}"))


def _actions(entity):
    return list(
        AuditEvent.objects.filter(
            entity_type=entity._meta.label_lower, entity_id=str(entity.pk)
        ).values_list("action", flat=True)
    )


def test_screening_creates_a_log_entry_a_subject_an_identity_and_an_assessment(
    claire, ns_dupi, tls
):
    result = services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY)
    entry, subject = result.entry, result.subject
    assert (entry.screening_number, subject.subject_id) == ("TLS-S001", "TLS-001")
    assert entry.screening_date == dt.date(2025, 3, 15)
    assert entry.outcome == Outcome.ELIGIBLE and subject.status == SubjectStatus.ELIGIBLE
    assert subject.study_version == ns_dupi.current_version
    assert subject.identity.last_name == "Durand"
    assert result.assessment.verdict == "eligible"
    assert result.assessment.data == eligible_data()
    assert [r["id"] for r in result.assessment.results][:2] == ["INC01", "INC02"]
    assert services.is_eligible(subject)
    assert _actions(entry) == ["screening.screen"]
    assert _actions(result.assessment) == ["screening.assess"]
    assert _actions(subject.identity) == ["identity.save"]


def test_numbers_follow_each_other_per_site(claire, paul, ns_dupi, tls, nck):
    first = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    second = services.screen(ns_dupi, tls, eligible_data(nasa_total=2), by=claire).subject
    paris = services.screen(ns_dupi, nck, eligible_data(), by=paul).subject
    assert [first.subject_id, second.subject_id, paris.subject_id] == [
        "TLS-001",
        "TLS-002",
        "NCK-001",
    ]
    assert second.screening_entry.screening_number == "TLS-S002"


def test_identity_values_never_enter_the_audit_trail(claire, ns_dupi, tls):
    services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY)
    everything = " ".join(AuditEvent.objects.values_list("changes", flat=True))
    for value in IDENTITY.values():
        assert value not in everything


def test_a_not_eligible_person_stays_in_screening_until_failed(claire, ns_dupi, tls):
    result = services.screen(ns_dupi, tls, eligible_data(nasa_total=3), by=claire)
    assert result.evaluation.status == "not_eligible"
    assert result.subject.status == SubjectStatus.SCREENING
    assert result.entry.outcome == Outcome.IN_PROGRESS
    assert not services.is_eligible(result.subject)
    entry = services.mark_screen_failure(result.subject, ["INC04"], by=claire)
    assert entry.outcome == Outcome.SCREEN_FAILED and entry.failure_reasons == ["INC04"]
    result.subject.refresh_from_db()
    assert result.subject.status == SubjectStatus.SCREEN_FAILED
    assert "screening.fail" in _actions(entry)


def test_screen_failure_reasons_must_be_criteria_of_the_study(claire, ns_dupi, tls):
    subject = services.screen(ns_dupi, tls, eligible_data(nasa_total=3), by=claire).subject
    with pytest.raises(ScreeningError, match="reasons: 'INC99' is not a criterion"):
        services.mark_screen_failure(subject, ["INC04", "INC99"], by=claire)
    with pytest.raises(ScreeningError, match="reasons: name at least one criterion"):
        services.mark_screen_failure(subject, [], by=claire)
    entry = services.mark_screen_failure(subject, [], note="investigator decision", by=claire)
    assert entry.failure_reasons == [] and entry.failure_note == "investigator decision"
    with pytest.raises(ScreeningError, match="screen_failed; cannot"):
        services.mark_screen_failure(subject, ["INC04"], by=claire)


def test_reasons_are_kept_in_study_order_without_duplicates(claire, ns_dupi, tls):
    subject = services.screen(ns_dupi, tls, eligible_data(nasa_total=3), by=claire).subject
    entry = services.mark_screen_failure(subject, ["EXC02", "INC04", "EXC02"], by=claire)
    assert entry.failure_reasons == ["INC04", "EXC02"]


def test_reassessment_is_a_new_row_and_moves_the_status(claire, ns_dupi, tls):
    first = services.screen(ns_dupi, tls, eligible_data(nasa_total=None), by=claire)
    assert first.evaluation.status == "incomplete"
    assert first.subject.status == SubjectStatus.SCREENING
    second = services.reassess(first.subject, eligible_data(), by=claire)
    assert second.subject.status == SubjectStatus.ELIGIBLE
    assert second.entry.outcome == Outcome.ELIGIBLE
    assert EligibilityAssessment.objects.filter(subject=first.subject).count() == 2
    assert services.latest_assessment(first.subject) == second.assessment
    audit = AuditEvent.objects.filter(action="screening.assess").order_by("id").last()
    changes = json.loads(audit.changes)
    assert changes["data"] == {"nasa_total": [None, 7]}
    assert changes["verdict"] == ["incomplete", "eligible"]
    third = services.reassess(first.subject, eligible_data(current_infection=True), by=claire)
    assert third.subject.status == SubjectStatus.SCREENING
    assert not services.is_eligible(third.subject)


def test_invalid_data_writes_nothing(claire, ns_dupi, tls):
    before = AuditEvent.objects.count()
    with pytest.raises(ScreeningError, match="nasa_total: 42 is above the maximum 12"):
        services.screen(ns_dupi, tls, eligible_data(nasa_total=42), by=claire, identity=IDENTITY)
    with pytest.raises(ScreeningError, match="screening_date: is required"):
        services.screen(ns_dupi, tls, eligible_data(screening_date=None), by=claire)
    with pytest.raises(ScreeningError, match="email: 'not-an-email'"):
        services.screen(
            ns_dupi, tls, eligible_data(), by=claire, identity={**IDENTITY, "email": "not-an-email"}
        )
    assert not ScreeningEntry.objects.exists() and not Subject.objects.exists()
    assert not IdentityRecord.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_failed_audit_rolls_the_screening_back(claire, ns_dupi, tls, monkeypatch):
    from trialdesk.screening import services as screening_services

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(screening_services, "record", broken)
    with pytest.raises(RuntimeError):
        services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY)
    assert not ScreeningEntry.objects.exists() and not Subject.objects.exists()


@pytest.mark.parametrize("persona", ["paul", "manon", "pierre", "simon", "ugo", "diane", "sophie"])
def test_only_the_sites_investigators_and_coordinators_may_screen(persona, request, ns_dupi, tls):
    user = request.getfixturevalue(persona)
    with pytest.raises(ScreeningPermissionDenied, match="may not screen"):
        services.screen(ns_dupi, tls, eligible_data(), by=user)
    assert not Subject.objects.exists()


def test_a_site_of_another_study_is_refused(claire, studies, ns_dupi):
    cohort_site = studies["ns-cohort"].sites.first()
    with pytest.raises(ScreeningError, match="site: .* is not a site of study 'ns-dupi'"):
        services.screen(ns_dupi, cohort_site, eligible_data(), by=claire)


def test_paul_cannot_act_on_a_toulouse_subject(claire, paul, ns_dupi, tls, consent_fr):
    subject = services.screen(ns_dupi, tls, eligible_data(nasa_total=3), by=claire).subject
    assert services.find_subject(paul, ns_dupi, subject.subject_id) is None
    assert services.find_subject(claire, ns_dupi, subject.subject_id) == subject
    with pytest.raises(ScreeningPermissionDenied):
        services.reassess(subject, eligible_data(), by=paul)
    with pytest.raises(ScreeningPermissionDenied):
        services.mark_screen_failure(subject, ["INC04"], by=paul)
    with pytest.raises(ScreeningPermissionDenied):
        services.record_consent(subject, consent_fr, _signed(), obtained_by=paul, by=paul)


# --- consent -----------------------------------------------------------------------------------


def test_consent_is_recorded_and_valid_until_withdrawn(claire, ines, ns_dupi, tls, consent_fr):
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    assert not services.has_valid_consent(subject)
    consent = services.record_consent(subject, consent_fr, _signed(), obtained_by=ines, by=claire)
    assert consent.obtained_by == ines and consent.signed_at == _signed()
    assert services.has_valid_consent(subject)
    assert _actions(consent) == ["consent.record"]
    services.withdraw_consent(subject, reason="changed her mind", by=claire)
    assert not services.has_valid_consent(subject)
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.WITHDRAWN
    assert subject.screening_entry.outcome == Outcome.WITHDREW
    assert not services.is_eligible(subject)
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None and consent.withdrawal_reason == "changed her mind"
    assert "consent.withdraw" in _actions(consent)
    assert "subject.status" in _actions(subject)


def test_withdrawal_needs_a_reason_and_an_active_consent(claire, ns_dupi, tls, consent_fr):
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    with pytest.raises(ScreeningError, match="consent: TLS-001 has no active consent"):
        services.withdraw_consent(subject, reason="x", by=claire)
    services.record_consent(subject, consent_fr, _signed(), obtained_by=claire, by=claire)
    with pytest.raises(ScreeningError, match="reason: a reason is required"):
        services.withdraw_consent(subject, reason="  ", by=claire)
    assert services.has_valid_consent(subject)


def test_a_document_of_another_study_is_refused(claire, studies, ns_dupi, tls):
    cohort_document = services.create_consent_document(
        studies["ns-cohort"],
        version="1.0",
        language="fr",
        title="Cohorte",
        valid_from=dt.date(2024, 1, 1),
        by=None,
    )
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    with pytest.raises(ScreeningError, match="document: .* of study 'ns-cohort', not 'ns-dupi'"):
        services.record_consent(subject, cohort_document, _signed(), obtained_by=claire, by=claire)
    assert not ConsentRecord.objects.exists()


def test_a_document_is_valid_from_its_first_to_its_last_day_inclusive(claire, ns_dupi, tls):
    document = services.create_consent_document(
        ns_dupi,
        version="2.0",
        language="en",
        title="Information and consent",
        valid_from=dt.date(2025, 1, 10),
        valid_until=dt.date(2025, 2, 10),
        by=None,
    )
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    for day in ("2025-01-09", "2025-02-11"):
        with pytest.raises(ScreeningError, match=f"is not valid on {day}"):
            services.record_consent(subject, document, _signed(day), obtained_by=claire, by=claire)
    for day in ("2025-01-10", "2025-02-10"):
        services.record_consent(
            subject, document, _signed(day, "23:30"), obtained_by=claire, by=claire
        )
    assert ConsentRecord.objects.filter(subject=subject).count() == 2


def test_consent_in_the_future_or_obtained_by_someone_else_is_refused(
    claire, manon, paul, ns_dupi, tls, consent_fr
):
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    tomorrow = timezone.now() + dt.timedelta(days=1)
    with pytest.raises(ScreeningError, match="signed_at: .* is in the future"):
        services.record_consent(subject, consent_fr, tomorrow, obtained_by=claire, by=claire)
    for other in (manon, paul):
        with pytest.raises(ScreeningError, match=f"obtained_by: '{other.username}' is not"):
            services.record_consent(subject, consent_fr, _signed(), obtained_by=other, by=claire)
    assert not ConsentRecord.objects.exists()


def test_consent_documents_are_checked_when_registered(ns_dupi, consent_fr):
    with pytest.raises(ScreeningError, match="version: '1.0' \\(fr\\) already exists"):
        services.create_consent_document(
            ns_dupi,
            version="1.0",
            language="fr",
            title="x",
            valid_from=dt.date(2024, 1, 1),
            by=None,
        )
    with pytest.raises(ScreeningError, match="language: 'de' is not one of en, fr"):
        services.create_consent_document(
            ns_dupi,
            version="1.1",
            language="de",
            title="x",
            valid_from=dt.date(2024, 1, 1),
            by=None,
        )
    with pytest.raises(ScreeningError, match="valid_until: 2023-12-31 is before valid_from"):
        services.create_consent_document(
            ns_dupi,
            version="1.1",
            language="fr",
            title="x",
            valid_from=dt.date(2024, 1, 1),
            valid_until=dt.date(2023, 12, 31),
            by=None,
        )
    assert list(services.consent_documents(ns_dupi, on=dt.date(2023, 6, 1))) == []
    assert list(services.consent_documents(ns_dupi, on=dt.date(2025, 6, 1))) == [consent_fr]


def test_set_randomized_moves_the_subject_and_the_log_and_is_audited(claire, ns_dupi, tls):
    from django.db import transaction

    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire).subject
    with transaction.atomic():
        services.set_randomized(subject, by=claire)
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.RANDOMIZED
    assert subject.screening_entry.outcome == Outcome.RANDOMIZED
    assert "subject.status" in _actions(subject)
    with pytest.raises(ScreeningError, match="randomized; cannot re-assess"):
        services.reassess(subject, eligible_data(), by=claire)


def test_the_log_shows_only_visible_sites(claire, paul, diane, ns_dupi, tls, nck):
    services.screen(ns_dupi, tls, eligible_data(), by=claire)
    services.screen(ns_dupi, nck, eligible_data(), by=paul)
    assert [e.screening_number for e in services.screening_log(claire, ns_dupi)] == ["TLS-S001"]
    assert [e.screening_number for e in services.screening_log(paul, ns_dupi)] == ["NCK-S001"]
    assert {e.screening_number for e in services.screening_log(diane, ns_dupi)} == {
        "TLS-S001",
        "NCK-S001",
    }


@pytest.mark.parametrize("persona", ["manon", "simon", "ugo", "sophie", "diane", "pierre", "paul"])
def test_identity_is_hidden_from_everyone_but_site_staff(
    persona, request, claire, ines, ns_dupi, tls
):
    subject = services.screen(ns_dupi, tls, eligible_data(), by=claire, identity=IDENTITY).subject
    assert services.identity_for(claire, subject).last_name == "Durand"
    assert services.identity_for(ines, subject).last_name == "Durand"
    assert services.identity_for(request.getfixturevalue(persona), subject) is None


def test_only_data_managers_register_consent_documents(claire, diane, ns_dupi):
    with pytest.raises(ScreeningPermissionDenied, match="data managers only"):
        services.create_consent_document(
            ns_dupi,
            version="3.0",
            language="en",
            title="x",
            valid_from=dt.date(2025, 1, 1),
            by=claire,
        )
    document = services.create_consent_document(
        ns_dupi,
        version="3.0",
        language="en",
        title="Consent",
        valid_from=dt.date(2025, 1, 1),
        by=diane,
    )
    assert _actions(document) == ["consent.document"]
