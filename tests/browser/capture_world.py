"""The database side of the capture walkthrough (``test_capture_walkthrough.py``).

The browser test drives the served app; these functions run in a separate Python process
against the same SQLite database (``python -c "from tests.browser.capture_world import ..."``)
and print JSON: :func:`prepare` builds the randomized subject through the services, as the
sponsor's statistician, the central supply and the coordinator would; :func:`serve_snapshots`
reads back what the pages wrote, so the test asserts on the database and not only on page text.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

#: The non-repeating forms the schedule puts at D0 (NASA aside: the test enters it by hand), with
#: a value for every required item and a few optional ones the edit checks read; ``{d0}`` is the
#: visit's date. The test checks this against the study file.
D0_VALUES: dict[str, dict[str, str]] = {
    "ITCH_PAIN": {"pruritus_score": "6", "pain_score": "3"},
    "INFECT": {"any_new_infection": "false", "infection_count": "0"},
    "TCS": {"tcs_used": "false"},
    "DLQI": {f"dlqi_q{i}": "1" for i in range(1, 11)},
    "TEWL": {
        "tewl_measured_at": "{d0}T09:30",
        "tewl_site": "forearm_left",
        "tewl_device": "tewameter_tm300",
        "ambient_temperature_c": "21.5",
        "relative_humidity_pct": "45",
        "acclimatisation_min": "20",
        "hours_since_emollient": "12",
        "tewl_repeats": "3",
        "tewl_value": "48.2",
    },
    "LAB": {"lab_sampled_at": "{d0}T08:45", "lab_name": "CHU Toulouse"},
    "IGE": {"ige_sampled_at": "{d0}T08:45", "total_ige": "1850", "total_ige_unit": "kU/L"},
}


def prepare() -> None:
    """Seal a randomization list, stock Toulouse, screen, consent and randomize one subject
    today (D0). Prints ``{"subject_id": ..., "kits": [...]}``."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from tests.randomization.trial_world import make_subject
    from trialdesk.protocol import load_study, resolve_study_path
    from trialdesk.protocol.models import Study
    from trialdesk.randomization.allocation import randomize
    from trialdesk.randomization.commands import list_inputs
    from trialdesk.randomization.lists import generate, kits_csv, list_csv
    from trialdesk.randomization.sealing import import_list
    from trialdesk.randomization.supply import kits_for_shipment, receive_kits

    study = Study.objects.get(code="ns-dupi")
    coordinator = get_user_model().objects.get(username="coordinator.tls")
    inputs = list_inputs(load_study(resolve_study_path("ns-dupi")))
    generated = generate(
        inputs.design,
        seed=2026,
        per_stratum=6,
        kits_per_subject=inputs.kits_per_subject,
        reserve=inputs.reserve_per_arm,
    )
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "randomization.csv").write_text(list_csv(generated), encoding="utf-8")
        Path(directory, "kits.csv").write_text(kits_csv(generated), encoding="utf-8")
        import_list(study, Path(directory), by=None)
    site = study.sites.get(code="TLS")
    expiry = timezone.localdate() + dt.timedelta(days=365)
    receive_kits(site, kits_for_shipment(study, 4), expiry=expiry, by=None)
    subject = make_subject(study, "TLS", taker=coordinator)
    randomized = randomize(subject, by=coordinator, on=timezone.localdate())
    print(
        json.dumps(
            {
                "subject_id": subject.subject_id,
                "d0": randomized.d0_date.isoformat(),
                "kits": list(randomized.kit_numbers),
            }
        )
    )


def serve_snapshots() -> None:
    """For each subject id read from standard input, print its :func:`snapshot` as one line
    of JSON (one process for the whole walkthrough: Django starts once)."""
    import sys

    import django

    django.setup()
    for line in sys.stdin:
        print(json.dumps(snapshot(line.strip())), flush=True)


def snapshot(subject_id: str) -> dict[str, Any]:
    """The subject's records, item values, queries, signatures, locks and form audit events."""
    from trialdesk.audit.models import AuditEvent
    from trialdesk.capture.models import FormRecord, Lock, Signature
    from trialdesk.screening.models import Subject

    subject = Subject.objects.get(subject_id=subject_id)
    records = FormRecord.objects.filter(subject=subject).prefetch_related(
        "values", "queries__messages"
    )
    state: dict[str, Any] = {"records": {}, "signatures": [], "locks": [], "audit": []}
    for record in records:
        state["records"][f"{record.visit_code}/{record.form}"] = {
            "status": record.status,
            "completed": record.completed,
            "revision": record.revision,
            "verified": record.verified_at is not None,
            "values": {row.item: row.value for row in record.values.all()},
            "verified_items": sorted(row.item for row in record.values.all() if row.verified_at),
            "queries": [
                {
                    "item": query.item,
                    "check_id": query.check_id,
                    "status": query.status,
                    "raised_by": query.raised_by.username if query.raised_by else None,
                    "messages": [
                        [m.action, m.text, m.by.username if m.by else None]
                        for m in query.messages.order_by("at", "pk")
                    ],
                }
                for query in record.queries.order_by("raised_at", "pk")
            ],
        }
    for signature in Signature.objects.filter(subject=subject).order_by("signed_at"):
        state["signatures"].append(
            {
                "scope": signature.scope,
                "visit": signature.visit_code,
                "meaning": signature.meaning,
                "sha256": signature.content_sha256,
                "by": signature.signed_by.username,
                "valid": signature.invalidated_at is None,
            }
        )
    for lock in Lock.objects.filter(study=subject.study).order_by("pk"):
        state["locks"].append(
            {
                "scope": lock.scope,
                "subject": lock.subject.subject_id if lock.subject else None,
                "active": lock.unlocked_at is None,
                "by": lock.locked_by.username if lock.locked_by else None,
            }
        )
    events = AuditEvent.objects.filter(action__startswith="form.", site=subject.site.code)
    for event in events.order_by("id"):
        changes = json.loads(event.changes)
        if changes.get("subject_id") == subject_id:
            state["audit"].append(
                {
                    "action": event.action,
                    "form": changes.get("form"),
                    "items": changes.get("items"),
                    "reason": event.reason,
                    "user": event.username,
                }
            )
    return state
