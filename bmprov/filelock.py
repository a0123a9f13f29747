"""An exclusive lock around the read-modify-write of a shared file (the DHCP stores).

bmprov rewrites whole files (``dhcp-reservations.json``, Kea's config) by temp file + rename, so
the file itself cannot carry the lock: a rename replaces the inode another process has locked.
The lock is taken on a sibling *lock file* that is created once and never replaced or removed
(``flock`` on it; released by the kernel when the process dies, so a killed batch never leaves
it held). Another bmprov waits for it up to ``state_timeout`` seconds, then gives up with a
clear message; programs that do not know the lock (an editor, configuration management) are
not held back by it: see :meth:`bmprov.dhcp.table.TableBackend.commit` for what bmprov does
when one of them wrote the file meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from bmprov.errors import DriverError

POLL = 0.02
"""Seconds between two tries while another bmprov holds the lock: a file-backend batch of 250
new reservations (open, add, commit) holds it 2.7 ms at best, 14 ms median on the loaded
2-core box, so a waiter gets in soon after without spinning."""


class FileLock:
    """``flock(LOCK_EX)`` on ``path`` (created 0644 if missing), given up after ``timeout`` s."""

    def __init__(self, path: Path, timeout: float, what: str) -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> None:
        """Wait for the lock; DriverError if another bmprov holds it past the timeout."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:  # made by another user: flock works on a read-only descriptor
            fd = self._open_read_only()
        except OSError as exc:
            raise DriverError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise DriverError(
                        f"another bmprov has been changing {self.what} for over "
                        f"{self.timeout:g} s (lock {self.path}); retry when it is done"
                    ) from None
                time.sleep(POLL)
            except OSError as exc:
                os.close(fd)
                raise DriverError(f"cannot lock {self.path}: {exc.strerror}") from None
        self._fd = fd

    def _open_read_only(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise DriverError(f"cannot open lock file {self.path}: {exc.strerror}") from None

    def release(self) -> None:
        """Let the next bmprov in.

        ``LOCK_UN`` first: forked file workers inherit the descriptor, and a plain close
        would leave the lock held until the last of them exits.
        """
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
