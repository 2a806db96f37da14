"""Screening fixtures: the NS-DUPI study file, consent documents, and two speed-ups.

The speed-ups keep this package's tests quick without changing what they test: persona
passwords are hashed with a fast hasher (the tests log in with ``force_login``), and the study
files the ``studies`` fixture loads into a fresh database are parsed once per session.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def definition(studies_dir):
    """The NS-DUPI study file, loaded once."""
    from trialdesk.protocol import load_study

    return load_study(studies_dir / "ns-dupi")


@functools.cache
def _load_once(path: Path):
    from trialdesk.protocol import load_study

    return load_study(path)


@pytest.fixture(autouse=True)
def _fast_setup(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from trialdesk.protocol import services as protocol_services

    monkeypatch.setattr(
        protocol_services, "load_study", lambda path: _load_once(Path(path).resolve())
    )


@pytest.fixture
def tls(ns_dupi):
    return ns_dupi.sites.get(code="TLS")


@pytest.fixture
def nck(ns_dupi):
    return ns_dupi.sites.get(code="NCK")


@pytest.fixture
def consent_fr(ns_dupi):
    """The French information and consent form, version 1.0, valid from 2024-01-01 on."""
    from trialdesk.screening.services import create_consent_document

    return create_consent_document(
        ns_dupi,
        version="1.0",
        language="fr",
        title="Note d'information et consentement",
        valid_from=dt.date(2024, 1, 1),
        by=None,
    )
