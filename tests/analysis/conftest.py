"""Fixtures of the analysis tests: the randomization tests' sealed list and a small trial."""

from __future__ import annotations

import pytest

from tests.analysis import world
from tests.randomization.conftest import (  # noqa: F401 - fixtures
    _fast_password_hashing,
    _study_files_parsed_once,
    list_dir,
    new_subject,
    sealed,
    stocked,
)

#: Planned arms of the subjects of ``trial``, in the order they are randomized.
ARMS = {
    "TLS-001": "DUPI",
    "TLS-002": "PBO",
    "TLS-003": "DUPI",
    "TLS-004": "PBO",
    "TLS-005": "DUPI",
    "TLS-006": "DUPI",
    "NCK-001": "PBO",
    "NCK-002": "DUPI",
    "NCK-003": "DUPI",
}
#: NASA at D0 and W16 (None: not captured), pruritus at D0, W2, W16.
NASA = {
    "TLS-001": (8, 4),
    "TLS-002": (7, 6),
    "TLS-003": (9, 5),
    "TLS-004": (6, None),
    "TLS-005": (7, 2),
    "TLS-006": (10, 6),
    "NCK-001": (8, 8),
    "NCK-002": (7, None),
    "NCK-003": (6, 3),
}
PRURITUS = {
    "TLS-001": (7.0, 6.0, 3.5),
    "TLS-002": (6.5, 6.0, 6.5),
    "TLS-003": (8.0, 6.5, 4.0),
    "TLS-004": (5.0, 5.5, None),
    "TLS-005": (6.0, 4.0, 2.0),
    "TLS-006": (9.0, 8.5, 5.0),
    "NCK-001": (7.5, 7.0, 7.0),
    "NCK-002": (6.0, None, None),
    "NCK-003": (5.5, 4.5, 3.0),
}
INFECTIONS_W16 = {"NCK-001": 2, "TLS-003": 1}
DOSING_VISITS = ["W2", "W4", "W6", "W8", "W10", "W12", "W14"]


@pytest.fixture
def plan(studies_dir):
    from trialdesk.analysis.plan import load_plan

    return load_plan(studies_dir / "ns-dupi")


@pytest.fixture
def trial(ns_dupi, stocked, new_subject, claire, paul):  # noqa: F811 - fixtures
    """Nine randomized subjects with NASA, pruritus, doses and a few departures.

    * TLS-004 (PBO): W16 missed, so no W16 NASA (not per-protocol).
    * TLS-006 (DUPI): doses at D0 to W10 only, 6 dosing visits (not per-protocol).
    * NCK-002 (DUPI): never dosed, withdrawn on day 5 (not safety, not per-protocol).
    * NCK-003 (DUPI): W16 done 10 days late, a major deviation (not per-protocol).
    * TLS-001 completes W28; the others are ongoing.
    """
    from trialdesk.capture.schedule import discontinue, mark_missed

    subjects = {}
    for label, arm in ARMS.items():
        site = label[:3]
        by = claire if site == "TLS" else paul
        subject = world.randomized(new_subject, site, by)
        subjects[label] = subject
        base, w16 = NASA[label]
        d0_itch, w2_itch, w16_itch = PRURITUS[label]
        world.nasa(subject, "D0", base, by)
        world.itch_pain(subject, "D0", d0_itch, 3.0, by)
        if label == "NCK-002":
            discontinue(subject, "withdrawn", on=world.d0_date() + _days(5), reason="moved", by=by)
            continue
        world.dose(subject, "D0", by)
        world.visit_done(subject, "W2", by)
        for code in DOSING_VISITS:
            if label != "TLS-006" or code not in {"W12", "W14"}:
                world.dose(subject, code, by)
        world.itch_pain(subject, "W2", w2_itch, 2.0, by)
        world.infections(subject, "W2", 1 if arm == "PBO" else 0, by)
        if label == "TLS-004":
            mark_missed(subject, "W16", reason="unwell", by=by)
            continue
        world.visit_done(subject, "W16", by, shift=10 if label == "NCK-003" else 0)
        world.nasa(subject, "W16", w16, by)
        world.itch_pain(subject, "W16", w16_itch, 1.5, by)
        world.infections(subject, "W16", INFECTIONS_W16.get(label, 0), by)
        if label == "TLS-001":
            world.visit_done(subject, "W28", by)
    return subjects


def _days(n):
    import datetime as dt

    return dt.timedelta(days=n)
