"""Comparing valid rows with the state: what is new, changed or unchanged, and which rows
clash with other nodes (duplicate MACs or host names)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bmprov.config import Config
from bmprov.errors import Problem
from bmprov.importing.columns import NODE_COLUMNS, NODE_INDEX, SheetRow
from bmprov.importing.read import ReadResult
from bmprov.store import Store


@dataclass
class Change:
    """A node the sheet changes: its id, row and ``{field: (old, new)}``."""

    row: SheetRow
    node_id: int
    changes: dict[str, tuple[Any, Any]]
    stage: str


@dataclass
class ImportPlan:
    """What an import will do (or did)."""

    file: str
    new: list[SheetRow] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    written: bool = False
    warnings: list[Problem] = field(default_factory=list)  # imported anyway (unknown OS...)

    def to_dict(self, dry_run: bool) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "file": self.file,
            "dry_run": dry_run,
            "written": self.written,
            "counts": {
                "new": len(self.new),
                "changed": len(self.changed),
                "unchanged": len(self.unchanged),
            },
            "new": [r.serial for r in self.new],
            "changed": [
                {
                    "serial": c.row.serial,
                    "row": c.row.row,
                    "changes": {k: [old, new] for k, (old, new) in c.changes.items()},
                }
                for c in self.changed
            ],
            "unknown_columns": self.unknown_columns,
            "warnings": [{**asdict(p), "text": str(p)} for p in self.warnings],
        }


@dataclass
class StoredNodes:
    """The state file's view of its nodes, for :func:`plan_import`."""

    nodes: dict[str, tuple[int, str, int, str, tuple[Any, ...]]]
    """serial → (id, stage, automated, install_options JSON, node fields in NODE_COLUMNS order)"""
    macs: dict[int, tuple[str, ...]]  # node id -> MACs in order
    mac_owner: dict[str, str]
    host_owner: dict[str, str]


def load_stored(db: Store) -> StoredNodes:
    """The nodes, MACs and host names in the state file.

    Row by row, with equal values (model, rack, stage…) shared as one object: 100,000 nodes add
    about 105 MB of RSS this way; a fetchall() with a copy per value added about 190 MB.
    """
    names = ("serial", "id", "stage", "automated", "install_options", *NODE_COLUMNS)
    one_of: dict[Any, Any] = {}  # value -> the one object that stands for it
    shared = one_of.setdefault
    nodes: dict[str, tuple[int, str, int, str, tuple[Any, ...]]] = {}
    for serial, node_id, stage, automated, install, *fields in db.iter_node_columns(names):
        nodes[serial] = (
            node_id,
            shared(stage, stage),
            automated,
            shared(install, install),
            tuple(map(shared, fields, fields)),
        )
    serial_of = {t[0]: s for s, t in nodes.items()}
    lists: dict[int, list[str]] = {}
    mac_owner: dict[str, str] = {}
    for mac, node_id in db.iter_macs():
        lists.setdefault(node_id, []).append(mac)
        mac_owner[mac] = serial_of[node_id]
    macs = {node_id: tuple(m) for node_id, m in lists.items()}
    host = NODE_INDEX["hostname"]
    host_owner = {t[4][host]: s for s, t in nodes.items() if t[4][host]}
    return StoredNodes(nodes, macs, mac_owner, host_owner)


