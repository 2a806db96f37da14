"""The schedule tests use the randomization tests' world (sealed list, stocked sites, subjects)."""

from __future__ import annotations

import datetime as _dt

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
    return timezone.localdate() - _dt.timedelta(days=40)


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
def planned_subject(ns_dupi, claire, d0):
    """A screened Toulouse subject with visits planned from ``d0`` but no randomization: what
    form capture needs, without the cost of a sealed list and kits."""
    from tests.randomization.trial_world import make_subject
    from trialdesk.capture.schedule import plan_visits

    subject = make_subject(ns_dupi, "TLS", taker=claire, consent=False)
    plan_visits(subject, d0, by=claire)
    return subject
