"""The state schema as named migrations, applied in order and recorded in ``schema_migrations``.

One list for every backend: a state file (or database) that records a migration this list does
not know was written by a newer bmprov and is refused.
"""

from __future__ import annotations

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
]
