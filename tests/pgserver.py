"""A real PostgreSQL server for the tests and the benchmark: Debian's binaries, a throw-away
cluster in a temporary directory, run as ``nobody`` (initdb refuses root) on a unix socket in
that directory and on 127.0.0.1 at ``BMPROV_TEST_PORT_BASE + 432``; stopped (``pg_ctl stop -m
immediate``, then the postmaster's PID killed) even when a test fails.

Authentication: the unix socket trusts everyone (tests connect as the superuser to create
databases); TCP wants a password (scram-sha-256), so the password tests are real.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_BIN = Path("/usr/lib/postgresql")
USER, UID, GID = "bmprov", 65534, 65534  # the role bmprov connects as; the OS user `nobody`
PASSWORD = "test-only-" + "pw"  # a throw-away cluster's role password, for the TCP tests
_names = itertools.count(1)


def pg_bin(tool: str) -> Path:
    """A PostgreSQL server program (newest installed major version)."""
    versions = sorted(PG_BIN.glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return versions[0] / tool


class PgServer:
    """One running cluster. :meth:`new_database` gives each test its own empty database."""

    def __init__(self, port: int, durable: bool = False) -> None:
        self.port = port
        self.durable = durable  # False (tests): fsync off; True (benchmark): server defaults
        self.dir = Path(tempfile.mkdtemp(prefix="bmprov-pg-"))
        os.chown(self.dir, UID, GID)
        self.data = self.dir / "data"
        self.socket_dir = str(self.dir)

    def _as_nobody(self, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in argv]
        if os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        """initdb (once) and start the server; returns when it accepts connections."""
        if not self.data.exists():
            self._as_nobody(
                pg_bin("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
            )  # fmt: skip
            hba = self.data / "pg_hba.conf"
            hba.write_text(
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8"
            )
            with (self.data / "postgresql.conf").open("a", encoding="utf-8") as fh:
                fh.write(
                    f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "max_connections = 60\nshared_buffers = 64MB\n"
                )
                if not self.durable:
                    fh.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self._as_nobody(
            pg_bin("pg_ctl"), "-D", self.data, "-l", self.dir / "server.log", "-w", "-t", "60",
            "start",
        )  # fmt: skip
        if not getattr(self, "_role", False):
            with self.admin() as conn:
                conn.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
            self._role = True

    def stop(self) -> None:
        """Stop at once (tests need no clean shutdown); kill the postmaster if pg_ctl fails."""
        pid = self.postmaster_pid()
        pg_ctl = pg_bin("pg_ctl")
        self._as_nobody(pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def postmaster_pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self) -> str:
        with self.admin() as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.socket_dir, port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def new_database(self, prefix: str = "t") -> str:
        """A fresh empty database owned by the bmprov role; returns its unix-socket URL."""
        name = f"{prefix}{os.getpid()}_{next(_names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER {USER}")
        return self.url(name)

    def url(self, dbname: str) -> str:
        """URL over the unix socket (trusted: no password)."""
        return f"postgresql://{USER}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, dbname: str) -> str:
        """URL over 127.0.0.1 (needs the password)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{dbname}"


def db_name(url: str) -> str:
    """The database name in one of :meth:`PgServer.url`'s URLs."""
    return url.split("@/", 1)[1].split("?", 1)[0]


@contextlib.contextmanager
def running(port: int, durable: bool = False) -> Iterator[PgServer]:
    """A started server, stopped and deleted afterwards whatever happens."""
    server = PgServer(port, durable)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def wait_gone(pid: int, timeout: float = 10) -> None:
    """Wait until ``pid`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
