"""A small NS-DUPI world for the randomization and schedule tests: lists, kits, subjects.

The lists are written by hand so that each test knows the arm behind every row: at Toulouse the
first rows are DUPI, PBO, DUPI | PBO, DUPI, DUPI (two blocks of 3), at Paris PBO, DUPI, DUPI.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

from django.utils import timezone

#: The password of the personas of ``tests/conftest.py`` (re-entered to unblind).
PERSONA_PASSWORD = "correct horse battery staple 42"
TLS_ARMS = ["DUPI", "PBO", "DUPI", "PBO", "DUPI", "DUPI"]
NCK_ARMS = ["PBO", "DUPI", "DUPI"]
SCREENING_DATE = dt.date(2025, 3, 15)


def eligible_data(**changes):
    """Screening data of a person who meets every NS-DUPI criterion."""
    data = {
        "screening_date": SCREENING_DATE.isoformat(),
        "birth_date": "1990-06-01",
        "sex": "M",
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
        "last_phototherapy": "never",
        "last_biologic": "never",
        "last_investigational_drug": "never",
        "last_systemic_antibiotic": "never",
        "last_skin_infection_systemic_therapy": "never",
        "condition_impairing_evaluation": False,
        "immunosuppression_history": False,
        "current_infection": False,
        "questionnaire_incapacity": False,
    }
    data.update(changes)
    return data


def write_list(directory: Path, strata: dict[str, list[str]], kits: list[tuple[int, str]]) -> Path:
    """Write ``randomization.csv`` and ``kits.csv`` as the generator does (blocks of 3)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "randomization.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["stratum", "seq", "block", "block_size", "arm"])
        for stratum, arms in strata.items():
            for index, arm in enumerate(arms):
                writer.writerow([stratum, index + 1, index // 3 + 1, 3, arm])
    with (directory / "kits.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["kit_number", "arm"])
        writer.writerows(sorted(kits))
    return directory


def random_kits(n_dupi: int, n_pbo: int, seed: int = 7) -> list[tuple[int, str]]:
    """Kit numbers drawn from 10000–99999 with the arms in random order."""
    rng = random.Random(seed)
    numbers = sorted(rng.sample(range(10_000, 100_000), n_dupi + n_pbo))
    arms = ["DUPI"] * n_dupi + ["PBO"] * n_pbo
    rng.shuffle(arms)
    return list(zip(numbers, arms, strict=True))


def random_blocks(n_blocks: int, seed: int) -> list[str]:
    """Arms of ``n_blocks`` permuted 2:1 blocks of 3."""
    rng = random.Random(seed)
    arms: list[str] = []
    for _ in range(n_blocks):
        block = ["DUPI", "DUPI", "PBO"]
        rng.shuffle(block)
        arms.extend(block)
    return arms


def consent_document(study):
    from trialdesk.screening.models import ConsentDocument
    from trialdesk.screening.services import create_consent_document

    existing = ConsentDocument.objects.filter(study=study, version="1.0", language="fr").first()
    return existing or create_consent_document(
        study,
        version="1.0",
        language="fr",
        title="Information et consentement",
        valid_from=dt.date(2020, 1, 1),
        by=None,
    )


def make_subject(study, site_code, *, taker, consent=True, **data_changes):
    """Screen an eligible person at a site and record their consent (obtained by ``taker``)."""
    from trialdesk.screening.services import record_consent, screen

    site = study.sites.get(code=site_code)
    subject = screen(study, site, eligible_data(**data_changes), by=taker).subject
    if consent:
        signed = timezone.make_aware(dt.datetime(2025, 3, 15, 10, 0))
        record_consent(subject, consent_document(study), signed, obtained_by=taker, by=None)
    return subject


def receive_all(study, site_code, per_arm, *, expiry=None):
    """Receive ``per_arm`` kits of each arm at a site."""
    from trialdesk.randomization.supply import kits_for_shipment, receive_kits

    site = study.sites.get(code=site_code)
    numbers = kits_for_shipment(study, per_arm)
    expiry = expiry or timezone.localdate() + dt.timedelta(days=365)
    return receive_kits(site, numbers, expiry=expiry, by=None)
