"""Property: replaying the audit trail rebuilds exactly the current data.

Random sequences of saves, changes, "not done" marks, verifications, signatures, locks and
unlocks (some refused, which must leave no trace) are run against one subject; then the audit
events alone rebuild every record's items, the valid signatures (each signed hash is recomputed
from the replayed content at the moment of signing) and the locks in force, and these must equal
what the database holds.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.randomization.trial_world import PERSONA_PASSWORD
from trialdesk.audit.models import AuditEvent
from trialdesk.capture import locks, signatures, verification
from trialdesk.capture.models import FormRecord, Lock, Signature
from trialdesk.capture.records import CaptureError, items_of, save_form
from trialdesk.lib.hashing import canonical_json, sha256_hex

pytestmark = pytest.mark.django_db

DLQI_ITEMS = [f"dlqi_q{i}" for i in range(1, 11)]
FULL_DLQI = dict.fromkeys(DLQI_ITEMS, 1)
SAVES = st.one_of(
    st.tuples(st.just("DLQI"), st.fixed_dictionaries(dict.fromkeys(DLQI_ITEMS, st.integers(0, 3)))),
    st.tuples(
        st.just("DLQI"),
        st.dictionaries(st.sampled_from(DLQI_ITEMS), st.none() | st.integers(0, 3), min_size=1),
    ),
    st.tuples(
        st.just("NASA"),
        st.fixed_dictionaries({"nasa_total": st.integers(0, 13), "nasa_assessor": st.just("ABC")}),
    ),
    st.tuples(
        st.just("TCS"),
        st.fixed_dictionaries(
            {
                "tcs_used": st.booleans(),
                "tubes_used": st.integers(0, 3),
                "grams_per_tube": st.integers(1, 60),
            }
        ),
    ),
)
SAVE = st.tuples(st.just("save"), SAVES, st.booleans() | st.just(True))
OPERATIONS = st.one_of(
    SAVE,
    SAVE,
    SAVE,
    st.tuples(st.just("not_done"), st.sampled_from(["dlqi_q1", "dlqi_q5"])),
    st.tuples(st.just("verify"), st.sampled_from(["DLQI", "NASA", "TCS"])),
    st.tuples(st.just("sign"), st.sampled_from(["D0", None])),
    st.tuples(st.just("sign"), st.sampled_from(["D0", None])),
    st.tuples(st.just("lock"), st.sampled_from(["DLQI", "subject"])),
    st.tuples(st.just("unlock")),
    st.tuples(st.just("unlock")),
)


class _Rollback(Exception):
    pass


def _run(operation, subject, people):
    kind = operation[0]
    if kind == "save":
        (form, values), complete = operation[1], operation[2]
        save_form(
            subject,
            form,
            values,
            by=people["claire"],
            visit_code="D0",
            reason="change",
            complete=complete,
        )
    elif kind == "not_done":
        save_form(
            subject,
            "DLQI",
            {operation[1]: {"state": "not_done", "reason": "not asked"}},
            by=people["claire"],
            visit_code="D0",
            reason="not asked",
        )
    elif kind == "verify":
        record = FormRecord.objects.filter(subject=subject, form=operation[1]).first()
        if record is not None:
            verification.verify_record(record, by=people["manon"])
    elif kind == "sign":
        signatures.sign(
            subject, by=people["ines"], password=PERSONA_PASSWORD, visit_code=operation[1]
        )
    elif kind == "lock":
        if operation[1] == "subject":
            locks.lock_subject(subject, by=people["diane"])
        else:
            record = FormRecord.objects.filter(subject=subject, form="DLQI").first()
            if record is not None:
                locks.lock_record(record, by=people["diane"])
    else:
        lock = Lock.objects.filter(unlocked_at__isnull=True).order_by("-id").first()
        if lock is not None:
            locks.unlock(lock, by=people["diane"], reason="re-open")


def _replay(events):
    """Items per record, valid signatures and active locks, from the audit events alone."""
    records: dict[str, dict] = {}
    where: dict[str, tuple] = {}
    valid: set[str] = set()
    locked: set[str] = set()
    for event in events:
        changes = json.loads(event.changes)
        if event.entity_type == "capture.formrecord" and event.action in (
            "form.create",
            "form.change",
        ):
            items = records.setdefault(event.entity_id, {})
            where[event.entity_id] = (
                changes["subject_id"],
                changes["visit"],
                changes["form"],
                changes["number"],
            )
            for item, (old, new) in changes["items"].items():
                assert items.get(item) == old, (event.id, item)
                items[item] = new
        elif event.action == "signature.sign":
            content = _content(records, where, changes["subject_id"], changes["visit"] or None)
            assert sha256_hex(canonical_json(content)) == changes["content_sha256"]
            valid.add(event.entity_id)
        elif event.action == "signature.invalidate":
            valid.discard(event.entity_id)
        elif event.action == "lock.lock":
            locked.add(event.entity_id)
        elif event.action == "lock.unlock":
            locked.discard(event.entity_id)
    return records, valid, locked


def _content(records, where, subject_id, visit):
    chosen = {
        key: (w[1], w[2], w[3])
        for key, w in where.items()
        if w[0] == subject_id and (visit is None or w[1] == visit)
    }
    return {
        "subject_id": subject_id,
        "visit": visit,
        "records": {
            f"{v}/{f}/{n}": records[key]
            for key, (v, f, n) in sorted(chosen.items(), key=lambda kv: kv[1])
        },
    }


@pytest.fixture
def people(claire, manon, ines, diane):
    return {"claire": claire, "manon": manon, "ines": ines, "diane": diane}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=12))
@example(
    operations=[
        ("save", ("DLQI", FULL_DLQI), True),
        ("save", ("NASA", {"nasa_total": 7, "nasa_assessor": "ABC"}), True),
        ("sign", "D0"),
        ("sign", None),
        ("save", ("DLQI", {"dlqi_q2": 3}), False),
        ("verify", "NASA"),
        ("lock", "subject"),
        ("save", ("DLQI", {"dlqi_q2": 0}), False),
        ("unlock",),
        ("not_done", "dlqi_q5"),
        ("sign", "D0"),
        ("lock", "DLQI"),
    ]
)
def test_replaying_the_audit_trail_rebuilds_the_current_data(subject, people, operations):
    start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        with transaction.atomic():
            for operation in operations:
                try:
                    _run(operation, subject, people)
                except CaptureError:
                    pass
            records, valid, locked = _replay(AuditEvent.objects.filter(id__gt=start).order_by("id"))
            current = {str(r.pk): items_of(r) for r in FormRecord.objects.filter(subject=subject)}
            assert records == current
            assert valid == {
                str(pk)
                for pk in Signature.objects.filter(invalidated_at__isnull=True).values_list(
                    "pk", flat=True
                )
            }
            assert locked == {
                str(pk)
                for pk in Lock.objects.filter(unlocked_at__isnull=True).values_list("pk", flat=True)
            }
            raise _Rollback
    except _Rollback:
        pass
