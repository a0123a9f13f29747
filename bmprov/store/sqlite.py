"""The SQLite state file (the embedded default): every SQL statement bmprov runs.

:class:`StateDB` is :class:`~bmprov.store.base.Store` on one SQLite file, WAL mode, every write
an explicit ``BEGIN IMMEDIATE`` transaction (:mod:`bmprov.store.connection`). Reads are batched:
a selection loads its nodes and all their MACs in two queries, never one query per node.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bmprov.errors import StateError, StateFileError
from bmprov.nodes import Node, Selection
from bmprov.store.base import (
    INSTALL_COLUMNS,
    RENDER_COLUMNS,
    Addressed,
    BootRecord,
    Event,
    Install,
    NodeUpdate,
    RenderRow,
    Store,
    node_from_row,
    render_rows_from,
    utcnow,
)
from bmprov.store.connection import DEFAULT_BUSY_TIMEOUT_MS
from bmprov.store.file_digests import SqliteFileDigests
from bmprov.store.sqlite_events import EventQueries

_HISTORY = (
    "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_MANY = 500  # above this many nodes, reading every MAC beats an IN list


def open_state(path: Path, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> StateDB:
    """Open an existing state file; :class:`StateFileError` if missing or empty (never create).

    A zero-byte file would otherwise be turned into a fresh, empty state file by the first
    command that reads it, hiding a truncation. (A 0-byte main file whose ``-wal`` holds data
    is a live WAL database, and fine.)
    """
    try:
        size = path.stat().st_size if path.is_file() else None
        wal = path.with_name(path.name + "-wal")
        wal_size = wal.stat().st_size if size == 0 and wal.exists() else 0
    except OSError as exc:  # a name too long, a loop of links...
        raise StateFileError(f"state file {path}: {exc.strerror or exc}") from None
    if size is None and not path.exists():
        raise StateFileError(f"state file {path} does not exist; run `bmprov init` first")
    if size is None:
        raise StateFileError(f"state file {path} is not a regular file")
    if size == 0 and not wal_size:
        raise StateFileError(
            f"state file {path} is empty (0 bytes)",
            "restore it from a backup, or delete it and run `bmprov init` for a new site",
        )
    return StateDB(path, busy_timeout_ms)


class StateDB(EventQueries, SqliteFileDigests, Store):
    """bmprov's state in one SQLite file."""

    backend = "sqlite"

    @property
    def location(self) -> str:
        """The state file's path."""
        return str(self.path)

    def backend_version(self) -> str:
        """The SQLite library's version."""
        return sqlite3.sqlite_version

    # -- nodes ------------------------------------------------------------------------------

    def load_nodes(
        self, selection: Selection | None = None, *, stage: str | None = None
    ) -> list[Node]:
        """Nodes by serial: all, those in ``stage``, or those a selection names."""
        clauses: list[str] = []
        params: list[Any] = []
        if stage is not None:
            clauses.append("stage = ?")
            params.append(stage)
        if selection is not None:
            if selection.serials:
                clauses.append(f"serial IN ({','.join('?' * len(selection.serials))})")
                params.extend(selection.serials)
            for column, value in (
                ("stage", selection.from_stage),
                ("rack", selection.rack),
                ("site", selection.site),
            ):
                if value:
                    clauses.append(f"{column} = ?")
                    params.append(value)
            if selection.automated_only:
                clauses.append("automated = 1")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._load(where, tuple(params))

    def node_by_serial(self, serial: str) -> Node | None:
        """One node, or None."""
        nodes = self._load("WHERE serial = ?", (serial,))
        return nodes[0] if nodes else None

    def node_by_mac(self, mac: str) -> Node | None:
        """The node that owns a canonical MAC, if any."""
        row = self.query("SELECT node_id FROM macs WHERE mac = ?", (mac,))
        if not row:
            return None
        nodes = self._load("WHERE id = ?", (row[0]["node_id"],))
        return nodes[0] if nodes else None

    def known_serials(self, serials: Sequence[str]) -> set[str]:
        """Which of ``serials`` exist."""
        if not serials:
            return set()
        marks = ",".join("?" * len(serials))
        rows = self.query(f"SELECT serial FROM nodes WHERE serial IN ({marks})", tuple(serials))
        return {r["serial"] for r in rows}

    def automated_os(self, stages: Sequence[str]) -> list[tuple[str, str]]:
        """(serial, OS) of automated nodes in ``stages`` that name an OS, by serial."""
        rows = self.query(
            "SELECT serial, os FROM nodes WHERE automated = 1 AND os IS NOT NULL AND os != ''"
            f" AND stage IN ({', '.join('?' * len(stages))}) ORDER BY serial",
            tuple(stages),
        )
        return [(r[0], r[1]) for r in rows]

    def history(self, node_id: int) -> list[dict[str, Any]]:
        """A node's stage changes, oldest first."""
        rows = self.query(
            "SELECT from_stage, to_stage, at, reason, command FROM history"
            " WHERE node_id = ? ORDER BY id",
            (node_id,),
        )
        return [dict(r) for r in rows]

    def _load(self, where: str = "", params: tuple[Any, ...] = ()) -> list[Node]:
        rows = self.query(f"SELECT * FROM nodes {where} ORDER BY serial", params)
        if not rows:
            return []
        by_node: dict[int, list[str]] = defaultdict(list)
        if len(rows) > _MANY:
            mac_rows = self.query("SELECT node_id, mac FROM macs ORDER BY node_id, position")
        else:
            marks = ",".join("?" * len(rows))
            mac_rows = self.query(
                f"SELECT node_id, mac FROM macs WHERE node_id IN ({marks})"
                " ORDER BY node_id, position",
                tuple(r["id"] for r in rows),
            )
        for mrow in mac_rows:
            by_node[mrow["node_id"]].append(mrow["mac"])
        return [node_from_row(r, by_node.get(r["id"], ())) for r in rows]

    # -- moves ------------------------------------------------------------------------------

    def move_nodes(
        self,
        moves: Sequence[tuple[Node, str | None]],
        to: str,
        command: str,
        failed_stage: str | None = None,
    ) -> set[int]:
        """Compare-and-set moves with their history, in one transaction.

        One ``UPDATE … RETURNING`` per (current stage, reason) group and one ``executemany``
        for the history, not two statements per node.
        """
        now = utcnow()
        groups: dict[tuple[str, str | None], list[int]] = {}
        for node, why in moves:
            groups.setdefault((node.stage, why), []).append(node.id)
        done: set[int] = set()
        with self.atomic() as conn:
            for (stage, why), ids in groups.items():
                rows = conn.execute(
                    "UPDATE nodes SET stage = ?, stage_reason = ?, failed_stage = ?,"
                    " stage_changed_at = ?, updated_at = ?"
                    " WHERE stage = ? AND id IN (SELECT value FROM json_each(?)) RETURNING id",
                    (to, why, failed_stage, now, now, stage, json.dumps(ids)),
                )
                done.update(row[0] for row in rows)
            conn.executemany(
                _HISTORY,
                [
                    (node.id, node.serial, node.stage, to, now, why, command)
                    for node, why in moves
                    if node.id in done
                ],
            )
        return done

    def record_events(self, events: Sequence[tuple[Node, str]], command: str) -> None:
        """History rows for repairs (from = to = the node's stage), in one transaction."""
        if not events:
            return
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                _HISTORY,
                [(n.id, n.serial, n.stage, n.stage, now, why, command) for n, why in events],
            )

    def iter_history(self) -> Iterator[tuple[int, str, str, str | None]]:
        """Every history row, oldest first, as plain tuples."""
        cur = self.conn.cursor()
        cur.row_factory = None
        yield from cur.execute("SELECT node_id, to_stage, at, reason FROM history ORDER BY id")

    # -- import -----------------------------------------------------------------------------

    def iter_node_columns(self, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every node as a plain tuple (no ``sqlite3.Row``: 100,000 nodes stream cheaply)."""
        cur = self.conn.cursor()
        cur.row_factory = None
        yield from cur.execute(f"SELECT {', '.join(columns)} FROM nodes")

    def iter_macs(self) -> Iterator[tuple[str, int]]:
        """Every (mac, node id), by node and position."""
        cur = self.conn.cursor()
        cur.row_factory = None
        yield from cur.execute("SELECT mac, node_id FROM macs ORDER BY node_id, position")

    def insert_nodes(
        self,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        macs: Sequence[Sequence[str]],
        stage: str,
        reason: str,
        command: str,
    ) -> None:
        """Bulk insert: ids numbered from the current maximum, MACs and history in bulk."""
        if not rows:
            return
        now = utcnow()
        with self.atomic() as conn:
            first = conn.execute("SELECT COALESCE(MAX(id), 0) FROM nodes").fetchone()[0] + 1
            cols = ("id", *columns, "stage", "created_at", "updated_at", "stage_changed_at")
            conn.executemany(
                f"INSERT INTO nodes({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [(first + k, *row, stage, now, now, now) for k, row in enumerate(rows)],
            )
            conn.executemany(
                "INSERT INTO macs(mac, node_id, position) VALUES (?, ?, ?)",
                [(m, first + k, pos) for k, ms in enumerate(macs) for pos, m in enumerate(ms)],
            )
            conn.execute(
                "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
                " SELECT id, serial, NULL, ?, ?, ?, ? FROM nodes WHERE id >= ?",
                (stage, now, reason, command, first),
            )

    def update_nodes(self, updates: Sequence[NodeUpdate]) -> None:
        """Changed fields; moving host names and MACs are cleared first, so swaps between
        nodes never trip UNIQUE."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE nodes SET hostname = NULL WHERE id = ?",
                [(u.node_id,) for u in updates if "hostname" in u.fields],
            )
            conn.executemany(
                "DELETE FROM macs WHERE node_id = ?",
                [(u.node_id,) for u in updates if u.macs is not None],
            )
            for u in updates:
                sets = dict(u.fields)
                if u.install is not None:
                    merged = {**self._install_options(u.node_id), **u.install}
                    sets["install_options"] = json.dumps(merged, sort_keys=True)
                sets["updated_at"] = now
                assignments = ", ".join(f"{k} = ?" for k in sets)
                conn.execute(
                    f"UPDATE nodes SET {assignments} WHERE id = ?", (*sets.values(), u.node_id)
                )
                if u.macs is not None:
                    conn.executemany(
                        "INSERT INTO macs(mac, node_id, position) VALUES (?, ?, ?)",
                        [(m, u.node_id, pos) for pos, m in enumerate(u.macs)],
                    )

    def _install_options(self, node_id: int) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT install_options FROM nodes WHERE id = ?", (node_id,)
        ).fetchone()
        value: dict[str, Any] = json.loads(row[0] or "{}")
        return value

    # -- addresses --------------------------------------------------------------------------

    def held_addresses(self) -> dict[int, str]:
        """node id → IP of every node holding one."""
        return {r[0]: r[1] for r in self.query("SELECT id, ip FROM nodes WHERE ip IS NOT NULL")}

    def assign_addresses(self, chosen: Iterable[tuple[int, str]]) -> None:
        """Record (node id, IP) pairs; UNIQUE(ip) is the backstop."""
        now = utcnow()
        with self.atomic() as conn:
            try:
                conn.executemany(
                    "UPDATE nodes SET ip = ?, updated_at = ? WHERE id = ?",
                    [(ip, now, node_id) for node_id, ip in chosen],
                )
            except sqlite3.IntegrityError as exc:  # only if the state file was edited by hand
                raise StateError(f"address allocation collided in the state file: {exc}") from None

    def release_addresses(self, node_ids: Iterable[int]) -> None:
        """Free the addresses of these nodes."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE nodes SET ip = NULL, updated_at = ? WHERE id = ?",
                [(now, i) for i in node_ids],
            )

    def addressed(self) -> list[Addressed]:
        """Every node with an address and a MAC, with its boot MAC (the first), by id."""
        rows = self.query(
            "SELECT n.id, n.serial, n.hostname, n.ip, m.mac FROM nodes n"
            " JOIN macs m ON m.node_id = n.id"
            " WHERE n.ip IS NOT NULL ORDER BY n.id, m.position"
        )
        out: list[Addressed] = []
        for r in rows:
            if not out or out[-1].node_id != r[0]:
                out.append(Addressed(r[0], r[1], r[2], r[3], r[4]))
        return out

    # -- installs and events ----------------------------------------------------------------

    def open_installs(
        self, nodes: Sequence[tuple[int, str, str | None]], expires_at: str
    ) -> dict[int, Install]:
        """Supersede open installs and start new ones, in one transaction."""
        if not nodes:
            return {}
        now = utcnow()
        ids = json.dumps([node_id for node_id, _, _ in nodes])
        with self.atomic() as conn:
            conn.execute(
                "UPDATE installs SET ended_at = ?, end_reason = 'superseded'"
                " WHERE ended_at IS NULL AND node_id IN (SELECT value FROM json_each(?))",
                (now, ids),
            )
            conn.executemany(
                "INSERT INTO installs(node_id, serial, os, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(node_id, serial, os, now, expires_at) for node_id, serial, os in nodes],
            )
            rows = conn.execute(
                f"SELECT {INSTALL_COLUMNS} FROM installs WHERE ended_at IS NULL"
                " AND node_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
        return {r[1]: Install(*r) for r in rows}

    def current_installs(self, node_ids: Iterable[int] | None = None) -> dict[int, Install]:
        """node id → its open install."""
        if node_ids is None:
            rows = self.query(f"SELECT {INSTALL_COLUMNS} FROM installs WHERE ended_at IS NULL")
        else:
            rows = self.query(
                f"SELECT {INSTALL_COLUMNS} FROM installs WHERE ended_at IS NULL"
                " AND node_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(node_ids)),),
            )
        return {r[1]: Install(*r) for r in rows}

    def install(self, install_id: int) -> Install | None:
        """One install by id."""
        rows = self.query(f"SELECT {INSTALL_COLUMNS} FROM installs WHERE id = ?", (install_id,))
        return Install(*rows[0]) if rows else None

    def record_progress(self, install_id: int, progress: int) -> bool:
        """Forward-only progress on an open install."""
        with self.atomic() as conn:
            cur = conn.execute(
                "UPDATE installs SET progress = ?, progress_at = ?"
                " WHERE id = ? AND ended_at IS NULL AND progress < ?",
                (progress, utcnow(), install_id, progress),
            )
            return cur.rowcount == 1

    def end_installs(self, node_ids: Iterable[int], reason: str) -> int:
        """Close open installs."""
        with self.atomic() as conn:
            cur = conn.execute(
                "UPDATE installs SET ended_at = ?, end_reason = ?"
                " WHERE ended_at IS NULL AND node_id IN (SELECT value FROM json_each(?))",
                (utcnow(), reason, json.dumps(list(node_ids))),
            )
            return cur.rowcount

    def add_events(self, events: Sequence[Event]) -> None:
        """Append events, stamped now."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "INSERT INTO events(node_id, install_id, at, kind, detail, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(e.node_id, e.install_id, now, e.kind, e.detail, e.source) for e in events],
            )

    def events(self, node_id: int, limit: int = 100) -> list[Event]:
        """A node's latest events, oldest first."""
        rows = self.query(
            "SELECT node_id, kind, detail, source, install_id, at, id FROM events"
            " WHERE node_id = ? ORDER BY id DESC LIMIT ?",
            (node_id, limit),
        )
        return [Event(*r) for r in reversed(rows)]

    # -- boot files -------------------------------------------------------------------------

    def render_rows(self) -> list[RenderRow]:
        """Every node's render inputs in two queries (no JSON decoding)."""
        return render_rows_from(
            self.query("SELECT node_id, mac FROM macs ORDER BY node_id, position"),
            self.query(f"SELECT {RENDER_COLUMNS} FROM nodes ORDER BY serial"),
        )

    def dump_table(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of ``table``, by its first column (the key)."""
        cur = self.conn.cursor()
        cur.row_factory = None
        rows = cur.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        return [d[0] for d in cur.description], rows

    def restore_tables(
        self, tables: Sequence[tuple[str, Sequence[str], Sequence[tuple[Any, ...]]]]
    ) -> None:
        """Bulk inserts, one transaction (ids are kept: new rows continue after them)."""
        with self.atomic() as conn:
            for table, columns, rows in tables:
                marks = ", ".join("?" * len(columns))
                conn.executemany(
                    f"INSERT INTO {table}({', '.join(columns)}) VALUES ({marks})", rows
                )

    def boot_records(self) -> dict[int, BootRecord]:
        """node id → fingerprint and cleared time of its last render."""
        rows = self.query("SELECT node_id, fingerprint, cleared_at FROM boot_files")
        return {r[0]: BootRecord(r[1], r[2]) for r in rows}

    def save_boot_records(self, records: Iterable[tuple[int, BootRecord]]) -> None:
        """Upsert render records in one transaction."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "INSERT INTO boot_files(node_id, fingerprint, cleared_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, cleared_at = excluded.cleared_at,"
                " updated_at = excluded.updated_at",
                [(node_id, r.fingerprint, r.cleared_at, now) for node_id, r in records],
            )
