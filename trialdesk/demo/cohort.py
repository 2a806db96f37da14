"""Three patients of the observational cohort ``ns-cohort``, one like the published case.

The published case: a child of about six on immunoglobulins (IVIG) to whom dupilumab is added,
whose total IgE falls from about 1078 to 56 IU/mL over a year of follow-up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trialdesk.accounts.models import User
from trialdesk.capture.cohort import enrol
from trialdesk.capture.records import definition_of, save_form
from trialdesk.capture.schedule import record_visit
from trialdesk.protocol.models import Study
from trialdesk.screening.models import Subject

from . import model


@dataclass(frozen=True)
class CohortPatient:
    """One cohort patient: where, how old, since when, on what, and the course of IgE and NASA."""

    site: str
    age: int
    enrolled_days_ago: int
    products: tuple[str, ...]
    ige: Mapping[str, int]
    nasa: Mapping[str, int]


PATIENTS = (
    CohortPatient(
        "TLS",
        6,
        420,
        ("ivig", "dupilumab"),
        {"BL": 1078, "M3": 412, "M6": 160, "M12": 56},
        {"BL": 9, "M3": 7, "M6": 6, "M12": 5},
    ),
    CohortPatient(
        "TLS",
        24,
        250,
        ("dupilumab",),
        {"BL": 2400, "M3": 1500, "M6": 1100},
        {"BL": 8, "M3": 6, "M6": 6},
    ),
    CohortPatient("NCK", 14, 120, ("secukinumab",), {"BL": 5200, "M3": 4800}, {"BL": 10, "M3": 8}),
)
#: Treatment form values per product; ``start_days_before`` the enrolment.
TREATMENTS: dict[str, dict[str, Any]] = {
    "ivig": {
        "product": "ivig",
        "off_label": True,
        "dose": 0.4,
        "dose_unit": "g/kg",
        "interval_days": 28,
        "route": "intravenous",
        "start_days_before": 730,
    },
    "dupilumab": {
        "product": "dupilumab",
        "off_label": True,
        "loading_dose": 600,
        "dose": 300,
        "dose_unit": "mg",
        "interval_days": 28,
        "route": "subcutaneous",
        "start_days_before": 0,
    },
    "secukinumab": {
        "product": "secukinumab",
        "off_label": True,
        "dose": 150,
        "dose_unit": "mg",
        "interval_days": 28,
        "route": "subcutaneous",
        "start_days_before": 0,
    },
}


def build_cohort(
    study: Study, coordinator: Callable[[str], User], seed: int, today: dt.date, *, count: int
) -> list[Subject]:
    """Enrol the first ``count`` patients of :data:`PATIENTS` and fill their visits to ``today``.

    Each later visit up to ``today`` is marked done on its planned day (the day-0 visit is done
    on the enrolment date) and its forms are saved.
    """
    visits = definition_of(study).visits
    subjects = []
    for number, patient in enumerate(PATIENTS[:count]):
        digest = hashlib.sha256(f"{seed}:cohort:{number}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        by = coordinator(patient.site)
        enrolled = today - dt.timedelta(days=patient.enrolled_days_ago)
        subject = _enrol(study, patient, number, enrolled, rng=rng, by=by)
        subjects.append(subject)
        for visit in visits:
            on = enrolled + dt.timedelta(days=visit.day)
            if on > today or visit.code not in patient.ige:
                break
            if visit.day != 0:  # the day-0 visit is done on enrolment
                record_visit(subject, visit.code, on, by=by)
            _Visit(subject, by, visit.code, on, rng=rng, patient=patient).save_all(visit.day)
    return subjects


def _enrol(
    study: Study,
    patient: CohortPatient,
    number: int,
    enrolled: dt.date,
    *,
    rng: random.Random,
    by: User,
) -> Subject:
    birth = enrolled - dt.timedelta(days=patient.age * 365 + rng.randint(20, 300))
    data = {
        "enrolment_date": enrolled.isoformat(),
        "birth_date": birth.isoformat(),
        "sex": "F" if number == 1 else "M",
        "ns_clinical_diagnosis": True,
        "lekti_staining": "absent",
        "spink5_confirmed": True,
        "treated_outside_trial": True,
        "in_ns_dupi": False,
        "non_opposition": True,
    }
    return enrol(study, study.sites.get(code=patient.site), data, by=by)


@dataclass
class _Visit:
    subject: Subject
    by: User
    code: str
    on: dt.date
    rng: random.Random
    patient: CohortPatient

    def save(self, form: str, data: Mapping[str, Any], *, patient_entered: bool = False) -> None:
        save_form(
            self.subject,
            form,
            data,
            by=self.by,
            visit_code=self.code,
            complete=True,
            patient_entered=patient_entered,
        )

    def save_all(self, day: int) -> None:
        patient, rng, on = self.patient, self.rng, self.on
        child = patient.age < 18
        weight = (19.0 if patient.age < 10 else 52.0 if child else 63.0) + day / 365 * 2.5 * child
        height = (112.0 if patient.age < 10 else 160.0 if child else 171.0) + day / 365 * 6 * child
        self.save("GROWTH", {"weight_kg": round(weight, 1), "height_cm": round(height, 1)})
        if self.code == "BL":
            for product in patient.products:
                plan = dict(TREATMENTS[product])
                start = on - dt.timedelta(days=plan.pop("start_days_before"))
                self.save(
                    "TREATMENT",
                    {**plan, "treatment_start_date": start.isoformat(), "treatment_ongoing": True},
                )
        index = list(patient.nasa).index(self.code)
        self.save("NASA", {"nasa_total": patient.nasa[self.code]})
        itch = model.clip(7.5 - 0.8 * index + rng.gauss(0, 0.5), 0, 10)
        self.save(
            "ITCH_PAIN",
            {
                "itch_pain_reporter": "parent" if patient.age < 12 else "patient",
                "pruritus_score": round(itch, 1),
                "pain_score": round(model.clip(itch - 2, 0, 10), 1),
            },
            patient_entered=patient.age >= 12,
        )
        if patient.age < 16:
            items = model.dlqi_items(rng, max(2, 14 - 3 * index))
            self.save("CDLQI", {f"cdlqi_q{i + 1}": v for i, v in enumerate(items)})
        else:
            items = model.dlqi_items(rng, max(2, 16 - 4 * index))
            self.save(
                "DLQI", {f"dlqi_q{i + 1}": v for i, v in enumerate(items)}, patient_entered=True
            )
        count = model.poisson(rng, 0.6 if index == 0 else 0.3)
        for _ in range(count):
            self.save(
                "INFECT_LOG",
                {
                    "infection_type": "bacterial",
                    "infection_onset_date": (on - dt.timedelta(days=10)).isoformat(),
                    "infection_systemic_treatment": True,
                    "infection_hospitalised": False,
                },
            )
        self.save(
            "INFECT",
            {"any_new_infection": count > 0, **({"infection_count": count} if count else {})},
        )
        self.save("TCS", {"tcs_used": False})
        self.save(
            "IGE",
            {
                "ige_sample_date": on.isoformat(),
                "total_ige": patient.ige[self.code],
                "total_ige_unit": "IU/mL",
                "eos_count": round(model.clip(rng.gauss(0.6, 0.2), 0.1, 3), 2),
            },
        )
