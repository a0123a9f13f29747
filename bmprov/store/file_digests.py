"""The ``file_digests`` table on SQLite (kept out of :mod:`.sqlite`, at its size limit;
PostgreSQL: :mod:`.pg_file_digests`): what each node's last render gave, so
``bmprov reconcile`` checks a clean node's files by a read and a hash (:mod:`bmprov.boot.digests`).

Paths are stored joined by newlines (a generated path never holds one: serials and MACs are
validated before they name a file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bmprov.store.base import FileDigest, utcnow
from bmprov.store.connection import Connection

SELECT = "SELECT node_id, inputs, paths, digest FROM file_digests"
UPSERT = (
    " ON CONFLICT(node_id) DO UPDATE SET inputs = excluded.inputs, paths = excluded.paths,"
    " digest = excluded.digest, updated_at = excluded.updated_at"
)


def digests_from(rows: Iterable[Sequence[Any]]) -> dict[int, FileDigest]:
    """node id → :class:`FileDigest` from ``SELECT`` rows."""
    return {r[0]: FileDigest(r[1], tuple(r[2].split("\n")), r[3]) for r in rows}


class SqliteFileDigests(Connection):
    """SQLite: mixed into :class:`~bmprov.store.sqlite.StateDB`."""

    def file_digests(self) -> dict[int, FileDigest]:
        """node id → its last render's inputs fingerprint, paths and content digest."""
        return digests_from(self.query(SELECT))

    def save_file_digests(self, digests: Iterable[tuple[int, FileDigest]]) -> None:
        """Upsert in one transaction (nodes deleted meanwhile are skipped)."""
        now = utcnow()
        rows = [(i, d.inputs, "\n".join(d.paths), d.digest, now, i) for i, d in digests]
        if not rows:
            return
        with self.atomic() as conn:
            conn.executemany(
                "INSERT INTO file_digests(node_id, inputs, paths, digest, updated_at)"
                " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM nodes WHERE id = ?)" + UPSERT,
                rows,
            )
