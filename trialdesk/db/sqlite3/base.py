"""Django's SQLite backend, with the writers of a database file queued on a blocking lock.

With ``transaction_mode`` ``IMMEDIATE`` (or ``EXCLUSIVE``) every transaction takes SQLite's
write lock at ``BEGIN``; a second writer gets ``SQLITE_BUSY`` and SQLite's busy handler retries
it after sleeps of growing length (up to 100 ms each), whether or not the lock freed meanwhile.
Here each such transaction first takes a :class:`~trialdesk.lib.writelock.WriteLock` on
``<database>-writelock`` next to the database file, which wakes the next writer as soon as the
previous one commits or rolls back, then runs ``BEGIN IMMEDIATE`` as before.

The file lock only orders the waiting: SQLite's own lock still guards the data, so a writer that
does not take the file lock (a statement in autocommit mode, another tool on the same file)
stays correct and merely waits in the busy handler as before. The wait for the file lock is
bounded by the connection's ``timeout`` option, like SQLite's; past it the transaction fails
with "database is locked". In-memory databases have no file and no file lock.
"""

from __future__ import annotations

import os
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

from trialdesk.lib.writelock import WriteLock

#: SQLite's own default busy timeout (seconds), used when the settings give none.
DEFAULT_TIMEOUT = 5.0
LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})


def write_lock_path(name: Any) -> str | None:
    """The lock file of a database file named ``name``; ``None`` for an in-memory database."""
    text = os.fspath(name) if name else ""
    if not text or text == ":memory:" or text.startswith("file:"):
        return None
    return f"{text}-writelock"


class DatabaseWrapper(base.DatabaseWrapper):
    """SQLite with writing transactions queued on ``<database>-writelock``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock: WriteLock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        self._take_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._drop_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()
        finally:
            self._drop_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()
        finally:
            self._drop_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._drop_write_lock()

    def _take_write_lock(self) -> None:
        if self.transaction_mode not in LOCKING_MODES or self.is_in_memory_db():
            return
        path = write_lock_path(self.settings_dict["NAME"])
        if path is None:
            return
        if self._write_lock is None or self._write_lock.path != path:
            self._write_lock = WriteLock(path)
        if self._write_lock.held:
            return
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", DEFAULT_TIMEOUT))
        try:
            acquired = self._write_lock.acquire(timeout)
        except OSError as error:
            raise OperationalError(f"cannot take the write lock {path}: {error}") from error
        if not acquired:
            raise OperationalError(
                f"database is locked: no write turn within {timeout:g} s ({path})"
            )

    def _drop_write_lock(self) -> None:
        if self._write_lock is not None:
            self._write_lock.release()
