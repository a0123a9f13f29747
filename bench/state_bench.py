"""State backends side by side (issue 14): SQLite and PostgreSQL in one run, as root.

    .venv/bin/python bench/state_bench.py [--rows 100000] [--nodes 10000] [--ips 10000]
                                          [--parts import,networking,allocate]

A real PostgreSQL (Debian's, started by tests/pgserver.py in a temporary directory as
``nobody``, unix socket, fsync on — the server's defaults apart from the port) and SQLite files
on the same disk. Targets:

1. import of the same 100,000-row sheet: PostgreSQL ≤ 2× SQLite;
2. ``advance --stage networking`` of 10,000 nodes, file DHCP backend, boot and install files
   written: PostgreSQL ≤ 1.5× SQLite;
3. 8 processes allocating 10,000 addresses from one pool, 50 per transaction: 0 duplicates;
   throughput quoted for both.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bmprov.config import Config, load_config
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection
from bmprov.setup_site import init_site
from bmprov.stages import ActionContext
from bmprov.store import Store, open_store, open_url
from tests.conftest import set_top_level
from tests.pgserver import PgServer, running

PORT = int(os.environ.get("BMPROV_TEST_PORT_BASE", "19000")) + 433
ALLOCATE = """
import sys
from bmprov import ipam
from bmprov.nodes import list_nodes
from bmprov.store import open_url
location, worker, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pools = [ipam.build_pool({"name": "p", "subnet": "10.40.0.0/16"}, "pools[0]")]
with open_url(location) as db:
    mine = [n for n in list_nodes(db) if n.id % workers == worker]
    for i in range(0, len(mine), 50):
        ipam.allocate(db, pools, mine[i : i + 50])
"""


def sheet(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["Serial", "MAC", "Model", "OS", "Hostname", "Site", "Rack", "Unit", "Notes"])
        for i in range(rows):
            mac = "52:54:" + ":".join(f"{(i >> s) & 255:02x}" for s in (24, 16, 8, 0))
            rack = f"R{i // 40:04d}"
            out.writerow(
                [f"SN{i:09d}", mac, "PowerEdge R650", "rocky9", f"n{i:06d}", "dc1", rack,
                 str(i % 40 + 1), "provisioning_auto"]
            )  # fmt: skip
    return path


def site(root: Path, name: str, state: str | None) -> Config:
    config = init_site(root / name).config_path
    if state:
        set_top_level(config, f'state = "{state}"')
    with config.open("a", encoding="utf-8") as fh:
        fh.write('\n[[pools]]\nname = "big"\nsubnet = "10.40.0.0/16"\n')
    return load_config(config)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_import(root: Path, server: PgServer, rows: int) -> None:
    path = sheet(root / "sheet.csv", rows)
    took = {}
    for backend, state in (("sqlite", None), ("postgresql", server.new_database("imp"))):
        config = site(root, f"imp-{backend}", state)
        with open_store(config) as db:
            took[backend] = timed(lambda db=db, config=config: import_sheet(db, config, path))
            again = timed(lambda db=db, config=config: import_sheet(db, config, path))
            assert len(db.load_nodes(stage="purchasing")) == rows
        print(f"import {rows:,} rows, {backend}: {took[backend]:.2f} s (re-import {again:.2f} s)")
    ratio = took["postgresql"] / took["sqlite"]
    print(f"import: PostgreSQL / SQLite = {ratio:.2f}x (target ≤ 2x)")


def fill(db: Store, count: int, stage: str) -> None:
    rows = [(f"BN{i:06d}", f"bn{i:06d}", "rocky9", 1, "dc1") for i in range(count)]
    macs = [
        ("02:31:" + ":".join(f"{i >> s & 255:02x}" for s in (24, 16, 8, 0)),) for i in range(count)
    ]
    cols = ("serial", "hostname", "os", "automated", "site")
    db.insert_nodes(cols, rows, macs, stage, "bench", "bench")


def bench_networking(root: Path, server: PgServer, count: int) -> None:
    took = {}
    for backend, state in (("sqlite", None), ("postgresql", server.new_database("net"))):
        config = site(root, f"net-{backend}", state)
        with open_store(config) as db:
            fill(db, count, "mounting")
            ctx = ActionContext(config, db, "advance")
            batch = None

            def run(ctx: ActionContext = ctx) -> None:
                nonlocal batch
                batch = advance(ctx, Selection(all=True), "networking")

            took[backend] = timed(run)
            assert batch is not None and batch.counts() == {"ok": count}, batch and batch.counts()
        what = "nodes (file DHCP, files written)"
        print(f"networking {count:,} {what}, {backend}: {took[backend]:.2f} s")
    ratio = took["postgresql"] / took["sqlite"]
    print(f"networking: PostgreSQL / SQLite = {ratio:.2f}x (target ≤ 1.5x)")


def bench_allocate(root: Path, server: PgServer, count: int, workers: int = 8) -> None:
    for backend, location in (
        ("sqlite", str(root / "alloc.sqlite")),
        ("postgresql", server.new_database("alloc")),
    ):
        if backend == "sqlite":
            from bmprov.store import StateDB

            StateDB(Path(location)).close()
        with open_url(location) as db:
            fill(db, count, "networking")
        start = time.perf_counter()
        procs = [
            subprocess.Popen([sys.executable, "-c", ALLOCATE, location, str(k), str(workers)])
            for k in range(workers)
        ]
        codes = [p.wait() for p in procs]
        took = time.perf_counter() - start
        with open_url(location) as db:
            ips = list(db.held_addresses().values())
        dups = len(ips) - len(set(ips))
        assert codes == [0] * workers, codes
        print(
            f"allocate: {workers} processes, {len(ips):,} addresses, {backend}: {took:.2f} s"
            f" ({len(ips) / took:,.0f} addresses/s), {dups} duplicates"
        )
        assert dups == 0 and len(ips) == count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--ips", type=int, default=10_000)
    parser.add_argument("--parts", default="import,networking,allocate", help="which to run")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bmprov-state-bench-") as tmp,
        running(PORT, durable=True) as server,
    ):
        root = Path(tmp)
        print(f"PostgreSQL {server.version()} on a unix socket; SQLite files in {tmp}")
        parts = args.parts.split(",")
        if "import" in parts:
            bench_import(root, server, args.rows)
        if "networking" in parts:
            bench_networking(root, server, args.nodes)
        if "allocate" in parts:
            bench_allocate(root, server, args.ips)


if __name__ == "__main__":
    main()
