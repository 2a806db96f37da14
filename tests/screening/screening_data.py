"""Screening data of an eligible person, and the criteria of NS-DUPI, for the screening tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

SCREENING_DATE = dt.date(2025, 3, 15)

#: Every washout criterion: (criterion id, input key, weeks).
WASHOUTS = [
    ("EXC02", "usual_treatment_changed_on", 2),
    ("EXC03", "last_topical_calcineurin_inhibitor", 1),
    ("EXC04", "last_oral_immunosuppressant", 4),
    ("EXC04", "last_oral_retinoid", 4),
    ("EXC04", "last_phototherapy", 4),
    ("EXC05", "last_biologic", 16),
    ("EXC06", "last_investigational_drug", 8),
    ("EXC07", "last_systemic_antibiotic", 2),
    ("EXC08", "last_skin_infection_systemic_therapy", 2),
]

CRITERIA = [f"INC{n:02d}" for n in range(1, 7)] + [f"EXC{n:02d}" for n in range(1, 14)]


def days_before_screening(days: int) -> str:
    return (SCREENING_DATE - dt.timedelta(days=days)).isoformat()


def eligible_data(**changes: Any) -> dict[str, Any]:
    """A woman of childbearing potential, on contraception, who meets every criterion."""
    data: dict[str, Any] = {
        "screening_date": SCREENING_DATE.isoformat(),
        "birth_date": "1990-06-01",
        "sex": "F",
        "social_insurance": True,
        "ns_clinical_diagnosis": True,
        "lekti_staining": "absent",
        "nasa_total": 7,
        "able_to_complete_questionnaires": True,
        "informed_consent_signed": True,
        "dupilumab_hypersensitivity": False,
        "usual_treatment_changed_on": "never",
        "last_topical_calcineurin_inhibitor": "never",
        "last_oral_immunosuppressant": "never",
        "last_oral_retinoid": "never",
        "last_phototherapy": days_before_screening(200),
        "last_biologic": "never",
        "last_investigational_drug": "never",
        "last_systemic_antibiotic": "2024-12-01",
        "last_skin_infection_systemic_therapy": "never",
        "condition_impairing_evaluation": False,
        "immunosuppression_history": False,
        "current_infection": False,
        "pregnant": False,
        "breastfeeding": False,
        "planning_pregnancy": False,
        "childbearing_potential": True,
        "adequate_contraception": True,
        "questionnaire_incapacity": False,
    }
    data.update(changes)
    return data
