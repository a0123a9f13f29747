"""Backends whose whole reservation table is local: loaded on open, saved on commit."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable

from bmprov.dhcp import (
    DhcpBackend,
    DhcpSettings,
    Reservation,
    ReservationConflict,
    owners_by_ip,
    sort_key,
)

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

    @property
    @abstractmethod
    def where(self) -> str:
        """How messages name this server (its file or socket)."""

    @abstractmethod
    def _load(self) -> list[Reservation]:
        """Read every reservation the server holds."""

    @abstractmethod
    def _save(self, reservations: list[Reservation]) -> None:
        """Write the whole table and make the server use it."""

    def open(self) -> None:
        """Load the table once per batch."""
        self._table = {r.mac: r for r in self._load()}
        log.debug("%s: %d reservation(s) loaded", self.where, len(self._table))
        self._dirty = False
        self.claim(owners_by_ip(self._table.values()))

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
        """Write and apply the table if anything changed."""
        if self._dirty:
            log.debug("%s: writing %d reservation(s)", self.where, len(self._table))
            self._save(self.list())
            self._dirty = False
