"""dhcpd's own files, read for the host objects OMAPI cannot list.

OMAPI only answers "what do you hold for this MAC?", so reservations for MACs bmprov does not
know (orphans) can only be found in dhcpd's files: ``host`` blocks in its configuration, and
the ``host`` entries dhcpd appends to its lease file for every OMAPI add and delete (a later
entry for the same name replaces an earlier one; ``deleted;`` removes it). Both are read when
``[dhcp.omapi] config_file`` / ``leases_file`` name them and bmprov can read them; otherwise
the report says that orphans were not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

from bmprov import validate
from bmprov.dhcp import Reservation

_HOST = re.compile(r'(?m)^\s*host\s+("?)([^\s{"]+)\1\s*\{([^}]*)\}')
_MAC = re.compile(r"hardware\s+ethernet\s+([0-9A-Fa-f:]+)\s*;")
_IP = re.compile(r"fixed-address\s+([0-9.]+)\s*;")
_COMMENT = re.compile(r"#[^\n]*")


def hosts(text: str, into: dict[str, Reservation] | None = None) -> dict[str, Reservation]:
    """name → host of every ``host`` block in ``text``, later blocks replacing earlier ones."""
    table = into if into is not None else {}
    for _, name, body in _HOST.findall(_COMMENT.sub("", text)):
        if re.search(r"(?m)^\s*deleted\s*;", body):
            table.pop(name, None)
            continue
        mac, ip = _MAC.search(body), _IP.search(body)
        if mac is None:
            continue
        try:
            canonical = validate.mac(mac.group(1))
        except ValueError:
            continue
        table[name] = Reservation(canonical, ip.group(1) if ip else "", name)
    return table


def read_hosts(paths: list[Path]) -> tuple[dict[str, Reservation], list[str]]:
    """mac → host from the files (config first, then leases), and the files that were unreadable."""
    table: dict[str, Reservation] = {}
    unreadable: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            unreadable.append(f"{path}: {exc.strerror or exc}")
            continue
        hosts(text, table)
    return {r.mac: r for r in table.values()}, unreadable
