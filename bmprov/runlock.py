"""One lock per site between ``reconcile`` and ``advance``.

The state file's ``BEGIN IMMEDIATE`` transactions serialise each *write* of two bmprov
processes, and the DHCP stores' own locks (:mod:`bmprov.filelock`) serialise their
read-modify-write, but an ``advance`` also writes the boot tree and OMAPI between those, so a
reconcile running meanwhile would see half a batch and could "repair" it. ``advance`` holds
this lock *shared* for its whole run (concurrent advances still proceed, serialised by those
finer locks, as before), and ``reconcile`` holds it *exclusive* while it reads and repairs, so
a reconcile never interleaves with an advance or another reconcile.

The lock is ``flock`` on ``<state file>.lock`` beside the state file (made empty by ``bmprov
init``, or on first use for older sites; never written). **Not** on the state file itself:
closing *any* descriptor of a file drops every POSIX record lock the process holds on it,
SQLite's included, so a long-running process (``bmprov serve``, whose completions advance
nodes) would lose its shared lock on the database and another process closing its connection
would then delete the WAL under it: serve's later commits went to a deleted file and were lost
(seen in the lab, issue 15).
Waiting longer than ``state_timeout`` gives :class:`LockedError` (exit 1, retry).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bmprov.errors import LockedError

_POLL = 0.05  # seconds between two tries while another bmprov holds the lock


def lock_file(state_path: Path) -> Path:
    """``<state file>.lock``: the file the site lock is taken on."""
    return state_path.with_name(state_path.name + ".lock")


@contextlib.contextmanager
def site_lock(
    state_path: Path | str | None, timeout: float, *, shared: bool = False
) -> Iterator[None]:
    """Hold the site's lock (exclusive, or ``shared``); :class:`LockedError` after ``timeout``
    seconds of waiting. ``state_path`` None (a PostgreSQL state, shared by hosts): no lock
    yet; a session-level advisory lock is its equivalent (not built)."""
    if state_path is None:
        yield
        return
    state_path = Path(state_path)  # a PostgreSQL store's "path" is its URL: no such file
    if not state_path.is_file():  # the state layer reports a missing state file itself
        yield
        return
    try:
        fd = os.open(lock_file(state_path), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:  # a directory this user cannot write: it cannot write the
        yield  # state either (SQLite needs the directory for its journal), so nothing to guard
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError(str(state_path)) from None
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock
