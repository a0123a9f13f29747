"""One run lock per site between the commands that write the boot tree, DHCP or BMCs.

The state's transactions serialise each *write* of two bmprov processes, and the DHCP stores'
own locks (:mod:`bmprov.filelock`) serialise their read-modify-write, but an ``advance`` also
writes the boot tree and OMAPI between those, so a reconcile running meanwhile would see half
a batch and could "repair" it. ``advance``, ``pxe render|clear``, the writing ``dhcp``
commands and ``power`` hold this lock *shared* for their whole run (they still run beside each
other, serialised by those finer locks, as before), and ``reconcile`` holds it *exclusive*
while it reads and repairs, so a reconcile never interleaves with any of them or with another
reconcile.

* SQLite: ``flock`` on ``<state file>.lock`` beside the state file (made empty on first use,
  never written). **Not** on the state file itself: closing *any* descriptor of a file drops
  every POSIX record lock the process holds on it, SQLite's included, so a long-running process
  (``bmprov serve``, whose completions advance nodes) lost its shared lock on the database, and
  another process closing its connection then deleted the WAL under it: serve's later commits
  went to a deleted file and were lost (seen in the lab, issue 15; ``tests/test_runlock.py``).
* PostgreSQL: a session-level advisory lock on the store's connection, keyed by the site
  (:mod:`bmprov.store.pg_runlock`): hosts of other sites sharing the database never wait.

Waiting longer than ``state_timeout`` gives :class:`LockedError` (exit 1, retry).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bmprov.errors import LockedError, StateError
from bmprov.store import Store

_POLL = 0.05  # seconds between two tries while another bmprov holds the lock


class SiteLocked(LockedError):
    """The site's run lock stayed held by another bmprov longer than ``state_timeout``."""

    def __init__(self, what: str, timeout: float) -> None:
        StateError.__init__(
            self,
            f"{what} is locked: another bmprov run (reconcile, advance, pxe, dhcp or power)"
            f" still held it after {timeout:g} s ([state] timeout)",
            "retry when it has finished",
        )


def lock_file(state_path: Path) -> Path:
    """``<state file>.lock``: the file a SQLite state's run lock is taken on."""
    return state_path.with_name(state_path.name + ".lock")


@contextlib.contextmanager
def site_lock(
    db: Store, timeout: float, *, shared: bool = False, site: str | None = None
) -> Iterator[None]:
    """Hold the run lock of ``site`` (exclusive, or ``shared``) in ``db``'s state;
    :class:`LockedError` after ``timeout`` seconds of waiting. The site matters on
    PostgreSQL only (a SQLite state file is one site's)."""
    if db.backend == "postgresql":
        with _pg_lock(db, site or "", timeout, shared):
            yield
        return
    path = getattr(db, "path", None)
    if not isinstance(path, Path):
        yield  # an in-memory or foreign store: nothing to lock
        return
    if not path.exists():  # the state layer reports a missing state file itself
        yield
        return
    try:
        fd = os.open(lock_file(path), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:  # a directory this user cannot write: it cannot write the
        yield  # state either (SQLite needs the directory for its journal), so nothing to guard
        return
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB

        def take() -> bool:
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                return False
            return True

        _wait(take, timeout, lambda: LockedError(str(path)))
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _pg_lock(db: Any, site: str, timeout: float, shared: bool) -> Iterator[None]:
    name = f"site {site}" if site else "the site"
    _wait(
        lambda: bool(db.try_site_lock(site, shared=shared)),
        timeout,
        lambda: SiteLocked(f"{name} in PostgreSQL state {db.location}", timeout),
    )
    try:
        yield
    finally:
        # a connection lost meanwhile took the lock with it; never hide the run's own error
        with contextlib.suppress(StateError):
            db.release_site_lock(site, shared=shared)


def _wait(take: Callable[[], bool], timeout: float, error: Callable[[], Exception]) -> None:
    deadline = time.monotonic() + timeout
    while not take():
        if time.monotonic() >= deadline:
            raise error()
        time.sleep(_POLL)
