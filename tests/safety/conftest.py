"""Safety tests: the randomized NS-DUPI world of the capture tests, and form saves."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.randomization.conftest import (  # noqa: F401 - fixtures
    _fast_password_hashing,
    _study_files_parsed_once,
    list_dir,
    new_subject,
    sealed,
    stocked,
)


@pytest.fixture
def d0():
    """Day 0 forty days ago: D0, W2 and W4 are past."""
    return timezone.localdate() - dt.timedelta(days=40)


@pytest.fixture
def subject(stocked, new_subject, claire, d0):  # noqa: F811 - fixtures
    """A randomized Toulouse subject (NS-DUPI), visits planned from ``d0``."""
    from trialdesk.randomization.allocation import randomize

    subject = new_subject("TLS")
    randomize(subject, by=claire, on=d0)
    return subject


@pytest.fixture
def paris_subject(stocked, new_subject, paul, d0):  # noqa: F811 - fixtures
    from trialdesk.randomization.allocation import randomize

    subject = new_subject("NCK")
    randomize(subject, by=paul, on=d0)
    return subject


@pytest.fixture
def safety_email(settings):
    settings.SAFETY_NOTIFY_EMAILS = ["safety@sponsor.example.org"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings.SAFETY_NOTIFY_EMAILS