def plan_import(db: Store, config: Config, read: ReadResult) -> tuple[ImportPlan, list[Problem]]:
    """Compare valid rows with the state file. Call inside a transaction for a consistent view."""
    plan = ImportPlan(file=read.file, unknown_columns=read.unknown_columns)
    problems: list[Problem] = []
    state = load_stored(db)
    marker_at = NODE_INDEX.get(config.settings.importing.marker_field, NODE_INDEX["notes"])
    pattern = config.settings.importing.marker_pattern
    marked: dict[Any, bool] = {}  # marker cell -> does it match (cells repeat: test each once)

    def is_marked(value: Any) -> bool:
        flag = marked.get(value)
        if flag is None:
            flag = marked[value] = bool(pattern.search(str(value or "")))
        return flag

    claiming = _claiming_others(read.rows, state)
    if claiming:
        sheet_rows = {r.serial: r for r in read.rows}
        for r in claiming:
            _check_against_state(read, r, sheet_rows, state, problems)
    stored_nodes, stored_macs, new, unchanged = state.nodes, state.macs, plan.new, plan.unchanged
    for r in read.rows:
        ex = stored_nodes.get(r.serial)
        if ex is None:
            r.automated = is_marked(r.node[marker_at])
            new.append(r)
            continue
        value = r.node[marker_at]
        r.automated = is_marked(ex[4][marker_at] if value is None else value)
        macs = stored_macs.get(ex[0], ())
        if r.node == ex[4] and r.macs in (None, macs) and not r.install and r.automated == ex[2]:
            unchanged.append(r.serial)  # the usual re-import row: nothing to compare further
            continue
        changes = _diff(ex, macs, r)
        if changes:
            plan.changed.append(Change(r, ex[0], changes, ex[1]))
        else:
            plan.unchanged.append(r.serial)
    return plan, problems


def _claiming_others(rows: list[SheetRow], state: StoredNodes) -> list[SheetRow]:
    """Rows with a MAC or host name that the state file gives to another serial (usually none;
    one pass, each lookup defaulting to the row's own serial)."""
    if not state.mac_owner and not state.host_owner:
        return []
    hostname = NODE_INDEX["hostname"]
    mac_owner, host_owner = state.mac_owner.get, state.host_owner.get
    claiming: list[SheetRow] = []
    for r in rows:
        serial, host = r.serial, r.node[hostname]
        if (host and host_owner(host, serial) != serial) or any(
            mac_owner(m, serial) != serial for m in r.macs or ()
        ):
            claiming.append(r)
    return claiming


def _check_against_state(
    read: ReadResult,
    r: SheetRow,
    sheet_rows: dict[str, SheetRow],
    state: StoredNodes,
    problems: list[Problem],
) -> None:
    for m in r.macs or ():
        owner = state.mac_owner.get(m)
        if owner and owner != r.serial and not _moves_away(sheet_rows.get(owner), m, "mac"):
            problems.append(
                Problem(
                    read.file,
                    r.row,
                    read.headers.get("macs"),
                    f"MAC {m} belongs to node {owner} in the state file",
                )
            )
    host = r.value("hostname")
    owner = state.host_owner.get(host) if host else None
    if owner and owner != r.serial and not _moves_away(sheet_rows.get(owner), host, "hostname"):
        problems.append(
            Problem(
                read.file,
                r.row,
                read.headers.get("hostname"),
                f"host name {host} belongs to node {owner} in the state file",
            )
        )


def _moves_away(owner_row: SheetRow | None, value: str, what: str) -> bool:
    """True when the same sheet gives the current owner a different MAC set / host name."""
    if owner_row is None:
        return False
    if what == "mac":
        return owner_row.macs is not None and value not in owner_row.macs
    host = owner_row.value("hostname")
    return bool(host) and host != value


def _diff(
    ex: tuple[int, str, int, str, tuple[Any, ...]], macs: tuple[str, ...], r: SheetRow
) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    stored = ex[4]
    if r.node != stored and any(
        v is not None and v != old for v, old in zip(r.node, stored, strict=True)
    ):
        for name, v, old in zip(NODE_COLUMNS, r.node, stored, strict=True):
            if v is not None and v != old:
                changes[name] = (old, v)
    if r.macs is not None and r.macs != macs:
        changes["macs"] = (list(macs), list(r.macs))
    if r.install and json.dumps(r.install, sort_keys=True) != ex[3]:
        install = json.loads(ex[3] or "{}")
        for key, value in r.install.items():
            if install.get(key) != value:
                changes[f"install.{key}"] = (install.get(key), value)
    if r.automated != bool(ex[2]):
        changes["automated"] = (bool(ex[2]), r.automated)
    return changes
