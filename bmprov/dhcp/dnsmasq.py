"""The ``dnsmasq`` backend: one file per host in a ``dhcp-hostsdir``.

dnsmasq watches the directory with inotify: a new file takes effect without a signal (it
ignores dot-files, so :func:`~bmprov.fsutil.atomic_write`'s temp file is never read half
written). A removal only takes effect on SIGHUP, sent once per batch to the pid in
``[dhcp.dnsmasq] pidfile``. Host lines never carry ``set:`` tags: dnsmasq 2.90 crashes on
SIGHUP after such a line with an active lease is removed; pick the boot file in dnsmasq's own
config (``dhcp-boot``, ``dhcp-match``) instead.

bmprov writes and deletes only its own files (``aa-bb-cc-dd-ee-ff.conf``). A host line an
operator keeps in another file of the hostsdir is read like any other, but never edited: a
removal of that MAC is refused, naming the file and line, so the stale reservation neither
survives silently nor is the operator's file rewritten behind their back.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from bmprov.dhcp import DhcpSettings, Reservation, ReservationRefused
from bmprov.dhcp.table import TableBackend
from bmprov.errors import DriverError
from bmprov.fsutil import write_if_changed

log = logging.getLogger(__name__)

SUFFIX = ".conf"


def host_line(res: Reservation) -> str:
    """``aa:bb:cc:dd:ee:ff,10.0.0.5,node1`` (short host name; no tags, no options)."""
    fields = [res.mac, res.ip]
    if res.hostname:
        fields.append(res.hostname.split(".", 1)[0])
    return ",".join(fields) + "\n"


def parse_line(line: str) -> Reservation | None:
    """The inverse of :func:`host_line` for the lines bmprov writes (others: None)."""
    parts = [p.strip() for p in line.split("#", 1)[0].strip().split(",")]
    if len(parts) < 2:
        return None
    try:
        return Reservation(
            parts[0], parts[1], hostname=parts[2] if len(parts) > 2 else None
        ).checked()
    except ReservationRefused:
        return None


class DnsmasqBackend(TableBackend):
    """``dhcp-host`` lines, one file per MAC, in the hostsdir."""

    kind = "dnsmasq"
    required = ("hostsdir",)

    def __init__(self, settings: DhcpSettings) -> None:
        super().__init__(settings)
        self._hup = False
        self._foreign: dict[str, list[str]] = {}  # MAC → "file:line" in files bmprov did not write

    @property
    def hostsdir(self) -> Path:
        """The ``dhcp-hostsdir`` dnsmasq watches."""
        return self.settings.path("dnsmasq", "hostsdir")

    @property
    def lock_path(self) -> Path:
        """``.bmprov.lock`` inside the hostsdir (dnsmasq skips dot-files)."""
        return self.hostsdir / ".bmprov.lock"

    @property
    def where(self) -> str:
        """This backend in messages."""
        return f"dnsmasq hostsdir {self.hostsdir}"

    def path_for(self, mac: str) -> Path:
        """The file holding ``mac``'s line."""
        return self.hostsdir / (mac.replace(":", "-") + SUFFIX)

    def _load(self) -> list[Reservation]:
        found: list[Reservation] = []
        self._foreign = {}
        try:
            files = sorted(p for p in self.hostsdir.iterdir() if not p.name.startswith("."))
            for path in files:
                lines = path.read_text(encoding="utf-8").splitlines()
                for number, line in enumerate(lines, 1):
                    res = parse_line(line)
                    if res is None:
                        continue
                    found.append(res)
                    if path != self.path_for(res.mac):
                        self._foreign.setdefault(res.mac, []).append(f"{path}:{number}")
        except FileNotFoundError:
            raise DriverError(f"{self.where} does not exist") from None
        except OSError as exc:
            raise DriverError(f"cannot read {self.where}: {exc}") from None
        return found

    def _add(self, res: Reservation) -> bool:
        changed = super()._add(res)
        try:
            write_if_changed(self.path_for(res.mac), host_line(res))
        except OSError as exc:
            self._table.pop(res.mac, None)
            raise DriverError(f"cannot write to {self.where}: {exc}") from None
        return changed

    def remove(self, mac: str) -> bool:
        """Delete the host's file; dnsmasq forgets it on the SIGHUP sent by :meth:`commit`.

        :raises DriverError: (nothing removed) the MAC also has a line in a file bmprov did
            not write: only the operator edits it.
        """
        if mac in self._foreign:
            raise DriverError(
                f"{self.where}: {mac} is also reserved at {', '.join(self._foreign[mac])}, "
                "a file bmprov did not write; nothing removed: delete that line by hand "
                "(bmprov never edits an operator's file), then re-run"
            )
        if not super().remove(mac):
            return False
        try:
            self.path_for(mac).unlink(missing_ok=True)
        except OSError as exc:
            raise DriverError(f"cannot remove {self.path_for(mac)}: {exc}") from None
        self._hup = True
        return True

    def _save(self, reservations: list[Reservation]) -> None:
        del reservations  # every add and remove already touched its own file
        if self._hup:
            self._signal()
            self._hup = False

    def _signal(self) -> None:
        pidfile = self.settings.sub("dnsmasq").get("pidfile")
        if not pidfile:
            return  # removals take effect at dnsmasq's next restart
        path = self.settings.config.resolve(pidfile)
        try:
            pid = int(path.read_text().split()[0])
            log.debug("%s: SIGHUP to dnsmasq pid %d (removals take effect)", self.where, pid)
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError, IndexError) as exc:
            raise DriverError(f"cannot signal dnsmasq (pidfile {path}): {exc}") from None
