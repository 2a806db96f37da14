"""The write lock that queues SQLite writers: the file lock itself and the database backend.

:class:`trialdesk.lib.writelock.WriteLock` is tested alone (threads and a second process); the
backend ``trialdesk.db.sqlite3`` on a scratch database file (see
``tests/randomization/test_concurrency.py`` for why a scratch database), where every database
call runs in a worker thread with its own connection.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.randomization.test_concurrency import (  # noqa: F401 - fixture
    _in_thread,
    scratch_database,
)
from trialdesk.db.sqlite3.base import write_lock_path
from trialdesk.lib.writelock import WriteLock

REPO = Path(__file__).resolve().parents[1]


def _free(path: str | Path) -> bool:
    """Is the lock free right now? (Takes it and gives it back at once if so.)"""
    probe = WriteLock(path)
    if probe.acquire(0):
        probe.release()
        return True
    return False


def test_a_second_owner_waits_out_its_timeout_then_gets_the_freed_lock(tmp_path):
    path = tmp_path / "db-writelock"
    first, second = WriteLock(path), WriteLock(path)
    assert first.acquire(1) and first.held
    start = time.monotonic()
    assert second.acquire(0.3) is False
    assert time.monotonic() - start >= 0.25
    assert not second.held
    first.release()
    assert not first.held
    assert second.acquire(1) and second.held
    second.release()
    assert _free(path)


def test_a_waiter_is_woken_by_the_release_not_by_its_timeout(tmp_path):
    path = tmp_path / "db-writelock"
    holder, waiter = WriteLock(path), WriteLock(path)
    holder.acquire(1)
    outcome: dict[str, float | bool] = {}

    def wait() -> None:
        outcome["got"] = waiter.acquire(60)
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # still waiting while the lock is held
    released_at = time.monotonic()
    holder.release()
    thread.join(30)
    assert outcome["got"] is True
    assert released_at <= outcome["at"] < released_at + 30
    assert not _free(path)
    waiter.release()


def test_an_abandoned_wait_gives_the_lock_back_when_it_comes(tmp_path):
    path = tmp_path / "db-writelock"
    holder, impatient = WriteLock(path), WriteLock(path)
    holder.acquire(1)
    assert impatient.acquire(0.05) is False
    holder.release()
    # The impatient owner's helper gets the lock once free and must hand it back.
    latecomer = WriteLock(path)
    assert latecomer.acquire(10)
    latecomer.release()
    assert impatient.acquire(1)
    impatient.release()


def test_a_probe_with_no_timeout_never_takes_the_lock_afterwards(tmp_path):
    """Regression: acquire(0) used to leave a waiter thread that took the lock as soon as the
    holder let go, so the next look found it held for a moment."""
    path = tmp_path / "db-writelock"
    holder = WriteLock(path)
    holder.acquire(1)
    before = threading.active_count()
    for _ in range(20):
        assert WriteLock(path).acquire(0) is False
    assert threading.active_count() == before  # no waiter left behind
    holder.release()
    for _ in range(200):
        assert _free(path)


def test_holding_it_twice_is_an_error(tmp_path):
    lock = WriteLock(tmp_path / "db-writelock")
    lock.acquire(1)
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire(1)
    lock.release()
    lock.release()  # a second release does nothing


def test_another_process_is_excluded_until_it_lets_go(tmp_path):
    path = tmp_path / "db-writelock"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from trialdesk.lib.writelock import WriteLock; "
            "lock = WriteLock(sys.argv[1]); assert lock.acquire(10); "
            "print('held', flush=True); sys.stdin.read()",
            str(path),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "held"
        assert WriteLock(path).acquire(0.2) is False
    finally:
        child.stdin.close()  # the child ends; the kernel releases its lock
        child.wait(timeout=30)
    assert WriteLock(path).acquire(10)


def test_the_lock_file_sits_next_to_the_database_file():
    assert write_lock_path("/srv/trialdesk/var/trialdesk.sqlite3") == (
        "/srv/trialdesk/var/trialdesk.sqlite3-writelock"
    )
    assert write_lock_path(Path("/tmp/x.sqlite3")) == "/tmp/x.sqlite3-writelock"
    assert write_lock_path(":memory:") is None
    assert write_lock_path("file:memorydb_default?mode=memory&cache=shared") is None
    assert write_lock_path("") is None


@pytest.mark.django_db
def test_the_sqlite_backend_holds_the_lock_for_exactly_a_transaction(scratch_database):  # noqa: F811
    if scratch_database != "sqlite":
        pytest.skip("SQLite only")
    from django.db import connection, transaction

    from trialdesk.protocol.models import Study

    seen: dict[str, bool] = {}

    def work() -> None:
        assert connection.settings_dict["ENGINE"] == "trialdesk.db.sqlite3"
        path = write_lock_path(connection.settings_dict["NAME"])
        Study.objects.count()  # a read in autocommit mode takes no lock
        seen["free before"] = _free(path)
        with transaction.atomic():
            Study.objects.create(code="lock-test", title="Lock test")
            seen["free inside"] = _free(path)
            with transaction.atomic():  # a savepoint: still the same transaction
                seen["free in savepoint"] = _free(path)
        seen["free after commit"] = _free(path)
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            Study.objects.create(code="rolled-back", title="Rolled back")
            seen["free before rollback"] = _free(path)
            _ = 1 / 0
        seen["free after rollback"] = _free(path)
        seen["rolled back"] = not Study.objects.filter(code="rolled-back").exists()

    _in_thread(work)
    assert seen == {
        "free before": True,
        "free inside": False,
        "free in savepoint": False,
        "free after commit": True,
        "free before rollback": False,
        "free after rollback": True,
        "rolled back": True,
    }


@pytest.mark.django_db
def test_a_writer_that_cannot_get_its_turn_fails_as_database_is_locked(scratch_database):  # noqa: F811
    if scratch_database != "sqlite":
        pytest.skip("SQLite only")
    from django.db import OperationalError, connection, transaction

    from trialdesk.protocol.models import Study

    def work() -> None:
        path = write_lock_path(connection.settings_dict["NAME"])
        blocker = WriteLock(path)
        assert blocker.acquire(1)
        options = connection.settings_dict["OPTIONS"]
        saved, options["timeout"] = options.get("timeout"), 0.2
        try:
            with pytest.raises(OperationalError, match="database is locked"):
                with transaction.atomic():
                    Study.objects.create(code="never", title="Never written")
        finally:
            options["timeout"] = saved
            blocker.release()
        assert not Study.objects.filter(code="never").exists()
        with transaction.atomic():  # the next transaction gets its turn
            Study.objects.create(code="later", title="Written later")

    _in_thread(work)
