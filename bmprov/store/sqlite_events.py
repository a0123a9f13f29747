"""Installs and events on SQLite (a part of :class:`~bmprov.store.sqlite.StateDB`, as
:mod:`.pg_installs` is of the PostgreSQL store): install tokens' records, forward-only
progress, the event log, each node's latest event (status page, API) and install sub-stages in
the history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from bmprov.nodes import Node
from bmprov.store.base import INSTALL_COLUMNS, Event, Install, utcnow
from bmprov.store.connection import Connection


class EventQueries(Connection):
    """The installs-and-events methods of the Store interface, mixed into
    :class:`~bmprov.store.sqlite.StateDB`."""

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

    def open_install_ids(self) -> dict[int, int]:
        """node id → its open install's id."""
        rows = self.query("SELECT node_id, id FROM installs WHERE ended_at IS NULL")
        return {r[0]: r[1] for r in rows}

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

    def last_events(self, node_ids: Iterable[int] | None = None) -> dict[int, Event]:
        """node id → its latest event (one query: the max id per node, by the events index)."""
        where, params = "", ()  # type: tuple[str, tuple[str, ...]]
        if node_ids is not None:
            where = "WHERE node_id IN (SELECT value FROM json_each(?))"
            params = (json.dumps(list(node_ids)),)
        rows = self.query(
            "SELECT node_id, kind, detail, source, install_id, at, id FROM events"
            f" WHERE id IN (SELECT max(id) FROM events {where} GROUP BY node_id)",
            params,
        )
        return {r[0]: Event(*r) for r in rows}

    def record_substage(self, node: Node, reason: str, command: str) -> None:
        """A history row for an install sub-stage: the node stays in its stage (from = to),
        the reason says which sub-stage, and ``at`` when it was reported."""
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (node.id, node.serial, node.stage, node.stage, utcnow(), reason, command),
            )
