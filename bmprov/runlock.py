"""One lock per site between ``reconcile`` and ``advance``.

The state file's ``BEGIN IMMEDIATE`` transactions serialise each *write* of two bmprov
processes, and the DHCP stores' own locks (:mod:`bmprov.filelock`) serialise their
read-modify-write, but an ``advance`` also writes the boot tree and OMAPI between those, so a
reconcile running meanwhile would see half a batch and could "repair" it. ``advance`` holds
this lock *shared* for its whole run (concurrent advances still proceed, serialised by those
finer locks, as before), and ``reconcile`` holds it *exclusive* while it reads and repairs, so
a reconcile never interleaves with an advance or another reconcile.

The lock is ``flock`` on the state file itself (opened read-only): no new file, nothing
written, and independent of SQLite's own POSIX record locks (Linux keeps the two apart;
``flock`` belongs to this open file description, so SQLite closing its descriptors cannot
drop it). Waiting longer than ``state_timeout`` gives :class:`LockedError` (exit 1, retry).
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


@contextlib.contextmanager
def site_lock(state_path: Path | None, timeout: float, *, shared: bool = False) -> Iterator[None]:
    """Hold the site's lock (exclusive, or ``shared``); :class:`LockedError` after ``timeout``
    seconds of waiting. ``state_path`` None (a PostgreSQL state, shared by hosts): no lock
    yet; a session-level advisory lock is its equivalent (not built)."""
    if state_path is None:
        yield
        return
    try:
        fd = os.open(state_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # the state layer reports a missing state file itself
        yield
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
