"""One exclusive lock per site for the commands that write outside the state file.

The state file's ``BEGIN IMMEDIATE`` transactions serialise each *write* of two bmprov
processes, but an ``advance`` also writes the DHCP server and the boot tree between its
transactions (and the table backends load on open, save on commit). ``advance`` and
``reconcile`` therefore hold this lock for their whole run, so they never interleave: a
reconcile never sees half of an advance's batch, nor re-adds a reservation an advance is
removing.

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
def site_lock(state_path: Path, timeout: float) -> Iterator[None]:
    """Hold the site's exclusive lock; :class:`LockedError` after ``timeout`` seconds."""
    try:
        fd = os.open(state_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # the state layer reports a missing state file itself
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError(str(state_path)) from None
                time.sleep(_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock
