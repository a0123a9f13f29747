"""Nodes as typed records, and the read/select queries every command shares.

Reads are batched: a selection loads its nodes and all their MACs in two queries, never one
query per node.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bmprov.db import StateDB
from bmprov.errors import InputError
from bmprov.states import ALL_STAGES

NODE_FIELDS = (
    "serial",
    "model",
    "os",
    "hostname",
    "site",
    "rack",
    "unit",
    "notes",
    "asset_tag",
    "bmc_address",
    "bmc_type",
)
"""Fields a procurement sheet may set, in display order."""


@dataclass(frozen=True)
class Node:
    """One server, as the state file knows it."""

    id: int
    serial: str
    stage: str
    macs: tuple[str, ...] = ()
    model: str | None = None
    os: str | None = None
    hostname: str | None = None
    site: str | None = None
    rack: str | None = None
    unit: int | None = None
    notes: str | None = None
    asset_tag: str | None = None
    bmc_address: str | None = None
    bmc_type: str | None = None
    install_options: dict[str, Any] = field(default_factory=dict)
    automated: bool = False
    stage_reason: str | None = None
    failed_stage: str | None = None
    ip: str | None = None
    created_at: str = ""
    updated_at: str = ""
    stage_changed_at: str = ""

    @property
    def mac(self) -> str | None:
        """The boot MAC: the first one listed, or None while only the serial is known."""
        return self.macs[0] if self.macs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` contract: serial, mac, macs, ..., ip)."""
        return {
            "serial": self.serial,
            "mac": self.mac,
            "macs": list(self.macs),
            "model": self.model,
            "os": self.os,
            "hostname": self.hostname,
            "stage": self.stage,
            "ip": self.ip,
            "site": self.site,
            "rack": self.rack,
            "unit": self.unit,
            "asset_tag": self.asset_tag,
            "notes": self.notes,
            "bmc_address": self.bmc_address,
            "bmc_type": self.bmc_type,
            "install_options": self.install_options,
            "automated": self.automated,
            "stage_reason": self.stage_reason,
            "failed_stage": self.failed_stage,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "stage_changed_at": self.stage_changed_at,
        }


@dataclass(frozen=True)
class Selection:
    """Which nodes a batch command acts on. Empty criteria select nothing unless ``all``."""

    serials: tuple[str, ...] = ()
    from_stage: str | None = None
    rack: str | None = None
    site: str | None = None
    all: bool = False
    automated_only: bool = False

    def is_empty(self) -> bool:
        """True when no criterion was given at all."""
        return not (self.serials or self.from_stage or self.rack or self.site or self.all)


def _node_from_row(row: sqlite3.Row, macs: Iterable[str]) -> Node:
    data = dict(row)
    data["install_options"] = json.loads(data.get("install_options") or "{}")
    data["automated"] = bool(data.get("automated"))
    data["macs"] = tuple(macs)
    return Node(**data)


def _load(db: StateDB, where: str = "", params: tuple[Any, ...] = ()) -> list[Node]:
    rows = db.query(f"SELECT * FROM nodes {where} ORDER BY serial", params)
    if not rows:
        return []
    by_node: dict[int, list[str]] = defaultdict(list)
    if len(rows) > 500:
        mac_rows = db.query("SELECT node_id, mac FROM macs ORDER BY node_id, position")
    else:
        marks = ",".join("?" * len(rows))
        mac_rows = db.query(
            f"SELECT node_id, mac FROM macs WHERE node_id IN ({marks}) ORDER BY node_id, position",
            tuple(r["id"] for r in rows),
        )
    for mrow in mac_rows:
        by_node[mrow["node_id"]].append(mrow["mac"])
    return [_node_from_row(r, by_node.get(r["id"], ())) for r in rows]


def list_nodes(db: StateDB, stage: str | None = None) -> list[Node]:
    """Every node (or those in ``stage``), by serial."""
    if stage is not None:
        check_stage(stage, "--stage")
    if stage:
        return _load(db, "WHERE stage = ?", (stage,))
    return _load(db)


def check_stage(stage: str, option: str) -> None:
    """:class:`InputError` naming ``option`` unless ``stage`` is a lifecycle stage."""
    if stage not in ALL_STAGES:
        known = ", ".join(sorted(ALL_STAGES))
        hint = _did_you_mean(stage, ALL_STAGES)
        raise InputError(f"{option}: unknown stage {stage!r}{hint} (stages: {known})")


def get_node(db: StateDB, serial: str) -> Node:
    """One node by serial; :class:`InputError` (exit 2) naming the serial if unknown."""
    nodes = _load(db, "WHERE serial = ?", (serial,))
    if not nodes:
        hint = _did_you_mean(serial, _all_serials(db))
        raise InputError(f"no node with serial {serial!r} in {db.path}{hint}")
    return nodes[0]


def find_by_mac(db: StateDB, mac: str) -> Node | None:
    """The node that owns a canonical MAC, if any."""
    row = db.query("SELECT node_id FROM macs WHERE mac = ?", (mac,))
    if not row:
        return None
    nodes = _load(db, "WHERE id = ?", (row[0]["node_id"],))
    return nodes[0] if nodes else None


def select_nodes(db: StateDB, selection: Selection) -> list[Node]:
    """The nodes a batch acts on. Unknown serials are an :class:`InputError`."""
    if selection.is_empty():
        raise InputError("select nodes with --serial, --from, --rack, --site or --all")
    if selection.from_stage is not None:
        check_stage(selection.from_stage, "--from")
    clauses: list[str] = []
    params: list[Any] = []
    if selection.serials:
        clauses.append(f"serial IN ({','.join('?' * len(selection.serials))})")
        params.extend(selection.serials)
    if selection.from_stage:
        clauses.append("stage = ?")
        params.append(selection.from_stage)
    if selection.rack:
        clauses.append("rack = ?")
        params.append(selection.rack)
    if selection.site:
        clauses.append("site = ?")
        params.append(selection.site)
    if selection.automated_only:
        clauses.append("automated = 1")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    nodes = _load(db, where, tuple(params))
    if selection.serials:
        marks = ",".join("?" * len(selection.serials))
        known = {
            r["serial"]
            for r in db.query(
                f"SELECT serial FROM nodes WHERE serial IN ({marks})", selection.serials
            )
        }
        missing = [s for s in selection.serials if s not in known]
        if missing:
            serials = _all_serials(db)
            named = ", ".join(f"{s}{_did_you_mean(s, serials)}" for s in missing)
            raise InputError(f"unknown serial(s): {named}")
    return nodes


def _all_serials(db: StateDB) -> list[str]:
    return [r["serial"] for r in db.query("SELECT serial FROM nodes")]


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for the closest known name, or ``""``.

    Only on the error path: difflib over 100,000 ten-character serials took 0.21 s (measured).
    """
    import difflib  # noqa: PLC0415

    known = list(known)
    folded = {k.casefold(): k for k in known}
    exact = folded.get(word.strip().casefold())  # case or stray spaces
    close = [exact] if exact else difflib.get_close_matches(word, known, n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def history(db: StateDB, serial: str) -> list[dict[str, Any]]:
    """A node's stage changes, oldest first."""
    node = get_node(db, serial)
    rows = db.query(
        "SELECT from_stage, to_stage, at, reason, command FROM history"
        " WHERE node_id = ? ORDER BY id",
        (node.id,),
    )
    return [dict(r) for r in rows]
