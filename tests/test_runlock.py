"""The site's run lock (:mod:`bmprov.runlock`) on both backends: ``reconcile`` holds it
exclusive, ``advance``, ``pxe render|clear``, ``dhcp export -o`` and the changing ``power``
commands hold it shared; a wait is bounded by ``state_timeout`` and ends in a clear message.
On PostgreSQL it is a session-level advisory lock keyed by the site: two sites never wait."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bmprov.boot.sync import clear, render_all
from bmprov.errors import LockedError
from bmprov.lifecycle import advance
from bmprov.nodes import Selection
from bmprov.power import PowerRequest, run_power_locked
from bmprov.runlock import site_lock
from bmprov.stages import ActionContext
from bmprov.store import open_url
from tests.conftest import Site
from tests.pgserver import PgServer
from tests.test_reconcile import load, snapshot

BOTH_BACKENDS = True


@contextmanager
def held(site: Site, *, shared: bool) -> Iterator[None]:
    """The run lock held by another bmprov (another connection / open file)."""
    with site.db() as other, site_lock(other, 5, shared=shared):
        yield


def short_timeout(site: Site, seconds: float = 0.3) -> None:
    site.config_path.write_text(f"state_timeout = {seconds}\n" + site.config_path.read_text())


def test_a_reconcile_excludes_every_writer_and_they_give_up_clearly(site: Site, cli) -> None:
    load(site, 1)
    short_timeout(site)
    config = site.config
    before = snapshot(site)
    with held(site, shared=False), site.db() as db:  # as a reconcile --fix under way
        ctx = ActionContext(config, db, "t")
        with pytest.raises(LockedError, match="locked"):
            advance(ctx, Selection(all=True), "installing")
        with pytest.raises(LockedError, match="locked"):
            render_all(config, db)
        with pytest.raises(LockedError, match="locked"):
            clear(config, db, ["SN1"])
        with pytest.raises(LockedError, match="locked"):
            run_power_locked(config, db, db.load_nodes(), PowerRequest(action="off"))
        # reading the power state takes no lock (no BMC here: nothing is contacted)
        status = run_power_locked(config, db, db.load_nodes(), PowerRequest(status=True))
        assert len(status.results) == 1
        result = cli("dhcp", "export", "--format", "isc", "-o", str(site.dir / "hosts.conf"))
        assert result.exit_code == 1
        assert "locked" in result.stderr
        assert "Traceback" not in result.stderr
        assert snapshot(site) == before  # none of them wrote anything
    assert not (site.dir / "hosts.conf").exists()
    result = cli("dhcp", "export", "--format", "isc", "-o", str(site.dir / "hosts.conf"))
    assert result.exit_code == 0


def test_writers_share_it_and_a_reconcile_waits_for_them(site: Site, cli) -> None:
    load(site, 1)
    short_timeout(site)
    with held(site, shared=True), site.db() as db:  # as an advance under way
        assert render_all(site.config, db).batch.exit_code == 0  # shared beside shared
        result = cli("reconcile", "--no-bmc", "--fix")
        assert result.exit_code == 1
        assert "locked" in result.stderr
    assert cli("reconcile", "--no-bmc", "--fix").exit_code == 0


def test_a_writer_waits_for_a_reconcile_to_finish(site: Site) -> None:
    load(site, 1)
    short_timeout(site, 10)
    taken, release = threading.Event(), threading.Event()

    def reconcile_like() -> None:
        with held(site, shared=False):
            taken.set()
            release.wait(5)
            time.sleep(0.4)

    thread = threading.Thread(target=reconcile_like)
    thread.start()
    try:
        assert taken.wait(5)
        release.set()
        start = time.monotonic()
        with site.db() as db:
            batch = advance(ActionContext(site.config, db, "t"), Selection(all=True), "installing")
        waited = time.monotonic() - start
    finally:
        release.set()
        thread.join()
    assert [r.status for r in batch.results] == ["ok"]
    assert waited >= 0.3  # it waited for the exclusive holder, then went ahead


@pytest.mark.peer
def test_postgres_two_sites_do_not_block_each_other(pg_server: PgServer) -> None:
    url = pg_server.new_database("runlock")
    with open_url(url) as a, open_url(url) as b:
        with site_lock(a, 5, site="dc1"):  # a reconcile of dc1
            with site_lock(b, 0.2, shared=True, site="dc2"):  # dc2's advance goes ahead
                pass
            with site_lock(b, 0.2, site="dc2"):  # so does dc2's reconcile
                pass
            start = time.monotonic()
            with (
                pytest.raises(LockedError, match=r"site dc1 in PostgreSQL state .* is locked"),
                site_lock(b, 0.3, shared=True, site="dc1"),
            ):
                pass
            assert time.monotonic() - start >= 0.3
        # released: dc1 is free again, and shared beside shared
        with site_lock(b, 0.2, shared=True, site="dc1"), site_lock(a, 0.2, shared=True, site="dc1"):
            pass
    with open_url(url) as c, open_url(url) as killed:
        assert killed.try_site_lock("dc1", shared=False)  # a reconcile that is then killed
        with pytest.raises(LockedError):
            site_lock(c, 0.2, site="dc1").__enter__()
        killed.close()  # its session ends: PostgreSQL drops the lock
        with site_lock(c, 0.5, site="dc1"):
            pass


def test_the_sqlite_lock_keeps_this_process_sqlite_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX record lock the process holds on it.
    When the run lock was ``flock`` on the state file itself, a serve completion (which advances
    nodes under the shared lock) dropped serve's SQLite locks; the next CLI closing its
    connection then deleted the WAL under serve, and serve's later commits were lost (found by
    the lab, issue 15). The lock now lives on ``<state>.lock``."""
    db = tmp_path / "state.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    with site_lock(cast(Any, SimpleNamespace(backend="sqlite", path=db)), 1.0, shared=True):
        pass
    other = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('SELECT count(*) FROM t').fetchall(); c.close()"
    )
    subprocess.run([sys.executable, "-c", other, str(db)], check=True, timeout=30)
    assert (tmp_path / "state.sqlite-wal").exists()  # the other process saw us and kept it
    conn.execute("INSERT INTO t VALUES (2)")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (2,)
    conn.close()
