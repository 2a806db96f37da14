"""Adverse events and safety laboratory results added to the analysis tests' small trial.

Entered through :func:`trialdesk.capture.records.save_form`, so the safety module derives the
``AdverseEvent`` and ``LabResult`` rows as it does for the pages. Day 0 of every subject is
:func:`tests.analysis.world.d0_date`; the first dose is given on day 0 and, for most subjects,
the last one at W14 (day 98).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.analysis import world

#: (subject, visit, term, start day or partial text, extra answers) of each adverse event.
#: Start days count from day 0 (``0`` is the first dose day).
AES: tuple[tuple[str, str, str, Any, dict[str, Any]], ...] = (
    # DUPI: an AESI, possibly related, mild.
    (
        "TLS-001",
        "W2",
        "Conjonctivite",
        10,
        {"ae_relationship": "possible", "ae_aesi": True, "ae_aesi_category": "conjunctivitis"},
    ),
    # DUPI: a second eye event for the same subject (one subject, two events in the SOC).
    ("TLS-001", "W4", "Blepharitis", 20, {}),
    # PBO: serious, severe grade 3, leading to withdrawal of the study drug.
    (
        "TLS-002",
        "W4",
        "Nasopharyngitis",
        25,
        {
            "ae_severity": "severe",
            "ae_ctcae_grade": 3,
            "ae_serious": True,
            "sae_hospitalisation": True,
            "ae_action": "withdrawn",
        },
    ),
    # DUPI: started three days before the first dose: not treatment-emergent.
    ("TLS-003", "D0", "Headache", -3, {}),
    # DUPI: on the first dose day: treatment-emergent.
    ("TLS-005", "D0", "Headache", 0, {}),
    # DUPI, never dosed: not in the safety population.
    ("NCK-002", "D0", "Headache", 0, {}),
)
#: The terms of AES that are treatment-emergent in the safety population.
TEAE_SUBJECTS = {"TLS-001", "TLS-002", "TLS-005"}

#: ALT (U/L, limits 7-40) by subject and visit; CTCAE: > ULN grade 1, > 3 ULN grade 2,
#: > 5 ULN grade 3 (normal baseline).
ALT = {
    "TLS-001": {"D0": 30, "W4": 130, "W8": 50},  # 0 -> worst 2
    "TLS-002": {"D0": 45, "W4": 35},  # 1 -> worst 0
    "TLS-003": {"D0": 20, "W4": 210},  # 0 -> worst 3
    "TLS-005": {"D0": 25},  # 0 -> Missing
}


def ae_data(term: str, start: str, **extra: Any) -> dict[str, Any]:
    data = {
        "ae_term": term,
        "ae_start_date": start,
        "ae_ongoing": True,
        "ae_severity": "mild",
        "ae_ctcae_grade": 1,
        "ae_relationship": "not_related",
        "ae_action": "none",
        "ae_outcome": "not_recovered",
        "ae_serious": False,
        "ae_aesi": False,
    }
    data.update(extra)
    return data


def adverse_event(subject, code: str, term: str, start: Any, by, **extra: Any) -> None:
    from trialdesk.capture.records import save_form

    if isinstance(start, int):
        start = (world.d0_date() + dt.timedelta(days=start)).isoformat()
    save_form(subject, "AE", ae_data(term, start, **extra), by=by, visit_code=code)


def lab(subject, code: str, alt: float, by) -> None:
    """A LAB form with ALT only (limits on the form), sampled on the visit's date."""
    from trialdesk.capture.models import Visit
    from trialdesk.capture.records import save_form

    visit = Visit.objects.get(subject=subject, code=code)
    on = visit.done_on or visit.planned_date
    data = {
        "lab_sampled_at": f"{on.isoformat()}T08:30:00",
        "lab_name": "CHU",
        "alt_value": alt,
        "alt_unit": "U/L",
        "alt_lln": 7,
        "alt_uln": 40,
    }
    save_form(subject, "LAB", data, by=by, visit_code=code)


@pytest.fixture
def safety_trial(trial, claire, paul):
    """The analysis tests' trial with the adverse events of AES and the ALT results of ALT."""
    from trialdesk.capture.models import Visit, VisitStatus

    for label, code, term, start, extra in AES:
        by = claire if label.startswith("TLS") else paul
        adverse_event(trial[label], code, term, start, by, **extra)
    for label, results in ALT.items():
        by = claire if label.startswith("TLS") else paul
        for code, value in results.items():
            visit = Visit.objects.get(subject=trial[label], code=code)
            if visit.status != VisitStatus.DONE:
                world.visit_done(trial[label], code, by)
            lab(trial[label], code, value, by)
    return trial
