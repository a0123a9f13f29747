"""Shared fixtures: a fresh site (config + state file) and an in-process CLI runner.

Both backends: a test module that sets ``BOTH_BACKENDS = True`` runs each test using ``site``,
``store`` or ``state_location`` twice, on SQLite and on a fresh database of a real PostgreSQL
server (one per session, ``tests/pgserver.py``; those runs are marked ``peer``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bmprov.cli import app
from bmprov.config import Config, load_config
from bmprov.setup_site import init_site
from bmprov.store import StateDB, Store, open_url
from tests.pgserver import PgServer, running

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_sheets"


@dataclass
class Site:
    """A tmp site directory with bmprov.toml and an empty state file."""

    dir: Path
    config_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    backend: str = "sqlite"

    def db(self) -> Store:
        from bmprov.store import open_store

        return open_store(self.config)

    def write_config(self, extra: str) -> None:
        """Append TOML to the site's config."""
        with self.config_path.open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra + "\n")


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.peer)]
PG_PORT = int(os.environ.get("BMPROV_TEST_PORT_BASE", "19000")) + 432


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``BOTH_BACKENDS = True`` in a module: its state-using tests run on both backends."""
    uses_state = {"site", "store", "state_location"} & set(metafunc.fixturenames)
    if getattr(metafunc.module, "BOTH_BACKENDS", False) and uses_state:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only else BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session (started on first use, always stopped)."""
    with running(PG_PORT) as server:
        yield server


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The state backend under test (``sqlite`` unless the module asks for both)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def state_location(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """Where a fresh state lives: an SQLite path, or a new PostgreSQL database's URL."""
    if backend == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        return server.new_database()
    return str(tmp_path / "state.sqlite")


@pytest.fixture
def store(state_location: str) -> Iterator[Store]:
    """A fresh, migrated, empty state on the backend under test."""
    if not state_location.startswith("postgresql://"):
        StateDB(state_location).close()  # open_url never creates an SQLite file
    with open_url(state_location) as handle:
        yield handle


@pytest.fixture
def site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, backend: str
) -> Iterator[Site]:
    result = init_site(tmp_path / "site")
    monkeypatch.setenv("BMPROV_CONFIG", str(result.config_path))
    made = Site(result.config_path.parent, result.config_path, backend)
    if backend == "postgresql":
        set_top_level(result.config_path, f'state = "{request.getfixturevalue("state_location")}"')
    yield made


def set_top_level(config: Path, lines: str) -> None:
    """Replace the config's ``state = …`` line with ``lines`` (top-level keys: before any table)."""
    text = config.read_text(encoding="utf-8")
    out = [lines if ln.startswith("state =") else ln for ln in text.splitlines()]
    config.write_text("\n".join(out) + "\n", encoding="utf-8")


@pytest.fixture
def clean_lab() -> Iterator[None]:
    """The fake BMCs (``bmprov.drivers.fake.LAB``) forgotten before and after the test."""
    from bmprov.drivers.fake import LAB

    LAB.reset()
    yield
    LAB.reset()


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Iterator[object]:
    """Invoke the CLI in-process: ``cli("import", "x.csv")`` → Run(exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str | os.PathLike[str]) -> Run:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    yield invoke


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """Write rows (first = header) as a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def raw_sql(db: Store, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Raw SQL in a test (to tamper with or inspect a state) on either backend, in one
    transaction; ``?`` placeholders. Returns the rows, if the statement returns any."""
    with db.atomic() as conn:
        if db.backend == "postgresql":
            cur = conn.execute(sql.replace("?", "%s").encode(), params)
            return list(cur.fetchall()) if cur.description else []
        return list(conn.execute(sql, params).fetchall())


def state_snapshot(db: Store) -> tuple[object, ...]:
    """Every node (all columns, timestamps included) and every history row count: equal
    snapshots mean nothing was written."""
    nodes = db.load_nodes()
    return (*nodes, *(len(db.history(n.id)) for n in nodes))
