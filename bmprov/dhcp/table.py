"""Backends whose whole reservation table is local: loaded on open, saved on commit.

The table is a shared file (or directory) that several bmprov processes may change at once
(two cron batches, an operator's command). Each batch therefore takes an exclusive lock
(:mod:`bmprov.filelock`) *before* it reads the table and keeps it until its commit is written:
a batch always starts from the previous batch's result and never writes back a stale copy (the
lost reservations of issue 8: without it, the last of four concurrent batches dropped the
others' entries in one round of five; eight batches on 180 nodes, in 7 rounds of 8).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path

from bmprov.dhcp import (
    DhcpBackend,
    DhcpSettings,
    Reservation,
    ReservationConflict,
    owners_by_ip,
    sort_key,
)
from bmprov.errors import DriverError
from bmprov.filelock import FileLock
from bmprov.fsutil import remove_stale_temps

Signature = tuple[int, int, int] | None
"""(inode, size, mtime in ns) of the table file; None if it does not exist."""

log = logging.getLogger(__name__)


def conflict(where: str, have: Reservation, want: Reservation) -> ReservationConflict:
    """The message for "this MAC is already reserved with another address"."""
    return ReservationConflict(
        f"{where}: MAC {want.mac} is already reserved for {have.ip}, bmprov wants {want.ip}; "
        "not overwritten",
        "remove the old reservation first",
    )


class TableBackend(DhcpBackend):
    """Reservations held in memory between :meth:`open` and :meth:`commit`."""

    def __init__(self, settings: DhcpSettings) -> None:
        super().__init__(settings)
        self._table: dict[str, Reservation] = {}
        self._dirty = False
        self._lock: FileLock | None = None
        self._read_as: Signature = None

    @property
    @abstractmethod
    def where(self) -> str:
        """How messages name this server (its file or socket)."""

    @property
    @abstractmethod
    def lock_path(self) -> Path:
        """The sibling lock file (never the table itself: rewrites replace its inode)."""

    @property
    def table_path(self) -> Path | None:
        """The file rewritten whole on commit (None: the backend writes per-host files)."""
        return None

    @abstractmethod
    def _load(self) -> list[Reservation]:
        """Read every reservation the server holds."""

    @abstractmethod
    def _save(self, reservations: list[Reservation]) -> None:
        """Write the whole table and make the server use it."""

    def open(self) -> None:
        """Lock the store, then load the table once per batch (fresh, under the lock)."""
        timeout = self.settings.config.busy_timeout_ms / 1000
        self._lock = FileLock(self.lock_path, timeout, self.where)
        self._lock.acquire()
        try:
            remove_stale_temps([self.lock_path.parent])  # a killed batch's, under the lock
            self._read_as = self._signature()
            self._table = {r.mac: r for r in self._load()}
            log.debug("%s: %d reservation(s) loaded", self.where, len(self._table))
        except BaseException:
            self.close()
            raise
        self._dirty = False
        self.claim(owners_by_ip(self._table.values()))

    def close(self) -> None:
        """Release the lock (also after a failed or skipped commit)."""
        if self._lock is not None:
            self._lock.release()

    def _add(self, res: Reservation) -> bool:
        have = self._table.get(res.mac)
        if have is not None:
            if have.same_as(res):
                return False
            raise conflict(self.where, have, res)
        self._table[res.mac] = res
        self._dirty = True
        return True

    def remove(self, mac: str) -> bool:
        """Drop ``mac``'s reservation (applied on commit)."""
        gone = self._table.pop(mac, None)
        if gone is None:
            return False
        self._owners.pop(gone.ip, None)
        self._dirty = True
        return True

    def lookup(self, mac: str) -> Reservation | None:
        """The reservation held for ``mac``."""
        return self._table.get(mac)

    def list(self, macs: Iterable[str] = ()) -> list[Reservation]:
        """Every reservation, by address."""
        del macs
        return sorted(self._table.values(), key=sort_key)

    def commit(self) -> None:
        """Write and apply the table if anything changed, then let the next batch in.

        Another program (an editor, configuration management) does not take bmprov's lock. If
        the table file changed since this batch read it, nothing is written: the whole batch
        fails at *reserve* (its addresses are released, a re-run starts over from the new
        file) rather than overwrite the other program's edit or lose one of bmprov's.
        """
        if self._dirty:
            if self._signature() != self._read_as:
                raise DriverError(
                    f"{self.where} was changed by another program while this batch ran; "
                    "nothing written, re-run the batch"
                )
            log.debug("%s: writing %d reservation(s)", self.where, len(self._table))
            self._save(self.list())
            self._dirty = False
        self.close()

    def _signature(self) -> Signature:
        path = self.table_path
        if path is None:
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DriverError(f"cannot read {self.where}: {exc.strerror}") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)
