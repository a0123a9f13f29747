"""Serials, MACs and host names that repeat within one sheet."""

from __future__ import annotations

from bmprov.errors import Problem
from bmprov.importing.columns import SheetRow


def check_duplicates(
    name: str, rows: list[SheetRow], headers: dict[str, str], problems: list[Problem]
) -> None:
    serials = [r.serial.casefold() for r in rows]
    macs = [m for r in rows for m in r.macs or ()]
    hosts = [h for r in rows if (h := r.value("hostname"))]
    if (
        len(set(serials)) == len(serials)
        and len(set(macs)) == len(macs)
        and len(set(hosts)) == len(hosts)
    ):
        return  # the usual case: no duplicates at all
    first_serial: dict[str, int] = {}
    first_mac: dict[str, int] = {}
    first_host: dict[str, int] = {}
    keep: list[SheetRow] = []
    for r in rows:
        found: list[Problem] = []
        key = r.serial.casefold()
        if key in first_serial:
            found.append(
                Problem(
                    name,
                    r.row,
                    headers["serial"],
                    f"duplicate serial {r.serial} (also on row {first_serial[key]})",
                )
            )
        first_serial.setdefault(key, r.row)
        for m in r.macs or ():
            if first_mac.get(m, r.row) != r.row:
                found.append(
                    Problem(
                        name,
                        r.row,
                        headers.get("macs"),
                        f"duplicate MAC {m} (also on row {first_mac[m]})",
                    )
                )
            first_mac.setdefault(m, r.row)
        if r.macs and len(set(r.macs)) != len(r.macs):
            found.append(Problem(name, r.row, headers.get("macs"), "the same MAC twice"))
        host = r.value("hostname")
        if host and host in first_host:
            found.append(
                Problem(
                    name,
                    r.row,
                    headers.get("hostname"),
                    f"duplicate host name {host} (also on row {first_host[host]})",
                )
            )
        if host:
            first_host.setdefault(host, r.row)
        problems.extend(found)
        if not found:
            keep.append(r)
    rows[:] = keep
