"""Safety tests: the randomized NS-DUPI world of the capture tests, and form saves."""

from __future__ import annotations

import pytest

from tests.capture.conftest import (  # noqa: F401 - fixtures
    _fast_password_hashing,
    _study_files_parsed_once,
    d0,
    list_dir,
    new_subject,
    paris_subject,
    sealed,
    stocked,
    subject,
)


@pytest.fixture
def safety_email(settings):
    settings.SAFETY_NOTIFY_EMAILS = ["safety@sponsor.example.org"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings.SAFETY_NOTIFY_EMAILS
