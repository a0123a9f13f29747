"""The ``file_digests`` table on PostgreSQL (see :mod:`.file_digests`)."""

from __future__ import annotations

from collections.abc import Iterable

from bmprov.store.base import FileDigest, utcnow
from bmprov.store.file_digests import SELECT, UPSERT, digests_from
from bmprov.store.pgconn import PgConnection


class PgFileDigests(PgConnection):
    """PostgreSQL: mixed into :class:`~bmprov.store.postgres.PostgresStore`."""

    def file_digests(self) -> dict[int, FileDigest]:
        """node id → its last render's inputs fingerprint, paths and content digest."""
        return digests_from(self.query(SELECT))

    def save_file_digests(self, digests: Iterable[tuple[int, FileDigest]]) -> None:
        """Upsert in one statement over arrays (nodes deleted meanwhile are skipped)."""
        items = list(digests)
        if not items:
            return
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO file_digests(node_id, inputs, paths, digest, updated_at)"
                " SELECT v.id, v.i, v.p, v.d, %s"
                " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS v(id, i, p, d)"
                " WHERE EXISTS (SELECT 1 FROM nodes WHERE nodes.id = v.id)" + UPSERT,
                (
                    utcnow(),
                    [i for i, _ in items],
                    [d.inputs for _, d in items],
                    ["\n".join(d.paths) for _, d in items],
                    [d.digest for _, d in items],
                ),
            )
