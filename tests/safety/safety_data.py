"""Form data of the safety tests: an adverse event, a skin infection, a laboratory form."""

from __future__ import annotations

import datetime as dt
from typing import Any


def ae_data(term: str = "Headache", start: str = "2025-01-10", **changes: Any) -> dict[str, Any]:
    """A complete, non-serious AE form."""
    data = {
        "ae_term": term,
        "ae_start_date": start,
        "ae_ongoing": True,
        "ae_severity": "mild",
        "ae_relationship": "not_related",
        "ae_action": "none",
        "ae_outcome": "not_recovered",
        "ae_serious": False,
        "ae_aesi": False,
    }
    data.update(changes)
    return data


def serious(**changes: Any) -> dict[str, Any]:
    """The seriousness items of a hospitalised event."""
    return {"ae_serious": True, "sae_hospitalisation": True, **changes}


def infection_data(onset: str = "2025-01-10", kind: str = "bacterial") -> dict[str, Any]:
    return {
        "infection_type": kind,
        "infection_onset_date": onset,
        "infection_systemic_treatment": True,
        "infection_reported_as_ae": True,
    }


def lab_data(on: dt.date, **tests: tuple[Any, ...]) -> dict[str, Any]:
    """A LAB form: ``ALT=(value, unit, lln, uln)`` per test (``lln``/``uln`` may be None)."""
    data: dict[str, Any] = {"lab_sampled_at": f"{on.isoformat()}T09:00:00", "lab_name": "CHU"}
    for test, (value, unit, lln, uln) in tests.items():
        prefix = test.lower()
        data[f"{prefix}_value"] = value
        data[f"{prefix}_unit"] = unit
        if lln is not None:
            data[f"{prefix}_lln"] = lln
        if uln is not None:
            data[f"{prefix}_uln"] = uln
    return data
