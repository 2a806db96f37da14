"""Fifty subjects of one site randomized by fifty concurrent requests, each on its own connection.

Why a scratch database
----------------------
The requests must see committed data and commit their own, so they cannot run inside the usual
per-test transaction. A ``transaction=True`` test would end with Django's flush, which the
append-only audit trail refuses: its triggers reject ``DELETE`` (SQLite) and ``TRUNCATE``
(PostgreSQL), and on PostgreSQL flushing the users cascades into the audit table whatever
``available_apps`` says, because audit events reference users. SQLite's in-memory test
database cannot host concurrent writers either: shared-cache connections fail with "database
table is locked" instead of waiting for the lock.

So :func:`scratch_database` builds a throwaway database next to the test database (a file in a
temporary directory for SQLite, in WAL mode with ``IMMEDIATE`` transactions as in production; a
database named after the test database for PostgreSQL), migrates it, and points every new
connection at it for the duration of the test. All database work happens in worker threads, each
with its own connection; the main thread's connection, which may hold the in-memory SQLite test
database, is never touched. Afterwards the scratch database is dropped (PostgreSQL) or left to
the temporary directory (SQLite), and the regular test database is exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.randomization.trial_world import make_subject, random_blocks, random_kits, write_list

REPO = Path(__file__).resolve().parents[2]
N_SUBJECTS = 50


def _in_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a new thread (its own database connection) and return its result."""
    from django.db import connections

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as error:  # re-raised in the caller
            box["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


@pytest.fixture
def scratch_database(django_db_blocker, tmp_path):
    from django.core.management import call_command
    from django.db import connections

    settings_dict = connections["default"].settings_dict
    original_name = settings_dict["NAME"]
    vendor = connections["default"].vendor
    if vendor == "sqlite":
        scratch = str(tmp_path / "concurrency.sqlite3")
    else:
        scratch = f"{original_name}_concurrency"[:63]

    def admin(sql: str) -> None:
        with connections["default"]._nodb_cursor() as cursor:
            cursor.execute(sql)

    with django_db_blocker.unblock():
        if vendor != "sqlite":
            _in_thread(lambda: admin(f'DROP DATABASE IF EXISTS "{scratch}"'))
            _in_thread(lambda: admin(f'CREATE DATABASE "{scratch}"'))
        settings_dict["NAME"] = scratch
        try:
            _in_thread(lambda: call_command("migrate", verbosity=0, interactive=False))
            yield vendor
        finally:
            settings_dict["NAME"] = original_name
            if vendor != "sqlite":
                _in_thread(lambda: admin(f'DROP DATABASE IF EXISTS "{scratch}"'))


def _world(directory: Path) -> dict[str, Any]:
    """A study with a sealed list of 51 TLS rows, every kit at TLS, and 50 eligible subjects."""
    from trialdesk.accounts.services import create_user, grant_role
    from trialdesk.protocol.services import load_study_into_db
    from trialdesk.randomization.sealing import import_list
    from trialdesk.randomization.supply import receive_kits
    from trialdesk.screening.models import Subject

    study = load_study_into_db(REPO / "studies" / "ns-dupi").study
    nurse = create_user("nurse", "unused-in-this-test-9f3k", check_password=False)
    grant_role(nurse, study, "coordinator", site=study.sites.get(code="TLS"), by=None)
    tls_arms = random_blocks(17, seed=11)
    kits = random_kits(2 * 40, 2 * 20, seed=5)
    import_list(
        study, write_list(directory, {"TLS": tls_arms, "NCK": random_blocks(1, 5)}, kits), by=None
    )
    receive_kits(
        study.sites.get(code="TLS"),
        [number for number, _arm in kits],
        expiry=timezone.localdate() + dt.timedelta(days=365),
        by=None,
    )
    subjects = [make_subject(study, "TLS", taker=nurse).pk for _ in range(N_SUBJECTS)]
    assert Subject.objects.filter(pk__in=subjects, status="eligible").count() == N_SUBJECTS
    return {"subjects": subjects, "nurse": nurse.pk, "arms": tls_arms}


def test_fifty_concurrent_requests_get_fifty_distinct_contiguous_rows_in_list_order(
    scratch_database, tmp_path
):
    from django.db import connections

    from trialdesk.accounts.models import User
    from trialdesk.audit.models import AuditEvent
    from trialdesk.audit.services import verify
    from trialdesk.randomization.allocation import randomize
    from trialdesk.randomization.models import Allocation, Kit, SealedKit, SealedRow
    from trialdesk.screening.models import Subject

    world = _in_thread(lambda: _world(tmp_path / "list"))

    start = threading.Barrier(N_SUBJECTS)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def request(subject_pk: int) -> None:
        try:
            subject = Subject.objects.select_related("site", "study").get(pk=subject_pk)
            nurse = User.objects.get(pk=world["nurse"])
            start.wait(timeout=30)
            results[subject_pk] = randomize(subject, by=nurse)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request, args=(pk,)) for pk in world["subjects"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors[:3]
    numbers = sorted(r.randomization_number for r in results.values())
    assert numbers == [f"TLS-R{seq:03d}" for seq in range(1, N_SUBJECTS + 1)]

    def check() -> None:
        rows = list(SealedRow.objects.filter(stratum="TLS", subject__isnull=False).order_by("seq"))
        assert [row.seq for row in rows] == list(range(1, N_SUBJECTS + 1))  # none skipped
        assert len({row.subject_id for row in rows}) == N_SUBJECTS  # none shared
        # The order in which allocations were committed (the audit trail is linear) is the
        # list order: the k-th subject allocated received row k, and the list's arm for it.
        allocated = [
            int(event.entity_id)
            for event in AuditEvent.objects.filter(action="randomization.allocate").order_by("id")
        ]
        by_pk = {a.pk: a for a in Allocation.objects.all()}
        assert [by_pk[pk].seq for pk in allocated] == list(range(1, N_SUBJECTS + 1))
        assert [row.arm for row in rows] == world["arms"][:N_SUBJECTS]
        # Every subject holds two D0 kits of their own arm, and no kit went to two subjects.
        kits = Kit.objects.filter(subject__isnull=False)
        assert kits.count() == 2 * N_SUBJECTS
        arm_of_kit = dict(SealedKit.objects.values_list("kit_number", "arm"))
        for row in rows:
            numbers = Kit.objects.filter(subject_id=row.subject_id).values_list("number", flat=True)
            assert {arm_of_kit[n] for n in numbers} == {row.arm}
        assert verify().intact

    _in_thread(check)
