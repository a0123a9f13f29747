"""``bmprov export``: the inventory back as a spreadsheet (``.xlsx``/``.csv``), or as NetBox
device CSV.

The bmprov format is one row per node: the columns a procurement sheet imports, under headers
the importer reads back (so sheet → import → export → import changes nothing), then what bmprov
added: stage, IP, the date each stage was (last) entered and the last event. Those extra
headers are ignored by ``bmprov import`` without a warning (:data:`EXPORT_ONLY`). Root password
hashes and other install options are not exported: the sheet goes to procurement and finance.

``--format netbox`` writes NetBox's device import columns, bmprov stages mapped onto NetBox
device statuses (:data:`NETBOX_STATUS`); ``bmprov import`` reads those headers too.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bmprov import states as st
from bmprov.errors import InputError
from bmprov.fsutil import atomic_write
from bmprov.store import Store
from bmprov.xlsxout import write_xlsx

SHEET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("serial", "Serial Number"),
    ("macs", "MAC Address"),
    ("model", "Model"),
    ("os", "OS"),
    ("hostname", "Hostname"),
    ("site", "Site"),
    ("rack", "Rack"),
    ("unit", "Unit"),
    ("asset_tag", "Asset Tag"),
    ("bmc_address", "BMC Address"),
    ("bmc_type", "BMC Type"),
    ("notes", "Notes"),
)
"""Node field → the header it is exported under (each an alias the importer knows)."""

STAGE_ORDER = (
    *st.PROVISIONING_PIPELINE,
    st.FAILED,
    st.DISCOVERY,
    st.DECOMMISSIONING,
    st.WIPING,
    st.RETIRED,
)
EXTRA = ("Stage", "IP", *(f"{s} entered" for s in STAGE_ORDER), "Last Event")

NETBOX_STATUS = {
    st.PURCHASING: "inventory",
    st.MOUNTING: "staged",
    st.NETWORKING: "staged",
    st.OS_PROVISIONING: "staged",
    st.INSTALLING: "staged",
    st.DEPLOYED: "active",
    st.FAILED: "failed",
    st.DISCOVERY: "inventory",
    st.DECOMMISSIONING: "decommissioning",
    st.WIPING: "decommissioning",
    st.RETIRED: "offline",
}
"""bmprov stage → NetBox device status (NetBox: offline, active, planned, staged, failed,
inventory, decommissioning)."""

NETBOX_COLUMNS = (
    "name",
    "role",
    "device_type",
    "platform",
    "serial",
    "asset_tag",
    "site",
    "rack",
    "position",
    "face",
    "status",
    "comments",
)
NETBOX_ROLE = "server"

EXPORT_ONLY = frozenset(
    (
        "stage",
        "ip",
        "last event",
        *(f"{s} entered" for s in STAGE_ORDER),
        *("role", "face", "status", "manufacturer"),
    )
)
"""Headers bmprov's own exports add: ``bmprov import`` ignores them without a warning."""

FORMATS = ("bmprov", "netbox")


def export(
    db: Store,
    path: Path,
    *,
    site: str | None = None,
    stage: str | None = None,
    fmt: str = "bmprov",
) -> int:
    """Write the nodes (optionally of one site / stage) to ``path``; returns the row count."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise InputError(f"{path}: export writes .xlsx or .csv, not {suffix or 'no extension'}")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: one of {', '.join(FORMATS)}")
    if stage is not None and stage not in st.ALL_STAGES:
        raise InputError(f"--stage {stage}: not a stage ({', '.join(STAGE_ORDER)})")
    if fmt == "netbox" and suffix != ".csv":
        raise InputError(f"{path}: --format netbox writes NetBox's device CSV: name it .csv")
    header, rows = (
        (list(NETBOX_COLUMNS), _netbox_rows(db, site, stage))
        if fmt == "netbox"
        else ([h for _, h in SHEET_COLUMNS] + list(EXTRA), _rows(db, site, stage))
    )
    if not path.parent.is_dir():
        raise InputError(f"{path}: directory {path.parent} does not exist")
    if suffix == ".xlsx":
        tmp = path.with_name(f".{path.name}.tmp")
        count = write_xlsx(tmp, header, rows, "nodes")
        tmp.replace(path)
        return count
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for count, row in enumerate(rows, start=1):  # noqa: B007
        writer.writerow(["" if v is None else v for v in row])
    atomic_write(path, out.getvalue())
    return count


def _nodes(
    db: Store, site: str | None, stage: str | None
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """(node fields, MACs) of the selected nodes, by serial."""
    fields = ["id", "stage", "ip", *(f for f, _ in SHEET_COLUMNS if f != "macs")]
    macs: dict[int, list[str]] = defaultdict(list)
    for mac, node_id in db.iter_macs():
        macs[node_id].append(mac)
    selected = []
    for values in db.iter_node_columns(fields):
        node = dict(zip(fields, values, strict=True))
        if (site is None or node["site"] == site) and (stage is None or node["stage"] == stage):
            selected.append(node)
    selected.sort(key=lambda n: n["serial"])
    for node in selected:
        yield node, tuple(macs.get(node["id"], ()))


def _rows(db: Store, site: str | None, stage: str | None) -> Iterator[list[Any]]:
    entered: dict[int, dict[str, str]] = defaultdict(dict)
    last: dict[int, str] = {}
    for node_id, to_stage, at, reason in db.iter_history():
        entered[node_id][to_stage] = at[:19].replace("T", " ")
        last[node_id] = f"{at[:19].replace('T', ' ')} {reason or to_stage}"
    for node, macs in _nodes(db, site, stage):
        row: list[Any] = [
            ", ".join(macs) if field == "macs" else node[field] for field, _ in SHEET_COLUMNS
        ]
        dates = entered.get(node["id"], {})
        row += [node["stage"], node["ip"], *(dates.get(s) for s in STAGE_ORDER)]
        row.append(last.get(node["id"]))
        yield row


def _netbox_rows(db: Store, site: str | None, stage: str | None) -> Iterator[Sequence[Any]]:
    for node, _ in _nodes(db, site, stage):
        yield [
            node["hostname"] or node["serial"],
            NETBOX_ROLE,
            node["model"],
            node["os"],
            node["serial"],
            node["asset_tag"],
            node["site"],
            node["rack"],
            node["unit"],
            "front" if node["unit"] else None,
            NETBOX_STATUS.get(node["stage"], "offline"),
            node["notes"],
        ]
