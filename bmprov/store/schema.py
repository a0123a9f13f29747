"""The state schema as named migrations, applied in order and recorded in ``schema_migrations``.

One list for every backend: a state file (or database) that records a migration this list does
not know was written by a newer bmprov and is refused. Each migration is written for SQLite; one
whose text uses SQLite-only syntax (STRICT, WITHOUT ROWID, ``INTEGER PRIMARY KEY`` as the row id,
triggers) also has its PostgreSQL text in :data:`POSTGRES`, under the same name, creating the
same tables with the same columns (``tests/test_store_backends.py`` checks that every migration
runs on both). :func:`migration_sql` picks the text for a dialect.
"""

from __future__ import annotations

import re

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_nodes_macs_history",
        """
        CREATE TABLE nodes (
            id INTEGER PRIMARY KEY,
            serial TEXT NOT NULL UNIQUE,
            model TEXT,
            os TEXT,
            hostname TEXT UNIQUE,
            site TEXT,
            rack TEXT,
            unit INTEGER,
            notes TEXT,
            asset_tag TEXT,
            bmc_address TEXT,
            bmc_type TEXT,
            install_options TEXT NOT NULL DEFAULT '{}',
            automated INTEGER NOT NULL DEFAULT 0,
            stage TEXT NOT NULL,
            stage_reason TEXT,
            failed_stage TEXT,
            ip TEXT UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            stage_changed_at TEXT NOT NULL
        ) STRICT;
        CREATE INDEX nodes_stage ON nodes(stage);
        CREATE INDEX nodes_site_rack ON nodes(site, rack);
        CREATE TABLE macs (
            mac TEXT PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
            position INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX macs_node ON macs(node_id, position);
        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES nodes(id),
            serial TEXT NOT NULL,
            from_stage TEXT,
            to_stage TEXT NOT NULL,
            at TEXT NOT NULL,
            reason TEXT,
            command TEXT
        ) STRICT;
        CREATE INDEX history_node ON history(node_id, id);
        CREATE TRIGGER history_append_only_update BEFORE UPDATE ON history
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
        CREATE TRIGGER history_append_only_delete BEFORE DELETE ON history
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
        """,
    ),
    (
        "0002_boot_files",
        """
        CREATE TABLE boot_files (
            node_id INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL,
            cleared_at TEXT,
            updated_at TEXT NOT NULL
        ) STRICT;
        """,
    ),
    (
        "0003_installs_events",
        """
        CREATE TABLE installs (
            id INTEGER PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES nodes(id),
            serial TEXT NOT NULL,
            os TEXT,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            progress INTEGER NOT NULL DEFAULT 0,
            progress_at TEXT,
            ended_at TEXT,
            end_reason TEXT
        ) STRICT;
        CREATE INDEX installs_node ON installs(node_id, id);
        CREATE UNIQUE INDEX installs_one_open ON installs(node_id) WHERE ended_at IS NULL;
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES nodes(id),
            install_id INTEGER REFERENCES installs(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT,
            source TEXT
        ) STRICT;
        CREATE INDEX events_node ON events(node_id, id);
        CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
            BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
        """,
    ),
    (
        # What a render gave, so reconcile checks a node's files by a read and a hash instead
        # of rendering them again (bmprov.boot.digests); dropped with the node.
        "0004_file_digests",
        """
        CREATE TABLE file_digests (
            node_id INTEGER PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
            inputs TEXT NOT NULL,
            paths TEXT NOT NULL,
            digest TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT;
        """,
    ),
]


_PG_APPEND_ONLY = """
        CREATE FUNCTION bmprov_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'history is append-only'; END $$;
        CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history
            FOR EACH ROW EXECUTE FUNCTION bmprov_history_append_only();
"""

POSTGRES: dict[str, str] = {
    # Same columns as SQLite's; ids from identity sequences (an import reserves a block of
    # them in one round trip); timestamps stay ISO text so `state copy` is byte-for-byte.
    "0001_nodes_macs_history": """
        CREATE TABLE nodes (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            serial TEXT NOT NULL UNIQUE,
            model TEXT,
            os TEXT,
            hostname TEXT UNIQUE,
            site TEXT,
            rack TEXT,
            unit INTEGER,
            notes TEXT,
            asset_tag TEXT,
            bmc_address TEXT,
            bmc_type TEXT,
            install_options TEXT NOT NULL DEFAULT '{}',
            automated INTEGER NOT NULL DEFAULT 0,
            stage TEXT NOT NULL,
            stage_reason TEXT,
            failed_stage TEXT,
            ip TEXT UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            stage_changed_at TEXT NOT NULL
        );
        CREATE INDEX nodes_stage ON nodes(stage);
        CREATE INDEX nodes_site_rack ON nodes(site, rack);
        CREATE TABLE macs (
            mac TEXT PRIMARY KEY,
            node_id BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
            position INTEGER NOT NULL
        );
        CREATE INDEX macs_node ON macs(node_id, position);
        CREATE TABLE history (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            node_id BIGINT NOT NULL REFERENCES nodes(id),
            serial TEXT NOT NULL,
            from_stage TEXT,
            to_stage TEXT NOT NULL,
            at TEXT NOT NULL,
            reason TEXT,
            command TEXT
        );
        CREATE INDEX history_node ON history(node_id, id);
    """
    + _PG_APPEND_ONLY,
    "0002_boot_files": """
        CREATE TABLE boot_files (
            node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
            fingerprint TEXT NOT NULL,
            cleared_at TEXT,
            updated_at TEXT NOT NULL
        );
    """,
    "0003_installs_events": """
        CREATE TABLE installs (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            node_id BIGINT NOT NULL REFERENCES nodes(id),
            serial TEXT NOT NULL,
            os TEXT,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            progress INTEGER NOT NULL DEFAULT 0,
            progress_at TEXT,
            ended_at TEXT,
            end_reason TEXT
        );
        CREATE INDEX installs_node ON installs(node_id, id);
        CREATE UNIQUE INDEX installs_one_open ON installs(node_id) WHERE ended_at IS NULL;
        CREATE TABLE events (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            node_id BIGINT NOT NULL REFERENCES nodes(id),
            install_id BIGINT REFERENCES installs(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT,
            source TEXT
        );
        CREATE INDEX events_node ON events(node_id, id);
        CREATE FUNCTION bmprov_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
        CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
            FOR EACH ROW EXECUTE FUNCTION bmprov_events_append_only();
    """,
    "0004_file_digests": """
        CREATE TABLE file_digests (
            node_id BIGINT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE,
            inputs TEXT NOT NULL,
            paths TEXT NOT NULL,
            digest TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
    """,
}
"""PostgreSQL text of the migrations whose SQLite text does not run there, by name."""

SQLITE_ONLY = ("STRICT", "WITHOUT ROWID", "INTEGER PRIMARY KEY", "TRIGGER", "json_each", "RAISE(")
"""Syntax that makes a migration need its own PostgreSQL text."""


def tables() -> list[str]:
    """Every table the migrations create, in creation order (parents before children)."""
    names: list[str] = []
    for _, sql in MIGRATIONS:
        names += re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql, re.IGNORECASE)
    return names


def migration_sql(name: str, sql: str, dialect: str) -> str:
    """The text of migration ``name`` for ``dialect`` (``sqlite`` or ``postgresql``)."""
    if dialect == "postgresql":
        if name in POSTGRES:
            return POSTGRES[name]
        if any(word.lower() in sql.lower() for word in SQLITE_ONLY):
            raise RuntimeError(f"migration {name} has SQLite-only syntax and no PostgreSQL text")
    return sql
