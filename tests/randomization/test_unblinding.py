"""Emergency unblinding: one subject, one investigator, password, audit, e-mail, flag, counts."""

from __future__ import annotations

import json
import logging

import pytest
from django.core import mail
from django.utils import timezone

from tests.randomization.trial_world import PERSONA_PASSWORD, TLS_ARMS
from trialdesk.accounts import policy
from trialdesk.accounts.models import AllocationGrant
from trialdesk.audit.models import AuditEvent
from trialdesk.randomization.allocation import randomize
from trialdesk.randomization.errors import UnblindingRefused
from trialdesk.randomization.models import Allocation, Unblinding
from trialdesk.randomization.unblinding import unblind, unblinding_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def two(stocked, new_subject, claire):
    """Two randomized Toulouse subjects (DUPI, PBO)."""
    subjects = [new_subject("TLS"), new_subject("TLS")]
    for subject in subjects:
        randomize(subject, by=claire)
    return subjects


@pytest.fixture
def contact(settings):
    settings.UNBLINDING_NOTIFY_EMAILS = ["unblinded@sponsor.example", "backup@sponsor.example"]
    return settings.UNBLINDING_NOTIFY_EMAILS


def test_the_investigator_sees_that_subject_only(
    two, ines, contact, django_capture_on_commit_callbacks
):
    first, second = two
    with django_capture_on_commit_callbacks(execute=True):
        result = unblind(first, by=ines, reason="severe reaction", password=PERSONA_PASSWORD)
    assert result.arm.code == TLS_ARMS[0] and result.arm.name("en") == "Dupilumab 300 mg"
    assert policy.may_see_subject_allocation(ines, first)
    assert not policy.may_see_subject_allocation(ines, second)
    assert not policy.may_see_allocation(ines, first.study, first.site)


def test_the_event_is_audited_flagged_and_notified_without_the_arm(
    two, ines, contact, django_capture_on_commit_callbacks
):
    subject = two[0]
    with django_capture_on_commit_callbacks(execute=True):
        unblind(subject, by=ines, reason="severe reaction", password=PERSONA_PASSWORD)
    assert Allocation.objects.get(subject=subject).unblinded_at is not None
    event = AuditEvent.objects.get(action="randomization.unblind")
    assert event.reason == "severe reaction" and event.username == "ines" and event.site == "TLS"
    assert json.loads(event.changes)["notified"] == contact
    (message,) = mail.outbox
    assert message.to == contact
    assert subject.subject_id in message.subject and "severe reaction" in message.body
    for text in (event.changes, message.subject, message.body):
        assert "DUPI" not in text and "Dupilumab" not in text and "Placebo" not in text


def test_a_wrong_password_unblinds_nothing_and_is_audited(two, ines, contact):
    with pytest.raises(UnblindingRefused, match="password: the password does not match"):
        unblind(two[0], by=ines, reason="rash", password="guess")
    assert not Unblinding.objects.exists() and not AllocationGrant.objects.exists()
    assert AuditEvent.objects.filter(action="randomization.unblind.refused").count() == 1
    assert not policy.may_see_subject_allocation(ines, two[0])


def test_a_reason_is_required(two, ines):
    with pytest.raises(UnblindingRefused, match="reason: a reason is required"):
        unblind(two[0], by=ines, reason="  ", password=PERSONA_PASSWORD)


def test_only_an_investigator_of_the_site_may_unblind(two, claire, pierre, manon, diane, paul):
    for user in (claire, pierre, manon, diane, paul, None):
        with pytest.raises(UnblindingRefused, match="only they may unblind"):
            unblind(two[0], by=user, reason="x", password=PERSONA_PASSWORD)


def test_an_unrandomized_subject_cannot_be_unblinded(stocked, new_subject, ines):
    subject = new_subject("TLS")
    with pytest.raises(UnblindingRefused, match=f"subject: {subject.subject_id} is not randomized"):
        unblind(subject, by=ines, reason="x", password=PERSONA_PASSWORD)


def test_without_a_configured_contact_it_still_unblinds_and_logs(
    two, ines, settings, caplog, django_capture_on_commit_callbacks
):
    settings.UNBLINDING_NOTIFY_EMAILS = []
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        result = unblind(two[0], by=ines, reason="x", password=PERSONA_PASSWORD)
    assert result.notified == () and not mail.outbox
    assert "nobody notified" in caplog.text


def test_counts_for_the_dsmb(two, ines, ns_dupi):
    unblind(two[0], by=ines, reason="a", password=PERSONA_PASSWORD)
    unblind(two[0], by=ines, reason="b", password=PERSONA_PASSWORD)
    unblind(two[1], by=ines, reason="c", password=PERSONA_PASSWORD)
    counts = unblinding_counts(ns_dupi)
    assert (counts["events"], counts["subjects"]) == (3, 2)
    assert counts["by_site"] == {
        "NCK": {"events": 0, "subjects": 0},
        "TLS": {"events": 3, "subjects": 2},
    }
    assert AllocationGrant.objects.filter(user=ines).count() == 2


def test_a_revoked_grant_blinds_again(two, ines):
    unblind(two[0], by=ines, reason="a", password=PERSONA_PASSWORD)
    AllocationGrant.objects.filter(user=ines).update(revoked_at=timezone.now())
    assert not policy.may_see_subject_allocation(ines, two[0])


def test_a_grant_is_useless_once_the_site_is_out_of_sight(two, ines):
    from trialdesk.accounts.models import Membership

    unblind(two[0], by=ines, reason="a", password=PERSONA_PASSWORD)
    Membership.objects.filter(user=ines).update(revoked_at=timezone.now())
    assert not policy.may_see_subject_allocation(ines, two[0])
