"""The site lock must not drop SQLite's own locks of a long-running process (bmprov serve).

Closing any descriptor of a file drops every POSIX record lock the process holds on it. When
the site lock was ``flock`` on the state file itself, a serve completion (which advances nodes
under the shared lock) dropped serve's SQLite locks; the next CLI closing its connection then
deleted the WAL under serve, and serve's later commits were lost (found by the lab, issue 15).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from bmprov.runlock import site_lock


def test_site_lock_keeps_sqlite_locks_of_this_process(tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    with site_lock(db, 1.0, shared=True):
        pass
    other = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('SELECT count(*) FROM t').fetchall(); c.close()"
    )
    subprocess.run([sys.executable, "-c", other, str(db)], check=True, timeout=30)
    assert (tmp_path / "state.sqlite-wal").exists()  # the other process saw us and kept it
    conn.execute("INSERT INTO t VALUES (2)")
    seen = sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()
    assert seen == (2,)
    conn.close()
