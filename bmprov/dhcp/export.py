"""What bmprov expects the DHCP server to hold, how that compares with the server, and exports.

``bmprov dhcp list`` shows :func:`compare` of :func:`expected` (the state file) with what the
backend really holds; ``bmprov dhcp export --format isc|dnsmasq|kea`` renders :func:`expected`
for sites that manage their DHCP server by configuration management.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bmprov.config import Config
from bmprov.dhcp import DhcpSettings, Reservation, open_backend, sort_key
from bmprov.dhcp.dnsmasq import host_line
from bmprov.dhcp.kea import to_kea
from bmprov.dhcp.omapi_wire import host_statements
from bmprov.errors import InputError
from bmprov.fsutil import write_if_changed
from bmprov.runlock import site_lock
from bmprov.store import Store

FORMATS = ("isc", "dnsmasq", "kea")
ISC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,199}")
"""A ``host`` name ISC dhcpd 4.4.3 accepts unquoted: it refuses every quoted name ("expecting a
name for host declaration") and splits names at dots (``a._b`` or ``a..b``: "expecting left
brace"), so no quotes and no dots."""
Status = Literal["ok", "missing", "differs", "unexpected"]


@dataclass(frozen=True)
class Expected:
    """A node with an address, and the reservation it should have."""

    serial: str
    reservation: Reservation


def expected(db: Store, settings: DhcpSettings) -> list[Expected]:
    """Every node that has an IP and a MAC, with its reservation (two queries)."""
    out = [
        Expected(a.serial, settings.reservation(a.mac, a.ip, a.serial, a.hostname))
        for a in db.addressed()
    ]
    out.sort(key=lambda e: sort_key(e.reservation))
    return out


@dataclass(frozen=True)
class Row:
    """One line of ``dhcp list``: what bmprov expects next to what the server holds."""

    serial: str | None
    mac: str
    expected_ip: str | None
    server_ip: str | None
    status: Status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "serial": self.serial,
            "mac": self.mac,
            "expected_ip": self.expected_ip,
            "server_ip": self.server_ip,
            "status": self.status,
        }


def compare(want: list[Expected], held: list[Reservation]) -> list[Row]:
    """Expected vs held, by MAC; reservations bmprov does not know come last as unexpected."""
    by_mac = {r.mac: r for r in held}
    rows: list[Row] = []
    for item in want:
        res = item.reservation
        have = by_mac.pop(res.mac, None)
        server_ip = have.ip if have else None
        status: Status = "missing" if have is None else "ok" if have.ip == res.ip else "differs"
        rows.append(Row(item.serial, res.mac, res.ip, server_ip, status))
    rows += [
        Row(None, r.mac, None, r.ip, "unexpected") for r in sorted(by_mac.values(), key=sort_key)
    ]
    return rows


def server_view(db: Store, settings: DhcpSettings) -> list[Row]:
    """Open the backend once and compare what it holds with the state file."""
    want = expected(db, settings)
    with open_backend(settings) as backend:
        held = backend.list([e.reservation.mac for e in want])
    return compare(want, held)


def render(items: list[Expected], fmt: str) -> str:
    """The reservations as an ISC ``host`` block list, dnsmasq ``dhcp-host`` lines or Kea JSON."""
    reservations = [e.reservation for e in items]
    if fmt == "isc":
        return "".join(_isc_host(r) for r in reservations)
    if fmt == "dnsmasq":
        return "".join("dhcp-host=" + host_line(r) for r in reservations)
    if fmt == "kea":
        return json.dumps({"reservations": [to_kea(r) for r in reservations]}, indent=2) + "\n"
    raise InputError(f"unknown export format {fmt!r} (one of: {', '.join(FORMATS)})")


def write_export(dest: Path, text: str) -> bool:
    """Write an export atomically (only if it changed); :class:`InputError` naming ``dest``."""
    if dest.is_dir():
        raise InputError(f"--output {dest} is a directory; name a file")
    try:
        return write_if_changed(dest, text)
    except OSError as exc:
        raise InputError(f"--output {dest}: cannot write it ({exc.strerror or exc})") from None


def export_file(db: Store, config: Config, fmt: str, dest: Path) -> int:
    """Write the expected reservations to ``dest`` (the file a DHCP server may read) under the
    site's run lock, shared: a ``reconcile --fix`` never reads or repairs beside it. Returns
    how many reservations it holds."""
    with site_lock(db, config.busy_timeout_ms / 1000, shared=True, site=config.site):
        items = expected(db, config.settings.dhcp)
        write_export(dest, render(items, fmt))
    return len(items)


def isc_host_name(res: Reservation) -> str:
    """``bmprov-<serial>``: unique, and the same every export (dhcpd never sees two names).

    Serials may hold ``.`` and ``_``; they are escaped as ``_2e`` and ``_5f`` (``_`` only ever
    starts an escape, so two serials never share a name). A MAC-only reservation is
    ``bmprov-<mac without colons>``.
    """
    raw = res.name or res.mac.replace(":", "")
    name = "bmprov-" + raw.replace("_", "_5f").replace(".", "_2e")
    if not ISC_NAME.fullmatch(name):
        raise InputError(f"{res.name or res.mac}: cannot name it as an ISC dhcpd host ({name!r})")
    return name


def _isc_host(res: Reservation) -> str:
    lines = [f"host {isc_host_name(res)} {{", f"  hardware ethernet {res.mac};"]
    lines.append(f"  fixed-address {res.ip};")
    lines += [f"  {s.strip()}" for s in host_statements(res).split(";") if s.strip()]
    body = "\n".join(line if line.endswith(("{", ";")) else line + ";" for line in lines)
    return body + "\n}\n"
