"""A blocking exclusive lock on a file, shared by every thread and process that opens its path.

SQLite lets one writer at a time into a database and makes the others wait in its *busy
handler*, which does not wake when the lock frees: it sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
50, 50, then 100 ms at a time and tries again. Under many concurrent writers the waits add up
to whole tens of milliseconds after the lock was free, and a writer that arrives later may pass
one that is sleeping. :class:`WriteLock` queues the writers in the kernel instead
(``flock(2)``): a waiter is woken as soon as the holder lets go.

Each :meth:`WriteLock.acquire` opens its own descriptor, so two threads of one process exclude
each other exactly as two processes do (``flock`` locks belong to the open file, not to the
process). The lock is released by :meth:`WriteLock.release`, and by the kernel if the process
dies.
"""

from __future__ import annotations

import fcntl
import os
import threading


class WriteLock:
    """An exclusive ``flock`` on ``path`` (created if missing), taken and released by one owner.

    Not re-entrant: :meth:`acquire` while held is an error.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the lock; ``True`` once held, ``False`` if the
        time ran out.

        Raises
        ------
        OSError
            The lock file cannot be opened or locked.
        """
        if self._fd is not None:
            raise RuntimeError(f"write lock {self.path} is already held by this owner")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if timeout <= 0:
                # No waiter thread for a mere probe: one would take the lock later, when its
                # holder lets go, and hold it for a moment while giving it back.
                os.close(fd)
                return False
            if not _wait(fd, timeout):
                return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next waiter in (nothing happens if the lock is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _wait(fd: int, timeout: float) -> bool:
    """Block on ``flock(fd)`` for at most ``timeout`` seconds.

    ``flock`` itself has no time limit, so a helper thread blocks on it while the caller waits
    on an event with one. If the time runs out first, the helper is told to give the lock back
    (and close ``fd``) as soon as it gets it; the caller must then forget ``fd``.
    """
    mutex = threading.Lock()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def block() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            outcome["error"] = error
        with mutex:
            if outcome.get("abandoned") or "error" in outcome:
                os.close(fd)
            done.set()

    threading.Thread(target=block, name="write-lock-wait", daemon=True).start()
    if done.wait(timeout):
        return _outcome(outcome)
    with mutex:
        if done.is_set():
            return _outcome(outcome)
        outcome["abandoned"] = True
    return False


def _outcome(outcome: dict[str, object]) -> bool:
    error = outcome.get("error")
    if isinstance(error, OSError):
        raise error
    return True
