"""Fixtures of the randomization tests: a sealed NS-DUPI list, stocked sites, subjects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.randomization.trial_world import (
    NCK_ARMS,
    TLS_ARMS,
    make_subject,
    random_kits,
    receive_all,
    write_list,
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas are created in every test; Argon2 is the production hasher, not a test subject."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


_PARSED: dict[str, object] = {}


@pytest.fixture(autouse=True)
def _study_files_parsed_once(monkeypatch):
    """Parse each study file once per session (0.4 s each) rather than in every test's set-up.

    The files do not change during a test session; the database load itself still runs.
    """
    from trialdesk.protocol import load_study, services

    def parsed(path):
        key = str(Path(path).resolve())
        if key not in _PARSED:
            _PARSED[key] = load_study(path)
        return _PARSED[key]

    monkeypatch.setattr(services, "load_study", parsed)


@pytest.fixture
def list_dir(tmp_path):
    """The hand-written list (see ``trial_world``) and 60 kits, 40 DUPI and 20 PBO."""
    return write_list(tmp_path / "list", {"TLS": TLS_ARMS, "NCK": NCK_ARMS}, random_kits(40, 20))


@pytest.fixture
def sealed(ns_dupi, list_dir):
    from trialdesk.randomization.sealing import import_list

    return import_list(ns_dupi, list_dir, by=None).sealed_list


@pytest.fixture
def stocked(ns_dupi, sealed):
    """Both sites stocked: 12 kits of each arm at Toulouse, 6 of each at Paris."""
    receive_all(ns_dupi, "TLS", 12)
    receive_all(ns_dupi, "NCK", 6)
    return sealed


@pytest.fixture
def new_subject(ns_dupi, claire, paul):
    """A factory of eligible, consented subjects: ``new_subject("TLS")``."""

    def make(site_code="TLS", **kwargs):
        taker = claire if site_code == "TLS" else paul
        return make_subject(ns_dupi, site_code, taker=taker, **kwargs)

    return make
