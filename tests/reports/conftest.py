"""A small demo trial built once per module, rolled back afterwards."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from tests.demo.conftest import studies_parsed_once  # noqa: F401
from trialdesk.demo.builder import Size, build

SEED = 5
#: Small enough to build in a few seconds, with screen failures at both sites.
SMALL = Size({"TLS": 4, "NCK": 3}, {"TLS": 2, "NCK": 2}, cohort=1)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, studies_parsed_once):  # noqa: F811
    """The small demo trial, rolled back at the end of the module."""
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mail = "django.core.mail.backends.locmem.EmailBackend"
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=fast, EMAIL_BACKEND=mail),
        transaction.atomic(),
    ):
        yield build(SEED, timezone.localdate(), size=SMALL)
        transaction.set_rollback(True)
