"""The deploy check warns while no sponsor safety contact is configured."""

from __future__ import annotations

from trialdesk.safety.checks import safety_contact_configured


def test_no_safety_contact_is_a_deploy_warning(settings):
    settings.SAFETY_NOTIFY_EMAILS = []
    (warning,) = safety_contact_configured()
    assert warning.id == "trialdesk.safety.W001" and "TRIALDESK_SAFETY_EMAIL" in warning.hint


def test_a_safety_contact_silences_it(settings):
    settings.SAFETY_NOTIFY_EMAILS = ["safety@sponsor.example.org"]
    assert safety_contact_configured() == []
