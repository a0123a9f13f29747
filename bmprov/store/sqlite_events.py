"""The SQLite side of what ``bmprov serve`` adds (kept out of :mod:`.sqlite`, which is at its
size limit): each node's latest event, for the status page and the API, and install
sub-stages in the history."""

from __future__ import annotations

import json
from collections.abc import Iterable

from bmprov.nodes import Node
from bmprov.store.base import Event, utcnow
from bmprov.store.connection import Connection


class EventQueries(Connection):
    """Bulk event reads, mixed into :class:`~bmprov.store.sqlite.StateDB`."""

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
