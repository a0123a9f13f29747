"""The shared backend: :class:`PostgresStore` is :class:`~bmprov.store.base.Store` on a
PostgreSQL database, for sites whose hosts share one inventory.

Same tables and columns as SQLite (:mod:`bmprov.store.schema`), same rules; connection,
transactions, locks and error mapping are in :mod:`bmprov.store.pgconn`. Bulk stays bulk: an
import is ``COPY``; moves, address and render writes are one statement over arrays
(``unnest``/``= ANY``) or a pipelined ``executemany``, never a round trip per node.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from bmprov.errors import StateError
from bmprov.nodes import Node, Selection
from bmprov.store.base import (
    RENDER_COLUMNS,
    Addressed,
    BootRecord,
    NodeUpdate,
    RenderRow,
    Store,
    node_from_row,
    render_rows_from,
    utcnow,
)
from bmprov.store.pg_file_digests import PgFileDigests
from bmprov.store.pg_installs import PgInstalls
from bmprov.store.pg_runlock import PgRunLock
from bmprov.store.pgconn import ALLOCATE_LOCK, IMPORT_LOCK

_HISTORY_COLS = ("node_id", "serial", "from_stage", "to_stage", "at", "reason", "command")


class PostgresStore(PgInstalls, PgFileDigests, PgRunLock, Store):
    """bmprov's state in a PostgreSQL database."""

    backend = "postgresql"

    @property
    def location(self) -> str:
        """The URL, without any password."""
        return self.path

    def backend_version(self) -> str:
        """The server's version."""
        return self.server_version()

    # -- nodes ------------------------------------------------------------------------------

    def load_nodes(
        self, selection: Selection | None = None, *, stage: str | None = None
    ) -> list[Node]:
        """Nodes by serial: all, those in ``stage``, or those a selection names."""
        clauses: list[str] = []
        params: list[Any] = []
        if stage is not None:
            clauses.append("stage = %s")
            params.append(stage)
        if selection is not None:
            if selection.serials:
                clauses.append("serial = ANY(%s)")
                params.append(list(selection.serials))
            for column, value in (
                ("stage", selection.from_stage),
                ("rack", selection.rack),
                ("site", selection.site),
            ):
                if value:
                    clauses.append(f"{column} = %s")
                    params.append(value)
            if selection.automated_only:
                clauses.append("automated = 1")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._load(where, params)

    def node_by_serial(self, serial: str) -> Node | None:
        """One node, or None."""
        nodes = self._load("WHERE serial = %s", [serial])
        return nodes[0] if nodes else None

    def node_by_mac(self, mac: str) -> Node | None:
        """The node that owns a canonical MAC, if any."""
        nodes = self._load("WHERE id = (SELECT node_id FROM macs WHERE mac = %s)", [mac])
        return nodes[0] if nodes else None

    def known_serials(self, serials: Sequence[str]) -> set[str]:
        """Which of ``serials`` exist."""
        if not serials:
            return set()
        rows = self.query("SELECT serial FROM nodes WHERE serial = ANY(%s)", [list(serials)])
        return {r[0] for r in rows}

    def automated_os(self, stages: Sequence[str]) -> list[tuple[str, str]]:
        """(serial, OS) of automated nodes in ``stages`` that name an OS, by serial."""
        rows = self.query(
            "SELECT serial, os FROM nodes WHERE automated = 1 AND os IS NOT NULL AND os != ''"
            ' AND stage = ANY(%s) ORDER BY serial COLLATE "C"',
            [list(stages)],
        )
        return [(r[0], r[1]) for r in rows]

    def history(self, node_id: int) -> list[dict[str, Any]]:
        """A node's stage changes, oldest first."""
        return self.dict_query(
            "SELECT from_stage, to_stage, at, reason, command FROM history"
            " WHERE node_id = %s ORDER BY id",
            [node_id],
        )

    def _load(self, where: str, params: list[Any]) -> list[Node]:
        # ORDER BY … COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
        rows = self.dict_query(f'SELECT * FROM nodes {where} ORDER BY serial COLLATE "C"', params)
        if not rows:
            return []
        by_node: dict[int, list[str]] = defaultdict(list)
        for node_id, mac in self.query(
            "SELECT node_id, mac FROM macs WHERE node_id = ANY(%s) ORDER BY node_id, position",
            [[r["id"] for r in rows]],
        ):
            by_node[node_id].append(mac)
        return [node_from_row(r, by_node.get(r["id"], ())) for r in rows]

    # -- moves ------------------------------------------------------------------------------

    def move_nodes(
        self,
        moves: Sequence[tuple[Node, str | None]],
        to: str,
        command: str,
        failed_stage: str | None = None,
    ) -> set[int]:
        """Compare-and-set moves with their history, in one transaction: one ``UPDATE …
        RETURNING`` per (current stage, reason) group, then one ``COPY`` of the history."""
        now = utcnow()
        groups: dict[tuple[str, str | None], list[int]] = {}
        for node, why in moves:
            groups.setdefault((node.stage, why), []).append(node.id)
        done: set[int] = set()
        with self.atomic() as conn:
            for (stage, why), ids in groups.items():
                rows = conn.execute(
                    "UPDATE nodes SET stage = %s, stage_reason = %s, failed_stage = %s,"
                    " stage_changed_at = %s, updated_at = %s"
                    " WHERE stage = %s AND id = ANY(%s) RETURNING id",
                    (to, why, failed_stage, now, now, stage, ids),
                )
                done.update(row[0] for row in rows)
            self._copy(
                "history",
                _HISTORY_COLS,
                (
                    (node.id, node.serial, node.stage, to, now, why, command)
                    for node, why in moves
                    if node.id in done
                ),
            )
        return done

    def record_events(self, events: Sequence[tuple[Node, str]], command: str) -> None:
        """History rows for repairs (from = to = the node's stage), one ``COPY``."""
        if not events:
            return
        now = utcnow()
        with self.atomic():
            self._copy(
                "history",
                _HISTORY_COLS,
                ((n.id, n.serial, n.stage, n.stage, now, why, command) for n, why in events),
            )

    def iter_history(self) -> Iterator[tuple[int, str, str, str | None]]:
        """Every history row, oldest first."""
        yield from self.query("SELECT node_id, to_stage, at, reason FROM history ORDER BY id")

    # -- import -----------------------------------------------------------------------------

    def iter_node_columns(self, columns: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """Every node as a plain tuple. Inside a transaction (an import planning against every
        node) this first takes the import lock: two hosts importing at once queue here."""
        self.lock(IMPORT_LOCK)
        yield from self.query(f"SELECT {', '.join(columns)} FROM nodes")

    def iter_macs(self) -> Iterator[tuple[str, int]]:
        """Every (mac, node id), by node and position."""
        yield from self.query("SELECT mac, node_id FROM macs ORDER BY node_id, position")

    def insert_nodes(
        self,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        macs: Sequence[Sequence[str]],
        stage: str,
        reason: str,
        command: str,
    ) -> None:
        """Bulk insert: a block of ids from the sequence in one query, then ``COPY`` of the
        nodes, their MACs and their first history rows."""
        if not rows:
            return
        now = utcnow()
        serial_at = list(columns).index("serial")
        with self.atomic() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('nodes', 'id'))"
                    " FROM generate_series(1, %s)",
                    (len(rows),),
                )
            ]
            cols = ("id", *columns, "stage", "created_at", "updated_at", "stage_changed_at")
            new = ((i, *row, stage, now, now, now) for i, row in zip(ids, rows, strict=True))
            self._copy("nodes", cols, new)
            self._copy(
                "macs",
                ("mac", "node_id", "position"),
                ((m, i, pos) for i, ms in zip(ids, macs, strict=True) for pos, m in enumerate(ms)),
            )
            self._copy(
                "history",
                _HISTORY_COLS,
                (
                    (i, row[serial_at], None, stage, now, reason, command)
                    for i, row in zip(ids, rows, strict=True)
                ),
            )

    def update_nodes(self, updates: Sequence[NodeUpdate]) -> None:
        """Changed fields, grouped by the set of columns changed (one pipelined
        ``executemany`` per group); moving host names and MACs are cleared first."""
        now = utcnow()
        with self.atomic() as conn:
            moved_names = [u.node_id for u in updates if "hostname" in u.fields]
            if moved_names:
                conn.execute("UPDATE nodes SET hostname = NULL WHERE id = ANY(%s)", (moved_names,))
            new_macs = [u for u in updates if u.macs is not None]
            if new_macs:
                conn.execute(
                    "DELETE FROM macs WHERE node_id = ANY(%s)", ([u.node_id for u in new_macs],)
                )
            stored = self._install_options([u.node_id for u in updates if u.install is not None])
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
            for u in updates:
                sets = dict(u.fields)
                if u.install is not None:
                    merged = {**stored.get(u.node_id, {}), **u.install}
                    sets["install_options"] = json.dumps(merged, sort_keys=True)
                sets["updated_at"] = now
                groups[tuple(sets)].append((*sets.values(), u.node_id))
            with conn.cursor() as cur:
                for names, params in groups.items():
                    assignments = ", ".join(f"{k} = %s" for k in names)
                    cur.executemany(f"UPDATE nodes SET {assignments} WHERE id = %s", params)
            self._copy(
                "macs",
                ("mac", "node_id", "position"),
                ((m, u.node_id, pos) for u in new_macs for pos, m in enumerate(u.macs or ())),
            )

    def _install_options(self, node_ids: list[int]) -> dict[int, dict[str, Any]]:
        if not node_ids:
            return {}
        rows = self.query("SELECT id, install_options FROM nodes WHERE id = ANY(%s)", [node_ids])
        return {r[0]: json.loads(r[1] or "{}") for r in rows}

    # -- addresses --------------------------------------------------------------------------

    def held_addresses(self) -> dict[int, str]:
        """node id → IP of every node holding one. Inside a transaction (an allocation) this
        first takes the allocation lock, so two hosts never choose from the same picture."""
        self.lock(ALLOCATE_LOCK)
        return {r[0]: r[1] for r in self.query("SELECT id, ip FROM nodes WHERE ip IS NOT NULL")}

    def assign_addresses(self, chosen: Iterable[tuple[int, str]]) -> None:
        """Record (node id, IP) pairs in one statement; UNIQUE(ip) is the backstop."""
        pairs = list(chosen)
        if not pairs:
            return
        try:
            with self.atomic() as conn:
                conn.execute(
                    "UPDATE nodes n SET ip = v.ip, updated_at = %s"
                    " FROM unnest(%s::bigint[], %s::text[]) AS v(id, ip) WHERE n.id = v.id",
                    (utcnow(), [p[0] for p in pairs], [p[1] for p in pairs]),
                )
        except StateError as exc:
            raise StateError(f"address allocation collided in the state: {exc}") from None

    def release_addresses(self, node_ids: Iterable[int]) -> None:
        """Free the addresses of these nodes."""
        ids = list(node_ids)
        if ids:
            with self.atomic() as conn:
                conn.execute(
                    "UPDATE nodes SET ip = NULL, updated_at = %s WHERE id = ANY(%s)",
                    (utcnow(), ids),
                )

    def addressed(self) -> list[Addressed]:
        """Every node with an address and a MAC, with its boot MAC (the first), by id."""
        rows = self.query(
            "SELECT DISTINCT ON (n.id) n.id, n.serial, n.hostname, n.ip, m.mac FROM nodes n"
            " JOIN macs m ON m.node_id = n.id"
            " WHERE n.ip IS NOT NULL ORDER BY n.id, m.position"
        )
        return [Addressed(*r) for r in rows]

    # -- boot files -------------------------------------------------------------------------

    def render_rows(self) -> list[RenderRow]:
        """Every node's render inputs in two queries (no JSON decoding)."""
        return render_rows_from(
            self.query("SELECT node_id, mac FROM macs ORDER BY node_id, position"),
            self.query(f'SELECT {RENDER_COLUMNS} FROM nodes ORDER BY serial COLLATE "C"'),
        )

    def boot_records(self) -> dict[int, BootRecord]:
        """node id → fingerprint and cleared time of its last render."""
        rows = self.query("SELECT node_id, fingerprint, cleared_at FROM boot_files")
        return {r[0]: BootRecord(r[1], r[2]) for r in rows}

    def save_boot_records(self, records: Iterable[tuple[int, BootRecord]]) -> None:
        """Upsert render records in one statement over arrays."""
        items = list(records)
        if not items:
            return
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO boot_files(node_id, fingerprint, cleared_at, updated_at)"
                " SELECT v.id, v.fp, v.cl, %s FROM unnest(%s::bigint[], %s::text[], %s::text[])"
                " AS v(id, fp, cl) ON CONFLICT(node_id) DO UPDATE SET"
                " fingerprint = excluded.fingerprint, cleared_at = excluded.cleared_at,"
                " updated_at = excluded.updated_at",
                (
                    utcnow(),
                    [i for i, _ in items],
                    [r.fingerprint for _, r in items],
                    [r.cleared_at for _, r in items],
                ),
            )

    # -- whole-state copy -------------------------------------------------------------------

    def dump_table(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of ``table``, by its first column (the key)."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table} ORDER BY 1".encode())
            columns = [d.name for d in cur.description or ()]
            return columns, cur.fetchall()

    def restore_tables(
        self, tables: Sequence[tuple[str, Sequence[str], Sequence[tuple[Any, ...]]]]
    ) -> None:
        """``COPY`` per table, one transaction; identity sequences then continue after the
        largest copied id."""
        with self.atomic() as conn:
            for table, columns, rows in tables:
                self._copy(table, columns, rows)
                if "id" in columns and rows:
                    conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT MAX(id) FROM {table}))".encode()
                    )

    # -- helpers ----------------------------------------------------------------------------

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN``: rows streamed, one round trip."""
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # inside atomic(): errors mapped
        with self.conn.cursor() as cur, cur.copy(sql.encode()) as copy:
            for row in rows:
                copy.write_row(row)
