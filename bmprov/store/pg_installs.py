"""Installs and events on PostgreSQL (a part of :class:`~bmprov.store.postgres.PostgresStore`).

Two hosts may open installs for the same node at once: :meth:`PgInstalls.open_installs` locks
those node rows first (``SELECT … FOR UPDATE``, in id order so two batches never deadlock), so
the second one supersedes the first one's install instead of tripping ``installs_one_open``.
Progress only moves forward: ``UPDATE … WHERE progress < new`` is re-checked by PostgreSQL on
the newest row version after a concurrent writer commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bmprov.nodes import Node
from bmprov.store.base import INSTALL_COLUMNS, Event, Install, utcnow
from bmprov.store.pgconn import PgConnection


class PgInstalls(PgConnection):
    """The installs-and-events methods of the Store interface."""

    def open_installs(
        self, nodes: Sequence[tuple[int, str, str | None]], expires_at: str
    ) -> dict[int, Install]:
        """Supersede open installs and start new ones, in one transaction."""
        if not nodes:
            return {}
        now = utcnow()
        ids = [node_id for node_id, _, _ in nodes]
        with self.atomic() as conn:
            conn.execute(
                "SELECT id FROM nodes WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
            ).fetchall()
            conn.execute(
                "UPDATE installs SET ended_at = %s, end_reason = 'superseded'"
                " WHERE ended_at IS NULL AND node_id = ANY(%s)",
                (now, ids),
            )
            rows = conn.execute(
                "INSERT INTO installs(node_id, serial, os, issued_at, expires_at)"
                " SELECT v.id, v.serial, v.os, %s, %s"
                " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, serial, os)"
                f" RETURNING {INSTALL_COLUMNS}".encode(),
                (now, expires_at, ids, [n[1] for n in nodes], [n[2] for n in nodes]),
            ).fetchall()
        return {r[1]: Install(*r) for r in rows}

    def current_installs(self, node_ids: Iterable[int] | None = None) -> dict[int, Install]:
        """node id → its open install."""
        sql = f"SELECT {INSTALL_COLUMNS} FROM installs WHERE ended_at IS NULL"
        if node_ids is None:
            rows = self.query(sql)
        else:
            rows = self.query(sql + " AND node_id = ANY(%s)", [list(node_ids)])
        return {r[1]: Install(*r) for r in rows}

    def open_install_ids(self) -> dict[int, int]:
        """node id → its open install's id."""
        rows = self.query("SELECT node_id, id FROM installs WHERE ended_at IS NULL")
        return {r[0]: r[1] for r in rows}

    def install(self, install_id: int) -> Install | None:
        """One install by id."""
        rows = self.query(f"SELECT {INSTALL_COLUMNS} FROM installs WHERE id = %s", [install_id])
        return Install(*rows[0]) if rows else None

    def record_progress(self, install_id: int, progress: int) -> bool:
        """Forward-only progress on an open install."""
        with self.atomic() as conn:
            cur = conn.execute(
                "UPDATE installs SET progress = %s, progress_at = %s"
                " WHERE id = %s AND ended_at IS NULL AND progress < %s",
                (progress, utcnow(), install_id, progress),
            )
            return cur.rowcount == 1

    def end_installs(self, node_ids: Iterable[int], reason: str) -> int:
        """Close open installs."""
        with self.atomic() as conn:
            cur = conn.execute(
                "UPDATE installs SET ended_at = %s, end_reason = %s"
                " WHERE ended_at IS NULL AND node_id = ANY(%s)",
                (utcnow(), reason, list(node_ids)),
            )
            return cur.rowcount

    def add_events(self, events: Sequence[Event]) -> None:
        """Append events, stamped now (one ``COPY``)."""
        if not events:
            return
        now = utcnow()
        with self.atomic() as conn, conn.cursor() as cur:
            sql = b"COPY events (node_id, install_id, at, kind, detail, source) FROM STDIN"
            with cur.copy(sql) as copy:
                for e in events:
                    copy.write_row((e.node_id, e.install_id, now, e.kind, e.detail, e.source))

    def events(self, node_id: int, limit: int = 100) -> list[Event]:
        """A node's latest events, oldest first."""
        rows = self.query(
            "SELECT node_id, kind, detail, source, install_id, at, id FROM events"
            " WHERE node_id = %s ORDER BY id DESC LIMIT %s",
            [node_id, limit],
        )
        return [Event(*r) for r in reversed(rows)]

    def last_events(self, node_ids: Iterable[int] | None = None) -> dict[int, Event]:
        """node id → its latest event (``DISTINCT ON``: one index scan per node)."""
        sql = (
            "SELECT DISTINCT ON (node_id) node_id, kind, detail, source, install_id, at, id"
            " FROM events"
        )
        if node_ids is None:
            rows = self.query(sql + " ORDER BY node_id, id DESC")
        else:
            rows = self.query(
                sql + " WHERE node_id = ANY(%s) ORDER BY node_id, id DESC", [list(node_ids)]
            )
        return {r[0]: Event(*r) for r in rows}

    def record_substage(self, node: Node, reason: str, command: str) -> None:
        """A history row for an install sub-stage (from = to: the stage does not change)."""
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (node.id, node.serial, node.stage, node.stage, utcnow(), reason, command),
            )
