"""The differential blinding check.

Two Toulouse subjects in different arms (row 1 DUPI, row 2 PBO) go through the same history:
randomized the same day by the same nurse, D0 and W2 kits dispensed, one W2 injection recorded,
W2 visit done. As each blinded role, every page and every API answer about the first subject is
fetched, then the same for the second. After masking what legitimately differs (subject,
screening and randomization numbers, kit numbers, dates and times, row ids, CSRF tokens) the two
must be identical, byte for byte. The unblinded pharmacist is the control: for him they differ.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.randomization.trial_world import TLS_ARMS
from trialdesk.capture.schedule import record_visit
from trialdesk.randomization.allocation import randomize
from trialdesk.randomization.supply import dispense, record_administration

pytestmark = pytest.mark.django_db

BLINDED = ["claire", "ines", "manon", "simon", "diane", "sophie"]

MASKS = [
    (re.compile(r"csrfmiddlewaretoken\" value=\"[^\"]+\""), 'csrfmiddlewaretoken" value="<csrf>"'),
    (re.compile(r"\bTLS-R\d{3}\b"), "<randomization-number>"),
    (re.compile(r"\bTLS-S\d{3}\b"), "<screening-number>"),
    (re.compile(r"\bTLS-\d{3}\b"), "<subject>"),
    (re.compile(r"\b\d{5}\b"), "<kit>"),
    (
        re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?"),
        "<when>",
    ),
    (re.compile(r"\b\d{2}:\d{2}\b"), "<time>"),
    (re.compile(r"/assessments/\d+/"), "/assessments/<id>/"),
    (re.compile(r"\"(id|document_id)\": ?\d+"), r'"\1": <id>'),
]


def _mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


@pytest.fixture
def pair(ns_dupi, stocked, new_subject, claire):
    """Subjects A (DUPI) and B (PBO) of Toulouse with the same history."""
    subjects = [new_subject("TLS"), new_subject("TLS")]
    today = timezone.localdate()
    for subject in subjects:
        randomize(subject, by=claire, on=today)
    for subject in subjects:
        dispensation = dispense(subject, "W2", by=claire, on=today)
        kit = dispensation.kits.get()
        record_administration(
            subject,
            kit.number,
            given_on=today,
            given_time=timezone.datetime(2000, 1, 1, 9, 30).time(),
            injection_site="abdomen_left",
            given_by=claire,
            by=claire,
        )
        record_visit(subject, "W2", today, by=claire)
    assert TLS_ARMS[:2] == ["DUPI", "PBO"]
    return subjects


def _pages(subject):
    study = "ns-dupi"
    pages = [
        reverse(f"randomization:{name}", args=[study, subject.subject_id])
        for name in ("randomize", "treatment", "schedule", "unblind")
    ]
    pages.append(reverse("screening:subject", args=[study, subject.subject_id]))
    api = f"/api/v1/studies/{study}"
    pages += [
        f"{api}/randomization/subjects/{subject.subject_id}",
        f"{api}/randomization/subjects/{subject.subject_id}/checks",
        f"{api}/schedule/subjects/{subject.subject_id}",
        f"{api}/screening/subjects/{subject.subject_id}",
    ]
    return pages


def _fetch_all(client, subject):
    return [(url, client.get(url)) for url in _pages(subject)]


@pytest.mark.parametrize("role", BLINDED)
def test_blinded_roles_see_the_same_about_two_subjects_in_different_arms(
    role, request, client, pair
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    first, second = (_fetch_all(client, subject) for subject in pair)
    for (url_a, a), (_url_b, b) in zip(first, second, strict=True):
        assert a.status_code == b.status_code, url_a
        body_a, body_b = _mask(a.content.decode()), _mask(b.content.decode())
        assert body_a == body_b, f"{role} sees a difference at {url_a}"
        assert "DUPI" not in body_a and "PBO" not in body_a and "Placebo" not in body_a
    assert any(r.status_code == 200 for _, r in first)


def test_the_check_can_fail_the_pharmacist_sees_the_arms(client, pair, pierre):
    client.force_login(pierre)
    first, second = (_fetch_all(client, subject) for subject in pair)
    differing = [
        url
        for (url, a), (_, b) in zip(first, second, strict=True)
        if _mask(a.content.decode()) != _mask(b.content.decode())
    ]
    assert any("/treatment/" in url for url in differing)
    assert any(url.endswith(f"/randomization/subjects/{pair[0].subject_id}") for url in differing)


def test_cross_site_the_paris_coordinator_gets_what_a_missing_subject_gives(client, pair, paul):
    """Paul sees nothing of Toulouse: every page and answer is the 404 of a subject that does
    not exist (so even the existence of TLS-001 is not revealed)."""
    client.force_login(paul)
    missing = type(pair[0])(subject_id="TLS-999")
    for (url, real), (_, absent) in zip(
        _fetch_all(client, pair[0]), _fetch_all(client, missing), strict=True
    ):
        assert real.status_code == absent.status_code == 404, url
        assert _mask(real.content.decode()) == _mask(absent.content.decode()), url
