"""The state file under concurrency: two processes never corrupt it or lose an update."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import time
from pathlib import Path

import pytest

from bmprov import states
from bmprov.errors import LockedError, StateError
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, list_nodes
from bmprov.stages import ActionContext
from bmprov.store import MIGRATIONS, StateDB
from tests.conftest import Site, write_csv


def _importer(config_path: str, sheet: str, rounds: int) -> None:
    from bmprov.config import load_config

    config = load_config(Path(config_path))
    with StateDB(config.state_path) as db:
        for _ in range(rounds):
            import_sheet(db, config, Path(sheet))


def _advancer(config_path: str, rounds: int) -> None:
    from bmprov.config import load_config

    config = load_config(Path(config_path))
    with StateDB(config.state_path) as db:
        ctx = ActionContext(config=config, db=db, command="proc")
        for _ in range(rounds):
            advance(ctx, Selection(all=True), states.MOUNTING)
            time.sleep(0.001)


AUTO = "provisioning_auto"  # the automation marker: advance --all moves only marked rows


def test_two_processes_import_and_advance_at_once(site: Site, tmp_path: Path) -> None:
    header = ["Serial", "MAC", "Notes"]
    a = write_csv(
        tmp_path / "a.csv",
        [header] + [[f"A{i}", f"52:54:00:0a:00:{i:02x}", AUTO] for i in range(200)],
    )
    b = write_csv(
        tmp_path / "b.csv",
        [header] + [[f"B{i}", f"52:54:00:0b:00:{i:02x}", AUTO] for i in range(200)],
    )
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_importer, args=(str(site.config_path), str(a), 5)),
        ctx.Process(target=_importer, args=(str(site.config_path), str(b), 5)),
        ctx.Process(target=_advancer, args=(str(site.config_path), 20)),
        ctx.Process(target=_advancer, args=(str(site.config_path), 20)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with site.db() as db:
        _advancer(str(site.config_path), 1)
        nodes = list_nodes(db)
        assert len(nodes) == 400
        assert all(len(n.macs) == 1 for n in nodes)
        assert {n.stage for n in nodes} == {states.MOUNTING}
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Exactly one purchasing→mounting history row per node: no move was applied twice.
        dupes = db.conn.execute(
            "SELECT node_id FROM history WHERE to_stage = 'mounting' GROUP BY node_id"
            " HAVING COUNT(*) != 1"
        ).fetchall()
        assert dupes == []


def test_locked_state_file_says_another_bmprov_is_running(site: Site) -> None:
    holder = sqlite3.connect(site.config.state_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        db = StateDB(site.config.state_path, busy_timeout_ms=100)
        with pytest.raises(LockedError, match="another bmprov is running"), db.atomic():
            pass
        db.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_state_file_is_wal_strict_and_versioned(site: Site) -> None:
    with site.db() as db:
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        sql = db.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'nodes'").fetchone()[0]
        assert "STRICT" in sql
        with pytest.raises(sqlite3.IntegrityError), db.atomic() as c:
            c.execute(
                "INSERT INTO nodes(serial, stage, unit, created_at, updated_at,"
                " stage_changed_at) VALUES ('x', 'purchasing', 'U15', 'a', 'a', 'a')"
            )


def test_newer_state_file_is_refused(site: Site) -> None:
    with site.db() as db, db.atomic() as c:
        c.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('9999_future', 'x')")
    with pytest.raises(StateError, match="newer bmprov"):
        StateDB(site.config.state_path)


def test_not_a_state_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.sqlite"
    bogus.write_text("this is not sqlite " * 100)
    with pytest.raises(StateError, match="not a bmprov state file"):
        StateDB(bogus)


def test_nested_atomic_is_a_savepoint(site: Site) -> None:
    with site.db() as db:
        with db.atomic() as c:
            c.execute(
                "INSERT INTO nodes(serial, stage, created_at, updated_at, stage_changed_at)"
                " VALUES ('keep', 'purchasing', 'a', 'a', 'a')"
            )
            with pytest.raises(RuntimeError), db.atomic() as inner:
                inner.execute(
                    "INSERT INTO nodes(serial, stage, created_at, updated_at,"
                    " stage_changed_at) VALUES ('drop', 'purchasing', 'a', 'a', 'a')"
                )
                raise RuntimeError
        assert [r[0] for r in db.conn.execute("SELECT serial FROM nodes")] == ["keep"]
