"""The state layer on both backends, and what only a shared PostgreSQL state has to survive:
several hosts and processes writing at once, the server going away mid-batch, and moving a
state between SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bmprov.config import load_config
from bmprov.dhcp import DhcpSettings
from bmprov.dhcp.filestore import FileBackend
from bmprov.errors import ConfigError, LockedError, StateError, StateFileError
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, list_nodes
from bmprov.setup_site import init_site
from bmprov.stages import ActionContext, Services
from bmprov.store import MIGRATIONS, Store, open_store, open_url
from bmprov.store.pgconn import StateServerError
from bmprov.store.postgres import PostgresStore
from bmprov.store.schema import POSTGRES, migration_sql, tables
from bmprov.store.sqlite import open_state
from tests.conftest import Site, raw_sql, set_top_level, write_csv
from tests.pgserver import PASSWORD, PgServer, db_name

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)
REPO = Path(__file__).resolve().parent.parent
BMPROV = REPO / ".venv" / "bin" / "bmprov"


def add(db: Store, count: int, start: int = 0, stage: str = "mounting", site: str | None = None):
    rows = [(f"SN{i:06d}", site) for i in range(start, start + count)]
    macs = [
        (f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",)
        for i in range(start, start + count)
    ]
    db.insert_nodes(("serial", "site"), rows, macs, stage, "test", "test")


# -- the state layer, both backends ------------------------------------------------------


def test_every_migration_has_text_for_every_backend() -> None:
    for name, sql in MIGRATIONS:
        assert migration_sql(name, sql, "sqlite") == sql
        assert migration_sql(name, sql, "postgresql")  # raises if SQLite-only with no variant
    assert set(POSTGRES) <= {name for name, _ in MIGRATIONS}


def test_fresh_state_is_migrated_and_empty(store: Store) -> None:
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    for table in tables():
        assert store.dump_table(table)[1] == []


def test_newer_schema_is_refused(store: Store, state_location: str) -> None:
    raw_sql(
        store,
        "INSERT INTO schema_migrations(id, name, applied_at) VALUES (999, '9999_future', 'x')",
    )
    with pytest.raises(StateFileError, match="newer bmprov"):
        open_url(state_location)


def test_moves_are_compare_and_set_across_connections(store: Store, state_location: str) -> None:
    add(store, 3)
    nodes = list_nodes(store)
    with open_url(state_location) as other:
        assert other.move_nodes([(n, None) for n in nodes], "networking", "a") == {
            n.id for n in nodes
        }
        # the same (now stale) nodes again from the first connection: nothing moves twice
        assert store.move_nodes([(n, "late") for n in nodes], "networking", "b") == set()
    for node in nodes:
        assert [h["to_stage"] for h in store.history(node.id)] == ["mounting", "networking"]


def test_concurrent_moves_of_one_node_move_it_once(store: Store, state_location: str) -> None:
    add(store, 50)
    nodes = list_nodes(store)
    moved: list[set[int]] = []

    def run() -> None:
        with open_url(state_location) as own:
            moved.append(own.move_nodes([(n, None) for n in nodes], "networking", "race"))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(m) for m in moved)[-1] > 0
    assert sum(len(m) for m in moved) == 50  # each node moved by exactly one writer
    assert all(len(store.history(n.id)) == 2 for n in nodes)


def test_assigning_a_held_address_is_refused_and_writes_nothing(store: Store) -> None:
    add(store, 2)
    a, b = list_nodes(store)
    store.assign_addresses([(a.id, "10.0.0.1")])
    with pytest.raises(StateError, match="collided"):
        store.assign_addresses([(b.id, "10.0.0.1")])
    assert store.held_addresses() == {a.id: "10.0.0.1"}


# -- state copy ---------------------------------------------------------------------------


def dumps(db: Store) -> dict[str, list[tuple[object, ...]]]:
    return {t: sorted(db.dump_table(t)[1], key=repr) for t in tables()}


@pytest.mark.peer
@pytest.mark.sqlite_only  # (copies the site's SQLite state to PostgreSQL and back)
def test_state_copy_round_trip_is_lossless(site: Site, pg_server: PgServer, cli) -> None:
    sheet = write_csv(
        site.dir / "s.csv",
        [["serial", "mac", "hostname", "notes"]]
        + [[f"S{i}", f"02:00:00:00:01:{i:02x}", f"h{i}", "provisioning_auto"] for i in range(30)],
    )
    assert cli("import", sheet).exit_code == 0
    assert cli("advance", "--stage", "mounting", "--all").exit_code == 0
    assert cli("advance", "--stage", "networking", "--all").exit_code == 0
    pg_url = pg_server.new_database("copy")
    back = site.dir / "back.sqlite"
    first = cli("state", "copy", str(site.config.state_path), pg_url)
    assert first.exit_code == 0, first.stderr
    assert "30 nodes" in first.stdout
    assert cli("state", "copy", pg_url, str(back)).exit_code == 0
    with site.db() as a, open_url(pg_url) as b, open_state(back) as c:
        assert dumps(a) == dumps(b) == dumps(c)
        assert len(a.dump_table("history")[1]) == 120  # purchasing → … → os_provisioning
        # the copy goes on from the copied ids
        add(b, 1, start=900)
    again = cli("state", "copy", str(site.config.state_path), pg_url)
    assert again.exit_code == 2 and "not empty" in again.stderr


# -- PostgreSQL only -----------------------------------------------------------------------


@pytest.mark.peer
def test_check_reports_backend_version_and_schema(site: Site, cli, backend: str) -> None:
    run = cli("check", "--json")
    detail = json.loads(run.stdout)["checks"][0]["detail"]
    assert detail.startswith(f"{backend} ")
    assert f"schema {len(MIGRATIONS)}/{len(MIGRATIONS)}" in detail


@pytest.mark.peer
def test_connection_failures_are_one_clear_line(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database("auth")
    name = db_name(url)
    with pytest.raises(StateFileError, match="password refused"):
        open_url(pg_server.tcp_url(name))
    with pytest.raises(StateFileError, match="does not exist"):
        open_url(pg_server.url("no_such_db"))
    with pytest.raises(StateServerError, match="cannot connect"):
        open_url("postgresql://bmprov@127.0.0.1:1/x")
    with pytest.raises(StateFileError, match="holds a password") as err:
        open_url(f"postgresql://bmprov:{PASSWORD}@127.0.0.1:{pg_server.port}/{name}")
    assert PASSWORD not in str(err.value)


@pytest.mark.peer
@pytest.mark.sqlite_only  # (the test moves the site's state to PostgreSQL itself)
def test_password_from_file_or_env_never_inline(
    pg_server: PgServer, site: Site, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = db_name(pg_server.new_database("pw"))
    set_top_level(site.config_path, f'state = "{pg_server.tcp_url(name)}"')
    assert cli("nodes", "list").exit_code == 2  # no password anywhere: refused, exit 2
    (site.dir / "pgpass").write_text(PASSWORD + "\n")
    set_top_level(
        site.config_path, f'state = "{pg_server.tcp_url(name)}"\nstate_password_file = "pgpass"'
    )
    run = cli("nodes", "list", "--json")
    assert run.exit_code == 0, run.stderr
    text = site.config_path.read_text().replace(
        'state_password_file = "pgpass"', 'state_password_env = "BMPROV_PG"'
    )
    site.config_path.write_text(text)
    with pytest.raises(ConfigError, match="BMPROV_PG"):
        open_store(site.config)
    monkeypatch.setenv("BMPROV_PG", PASSWORD)
    ok = cli("check")
    assert ok.exit_code == 0, ok.stdout
    assert PASSWORD not in ok.stdout + ok.stderr


@pytest.mark.peer
def test_lock_wait_past_state_timeout_is_locked_error(pg_server: PgServer) -> None:
    """(SQLite's lock wait: tests/test_db.py.)"""
    url = pg_server.new_database("lock")
    with PostgresStore(url) as store, PostgresStore(url, lock_timeout_ms=200) as other:
        add(store, 1)
        with store.atomic():
            store.held_addresses()  # holds the allocation lock
            with pytest.raises(LockedError, match="locked"), other.atomic():
                other.held_addresses()


# -- several processes and hosts at once ---------------------------------------------------

ALLOCATE = """
import sys
from bmprov import ipam
from bmprov.nodes import list_nodes
from bmprov.store import open_url
location, worker, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pools = [ipam.build_pool({"name": "p", "subnet": "10.40.0.0/16"}, "pools[0]")]
with open_url(location) as db:
    mine = [n for n in list_nodes(db) if n.id % workers == worker]
    for i in range(0, len(mine), 25):
        ipam.allocate(db, pools, mine[i : i + 25])
"""


@pytest.mark.peer
@pytest.mark.slow
def test_eight_processes_allocating_from_one_pool_never_collide(
    store: Store, state_location: str
) -> None:
    add(store, 1600)
    procs = [
        subprocess.Popen([sys.executable, "-c", ALLOCATE, state_location, str(k), "8"])
        for k in range(8)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0] * 8
    ips = list(store.held_addresses().values())
    assert len(ips) == len(set(ips)) == 1600


def two_sites(pg_server: PgServer, tmp_path: Path) -> tuple[str, list[Path]]:
    """Two hosts' configs (dc1, dc2) on one PostgreSQL database, with overlapping pools."""
    url = pg_server.new_database("sites")
    configs = []
    for site in ("dc1", "dc2"):
        config = init_site(tmp_path / site).config_path
        set_top_level(config, f'state = "{url}"\nsite = "{site}"')
        with config.open("a", encoding="utf-8") as fh:
            fh.write('\n[[pools]]\nname = "shared"\nsubnet = "10.50.0.0/22"\n')
        configs.append(config)
    return url, configs


@pytest.mark.peer
@pytest.mark.slow
def test_two_sites_networking_at_once_on_overlapping_pools(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url, configs = two_sites(pg_server, tmp_path)
    rows = [["serial", "mac", "site", "notes"]]
    rows += [
        [f"A{i}", f"02:a0:00:00:{i >> 8:02x}:{i & 255:02x}", "dc1", "provisioning_auto"]
        for i in range(300)
    ]
    rows += [
        [f"B{i}", f"02:b0:00:00:{i >> 8:02x}:{i & 255:02x}", "dc2", "provisioning_auto"]
        for i in range(300)
    ]
    sheet = write_csv(tmp_path / "all.csv", rows)
    env = {**os.environ, "BMPROV_CONFIG": str(configs[0])}
    subprocess.run([BMPROV, "import", sheet], check=True, env=env, capture_output=True)
    subprocess.run(
        [BMPROV, "advance", "--stage", "mounting", "--all-sites"],
        check=True,
        env=env,
        capture_output=True,
    )
    procs = [
        subprocess.Popen(
            [BMPROV, "advance", "--stage", "networking", "--from", "mounting"],
            env={**os.environ, "BMPROV_CONFIG": str(c)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for c in configs
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with open_url(url) as db:
        nodes = list_nodes(db)
    ips = [n.ip for n in nodes]
    assert None not in ips and len(set(ips)) == 600  # 0 duplicates across the two sites
    assert all(n.stage == "os_provisioning" for n in nodes)
    # each host served its own site's nodes only
    for config, prefix in zip(configs, "AB", strict=True):
        tftp = config.parent / "tftpboot" / "pxelinux.cfg"
        macs = {p.name for p in tftp.glob("01-*")}
        assert len(macs) == 300
        assert all(m.startswith(f"01-02-{prefix.lower()}0") for m in macs)


class StopsServer(FileBackend):
    """The file backend, but the PostgreSQL server stops while it commits (mid-batch)."""

    def __init__(self, settings: DhcpSettings, server: PgServer) -> None:
        super().__init__(settings)
        self.server = server

    def _save(self, reservations):  # type: ignore[no-untyped-def]
        super()._save(reservations)
        self.server.stop()


@pytest.mark.peer
def test_server_stopped_mid_batch_then_rerun_converges(pg_server: PgServer, tmp_path: Path) -> None:
    _, configs = two_sites(pg_server, tmp_path)

    config = load_config(configs[0])
    rows = [["serial", "mac", "site", "notes"]]
    rows += [[f"A{i}", f"02:a0:00:00:00:{i:02x}", "dc1", "provisioning_auto"] for i in range(40)]
    with open_store(config) as db:
        import_sheet(db, config, write_csv(tmp_path / "a.csv", rows))
        advance(ActionContext(config, db, "t"), Selection(all=True), "mounting")
    try:
        with open_store(config) as db:
            backend = StopsServer(DhcpSettings.from_config(config), pg_server)
            ctx = ActionContext(config, db, "advance", Services(dhcp_backend=backend))
            with pytest.raises(StateServerError, match="connection lost") as err:
                advance(ctx, Selection(from_stage="mounting"), "networking")
            assert "re-run" in str(err.value)
    finally:
        pg_server.start()
    with open_store(config) as db:
        before = list_nodes(db)
        assert {n.stage for n in before} == {"networking"}  # entered; the action's move lost
        assert all(len(db.history(n.id)) == 3 for n in before)  # no history row half-written
        batch = advance(ActionContext(config, db, "advance"), Selection(all=True), "networking")
        assert batch.counts() == {"ok": 40}
        after = list_nodes(db)
        assert {n.stage for n in after} == {"os_provisioning"}
        assert len({n.ip for n in after}) == 40
