"""The state interface: every read and write of bmprov's state, as typed methods.

This is the only contract the rest of bmprov has with its state. :class:`~bmprov.store.StateDB`
implements it on SQLite (the embedded default); a shared-database backend implements the same
methods and runs the same tests. Rules every implementation keeps:

* :meth:`Store.atomic` is one write transaction (nested: a savepoint); a method that writes
  runs in one, joining the caller's when there is one;
* stage moves are compare-and-set on the node's current stage, and each move appends exactly
  one ``history`` row (this class is the one writer of history);
* UNIQUE serial, MAC, host name and IP are enforced by the store itself, as the last line of
  defence behind bmprov's own checks;
* bulk in, bulk out: no method costs a round trip per node.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from bmprov.nodes import Node, Selection


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with seconds, as stored in the state."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NodeUpdate:
    """Changed fields of one stored node (an import's "changed" row)."""

    node_id: int
    fields: dict[str, Any] = field(default_factory=dict)  # column → new value
    macs: tuple[str, ...] | None = None  # None: unchanged; else the new list, in order
    install: dict[str, Any] | None = None  # install options merged over the stored ones


@dataclass(frozen=True)
class Addressed:
    """A node holding an address, with its boot MAC (the reservation it should have)."""

    node_id: int
    serial: str
    hostname: str | None
    ip: str
    mac: str


@dataclass(frozen=True)
class RenderRow:
    """The columns a boot-file render looks at (install options still as JSON text)."""

    id: int
    serial: str
    stage: str
    failed_stage: str | None
    stage_changed_at: str
    os: str | None
    hostname: str | None
    ip: str | None
    options_json: str
    macs: tuple[str, ...]
    site: str | None = None


@dataclass(frozen=True)
class FileDigest:
    """What rendering a node's files gave, for checking them without rendering again:
    the fingerprint of every rendering input, the paths (in render order) and one digest of
    their contents (:mod:`bmprov.boot.digests`)."""

    inputs: str
    paths: tuple[str, ...]
    digest: str


@dataclass(frozen=True)
class BootRecord:
    """What was last rendered for a node: its inputs' fingerprint, and when it was cleared."""

    fingerprint: str
    cleared_at: str | None


def node_from_row(row: Any, macs: Iterable[str]) -> Node:
    """A :class:`Node` from a ``nodes`` row (a mapping, any backend's) and its MACs in order."""
    from bmprov.nodes import Node  # noqa: PLC0415  (nodes imports this module for typing)

    data = dict(row)
    data["install_options"] = json.loads(data.get("install_options") or "{}")
    data["automated"] = bool(data.get("automated"))
    data["macs"] = tuple(macs)
    return Node(**data)


INSTALL_COLUMNS = (
    "id, node_id, serial, os, issued_at, expires_at, progress, progress_at, ended_at, end_reason"
)
"""The ``installs`` columns in :class:`Install` field order."""

RENDER_COLUMNS = (
    "id, serial, stage, failed_stage, stage_changed_at, os, hostname, ip, install_options, site"
)


def render_rows_from(
    mac_rows: Iterable[Sequence[Any]], rows: Iterable[Sequence[Any]]
) -> list[RenderRow]:
    """:class:`RenderRow` s from (node id, mac) rows by position and ``RENDER_COLUMNS`` rows."""
    macs: dict[int, list[str]] = defaultdict(list)
    for node_id, mac in mac_rows:
        macs[node_id].append(mac)
    return [
        RenderRow(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or "{}", (*macs[r[0]],), r[9]
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Install:
    """One install of one node: what its token is derived from, and how far it got.

    The token itself is never stored (:mod:`bmprov.tokens` derives it from the site secret
    and these fields). ``progress`` is the highest install stage reported (0: none yet);
    ``ended_at``/``end_reason`` (completed, superseded, revoked, failed) close it.
    """

    id: int
    node_id: int
    serial: str
    os: str | None
    issued_at: str
    expires_at: str
    progress: int = 0
    progress_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None


@dataclass(frozen=True)
class Event:
    """Something a node or an operator did, as recorded (callbacks, refusals, completion)."""

    node_id: int
    kind: str
    detail: str | None = None
    source: str | None = None
    install_id: int | None = None
    at: str = ""
    id: int = 0


class Store(ABC):
    """bmprov's state. See the module docstring for the rules every backend keeps."""

    backend: str  # "sqlite" or "postgresql"

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the state lives, for messages: the SQLite file, or the URL without password."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def backend_version(self) -> str:
        """The version of the database engine (SQLite library, PostgreSQL server)."""

    # -- connection and transactions --------------------------------------------------------

    @abstractmethod
    def atomic(self) -> AbstractContextManager[Any]:
        """A write transaction (a savepoint when nested); rolled back on any exception.

        :raises LockedError: another bmprov held the write lock longer than the lock wait.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abstractmethod
    def applied_migrations(self) -> list[str]:
        """Names of the schema migrations this state has, in order."""

    # -- nodes ------------------------------------------------------------------------------

    @abstractmethod
    def load_nodes(
        self, selection: Selection | None = None, *, stage: str | None = None
    ) -> list[Node]:
        """Nodes by serial (with their MACs): all, those in ``stage``, or a selection's."""

    @abstractmethod
    def node_by_serial(self, serial: str) -> Node | None:
        """One node, or None."""

    @abstractmethod
    def node_by_mac(self, mac: str) -> Node | None:
        """The node owning a canonical MAC, or None."""

    @abstractmethod
    def known_serials(self, serials: Sequence[str]) -> set[str]:
        """Which of ``serials`` exist."""

    @abstractmethod
    def automated_os(self, stages: Sequence[str]) -> list[tuple[str, str]]:
        """(serial, OS) of automated nodes in ``stages`` that name an OS, by serial."""

    @abstractmethod
    def history(self, node_id: int) -> list[dict[str, Any]]:
        """A node's stage changes, oldest first (from_stage, to_stage, at, reason, command)."""

    @abstractmethod
    def move_nodes(
        self,
        moves: Sequence[tuple[Node, str | None]],
        to: str,
        command: str,
        failed_stage: str | None = None,
    ) -> set[int]:
        """Compare-and-set ``(node, reason)`` pairs from their current stage to ``to``, with one
        history row each, in one transaction. Returns the ids moved (a node another process
        moved meanwhile is left alone)."""

    @abstractmethod
    def record_events(self, events: Sequence[tuple[Node, str]], command: str) -> None:
        """Append one history row per ``(node, what was done)`` that is not a stage change
        (a repair by ``reconcile --fix``): from and to are the node's current stage."""

    @abstractmethod
    def iter_history(self) -> Iterator[tuple[int, str, str, str | None]]:
        """Every history row as (node id, to_stage, at, reason), oldest first (streamed)."""

    # -- import -----------------------------------------------------------------------------

    @abstractmethod
    def iter_node_columns(self, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every node as a plain tuple of ``columns`` (streamed: 100,000 rows, no copies)."""

    @abstractmethod
    def iter_macs(self) -> Iterator[tuple[str, int]]:
        """Every (mac, node id), by node and position."""

    @abstractmethod
    def insert_nodes(
        self,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        macs: Sequence[Sequence[str]],
        stage: str,
        reason: str,
        command: str,
    ) -> None:
        """New nodes (``rows`` in ``columns`` order, ``macs[k]`` for ``rows[k]``) entering
        ``stage``, each with its first history row."""

    @abstractmethod
    def update_nodes(self, updates: Sequence[NodeUpdate]) -> None:
        """Apply changed fields; host names and MACs may move between the updated nodes."""

    # -- addresses --------------------------------------------------------------------------

    @abstractmethod
    def held_addresses(self) -> dict[int, str]:
        """node id → IP of every node holding one (call inside :meth:`atomic` to allocate)."""

    @abstractmethod
    def assign_addresses(self, chosen: Iterable[tuple[int, str]]) -> None:
        """Record (node id, IP) pairs. :raises StateError: an IP is already held."""

    @abstractmethod
    def release_addresses(self, node_ids: Iterable[int]) -> None:
        """Free the addresses of these nodes."""

    @abstractmethod
    def addressed(self) -> list[Addressed]:
        """Every node holding an address and with a MAC, by node id."""

    # -- installs and events ----------------------------------------------------------------

    @abstractmethod
    def open_installs(
        self, nodes: Sequence[tuple[int, str, str | None]], expires_at: str
    ) -> dict[int, Install]:
        """A new install for each (node id, serial, OS), superseding any open one; one
        transaction. Returns node id → its new install."""

    @abstractmethod
    def current_installs(self, node_ids: Iterable[int] | None = None) -> dict[int, Install]:
        """node id → its open install (all nodes with one, or those in ``node_ids``)."""

    @abstractmethod
    def install(self, install_id: int) -> Install | None:
        """One install by id (open or ended)."""

    @abstractmethod
    def record_progress(self, install_id: int, progress: int) -> bool:
        """Raise an open install's progress to ``progress``; False if it is ended or already
        at or past it (callbacks only move forward; a duplicate changes nothing)."""

    @abstractmethod
    def end_installs(self, node_ids: Iterable[int], reason: str) -> int:
        """Close the open installs of these nodes (completed, revoked, failed); how many."""

    @abstractmethod
    def add_events(self, events: Sequence[Event]) -> None:
        """Append events (stamped now)."""

    @abstractmethod
    def record_substage(self, node: Node, reason: str, command: str) -> None:
        """A history row for an install sub-stage (the node's stage does not change)."""

    @abstractmethod
    def last_events(self, node_ids: Iterable[int] | None = None) -> dict[int, Event]:
        """node id → its latest event (all nodes with one, or those in ``node_ids``)."""

    @abstractmethod
    def events(self, node_id: int, limit: int = 100) -> list[Event]:
        """A node's latest events, oldest first."""

    # -- boot files -------------------------------------------------------------------------

    @abstractmethod
    def render_rows(self) -> list[RenderRow]:
        """Every node's render inputs, by serial."""

    @abstractmethod
    def boot_records(self) -> dict[int, BootRecord]:
        """node id → what was last rendered for it."""

    @abstractmethod
    def save_boot_records(self, records: Iterable[tuple[int, BootRecord]]) -> None:
        """Record what was rendered (upsert per node)."""

    @abstractmethod
    def file_digests(self) -> dict[int, FileDigest]:
        """node id → the inputs fingerprint and content digest of its last rendered files."""

    @abstractmethod
    def save_file_digests(self, digests: Iterable[tuple[int, FileDigest]]) -> None:
        """Record rendered files' digests (upsert per node), one transaction."""

    # -- whole-state copy (bmprov state copy) -----------------------------------------------

    @abstractmethod
    def dump_table(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of ``table`` as stored (ids and timestamps included), by its key."""

    @abstractmethod
    def restore_tables(
        self, tables: Sequence[tuple[str, Sequence[str], Sequence[tuple[Any, ...]]]]
    ) -> None:
        """Write dumped tables (in the order given) into this empty state, in one transaction;
        id sequences continue after the copied ids."""
