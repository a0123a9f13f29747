"""Nodes as typed records, node selections, and the lookups every command shares.

The queries themselves live in the state layer (:mod:`bmprov.store`); this module adds the
rules: stage names are checked, an unknown serial is bad input naming the serial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bmprov.errors import InputError
from bmprov.states import ALL_STAGES

if TYPE_CHECKING:
    from bmprov.store import Store

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
    all_sites: bool = False  # --all-sites: not kept to the host's site (:mod:`bmprov.sites`)

    def is_empty(self) -> bool:
        """True when no criterion was given at all."""
        chosen = self.serials or self.from_stage or self.rack or self.site
        return not (chosen or self.all or self.all_sites)


def list_nodes(db: Store, stage: str | None = None) -> list[Node]:
    """Every node (or those in ``stage``), by serial."""
    if stage is not None:
        check_stage(stage, "--stage")
    return db.load_nodes(stage=stage or None)


def check_stage(stage: str, option: str) -> None:
    """:class:`InputError` naming ``option`` unless ``stage`` is a lifecycle stage."""
    if stage not in ALL_STAGES:
        known = ", ".join(sorted(ALL_STAGES))
        hint = _did_you_mean(stage, ALL_STAGES)
        raise InputError(f"{option}: unknown stage {stage!r}{hint} (stages: {known})")


def get_node(db: Store, serial: str) -> Node:
    """One node by serial; :class:`InputError` (exit 2) naming the serial if unknown."""
    node = db.node_by_serial(serial)
    if node is None:
        hint = _did_you_mean(serial, _all_serials(db))
        raise InputError(f"no node with serial {serial!r} in {db.location}{hint}")
    return node


def find_by_mac(db: Store, mac: str) -> Node | None:
    """The node that owns a canonical MAC, if any."""
    return db.node_by_mac(mac)


def select_nodes(db: Store, selection: Selection) -> list[Node]:
    """The nodes a batch acts on. Unknown serials are an :class:`InputError`."""
    if selection.is_empty():
        raise InputError("select nodes with --serial, --from, --rack, --site, --all or --all-sites")
    if selection.from_stage is not None:
        check_stage(selection.from_stage, "--from")
    nodes = db.load_nodes(selection)
    if selection.serials:
        known = db.known_serials(selection.serials)
        missing = [s for s in selection.serials if s not in known]
        if missing:
            serials = _all_serials(db)
            named = ", ".join(f"{s}{_did_you_mean(s, serials)}" for s in missing)
            raise InputError(f"unknown serial(s): {named}")
    return nodes


def _all_serials(db: Store) -> list[str]:
    return [row[0] for row in db.iter_node_columns(("serial",))]


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


def history(db: Store, serial: str) -> list[dict[str, Any]]:
    """A node's stage changes, oldest first."""
    node = get_node(db, serial)
    return db.history(node.id)
