"""Speed targets of ``bmprov reconcile`` and ``bmprov export`` (as root).

    .venv/bin/python bench/reconcile_bench.py [--nodes 10000] [--rows 100000] [--runs 3]
                                              [--skip-reconcile] [--skip-export]

1. Reconcile of 10,000 nodes (BMC checks off) against a real dhcpd in a bmpA- namespace and a
   boot directory, both on tmpfs (/dev/shm), after a real ``advance --stage networking`` of the
   same nodes (install entries and install files: 40,000+ files), with ``leases_file`` set so
   orphans are checked too. Targets: ≤ 10 s, and ≤ 2× the floor measured in the same run: the
   bare pipelined OMAPI lookups of the same MACs plus one read of every file of the boot tree.
   With nothing to fix, nothing is written (state file, boot tree and lease file are hashed
   before and after, and no file under the site changes its mtime). Each run also times the
   same reconcile without the render records (bmprov.boot.digests), i.e. rendering every
   node for the comparison as before they existed.
2. Export of 100,000 nodes to .xlsx (``bmprov export``, a whole process) against the import of
   the same sheet (``bmprov import``, a whole process). Target: export ≤ 2× import.

Measured 2026-12-02 on the shared 2-core box, with render records (clean nodes are read and
hashed, not rendered), against the same run without them:

* installing nodes: 3.60 s vs floor 2.42 s (1.48x; without records 8.96 s, 3.70x) at load
  6.4; 4.58 vs 3.35 s (1.37x; without 13.18 s, 3.93x) at load 12.
* deployed nodes: 2.97 vs 3.94 s (0.75x; without 5.89 s, 1.50x) at load 8.

Before the records (load 4-16 from other test runs):

* installing nodes (install entries + install files, every one rendered for the comparison):
  2.99 s vs floor 0.77 s (3.9x) at load 4; 5.01 vs 3.73 s (1.3x), 5.13 vs 2.14 s (2.4x),
  7.74 vs 3.21 s (2.4x) at load 9-16. ≤ 10 s always; ≤ 2x only when dhcpd is the slow part.
  The gap is rendering: ~2.2 s of CPU for 10,000 install-mode nodes, which the floor has not.
* deployed nodes (local-boot entries): 3.00 vs 2.32 s (1.3x), 4.09 vs 2.74 s (1.5x).
* export 100,000 nodes: 8.36 s vs import 14.90 s (0.56x), 6.37 vs 14.23 s (0.45x), loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.import_bench import generate, run
from bench.networking_bench import insert_nodes, make_site
from bmprov.dhcp import DhcpSettings, open_backend
from bmprov.dhcp.omapi import OmapiBackend
from bmprov.dhcp.omapi_lookup import lookup_many
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, list_nodes
from bmprov.reconcile import reconcile
from bmprov.stages import ActionContext
from bmprov.store import StateDB
from tests import peers

NET, PLEN = 64, 18  # 10.231.64.0/18: 16,382 hosts
BMPROV = [sys.executable, "-m", "bmprov"]


def read_tree(*roots: Path) -> int:
    """One read of every file under the roots (the floor's share of the boot tree)."""
    total = 0
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                with open(os.path.join(directory, name), "rb") as fh:
                    total += len(fh.read())
    return total


def digest(*paths: Path) -> tuple[str, float]:
    """Hash of every file's bytes, and the newest mtime."""
    h, newest = hashlib.sha256(), 0.0
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                h.update(str(path).encode() + path.read_bytes())
                newest = max(newest, path.stat().st_mtime)
    return h.hexdigest(), newest


def set_up(root: Path, topo: peers.Topology, leases: Path, count: int, deployed: bool):
    """A site of ``count`` nodes through a real networking (and to deployed); their MACs."""
    from bmprov.config import load_config

    config = make_site(root, topo)
    config.path.write_text(config.path.read_text() + f'leases_file = "{leases}"\n')
    config = load_config(config.path)
    with StateDB(config.state_path) as db:
        insert_nodes(db, count, "mounting")
        start = time.perf_counter()
        ctx = ActionContext(config, db, "advance")
        with peers.netns(topo.srv):
            batch = advance(ctx, Selection(all=True), "networking")
        assert batch.counts() == {"ok": count}, batch.counts()
        if deployed:  # the steady state: local-boot entries, no install files
            for stage in ("installing", "deployed"):
                advance(ctx, Selection(all=True), stage)
        print(f"set-up: networking of {count:,} nodes in {time.perf_counter() - start:.1f} s")
        return config, [m for n in list_nodes(db) for m in n.macs]


def bench_reconcile(count: int, runs: int, deployed: bool = False) -> bool:
    root = Path(tempfile.mkdtemp(prefix=f"bmpA-bench-{os.getpid()}-", dir="/dev/shm"))
    try:
        with peers.topology("02:31:ff:00:00:01", net=NET, plen=PLEN) as topo:
            secret = peers.new_secret()
            (root / "omapi.key").write_text(secret)
            dhcpd_dir = root / "dhcpd"
            dhcpd_dir.mkdir()
            peers.start_dhcpd(topo, dhcpd_dir, secret)
            leases = dhcpd_dir / "dhcpd.leases"
            config, macs = set_up(root, topo, leases, count, deployed)
            tftp, http = config.resolve("tftpboot"), config.resolve("http")
            files = sum(len(f) for _, _, f in os.walk(tftp)) + sum(
                len(f) for _, _, f in os.walk(http)
            )
            settings = DhcpSettings.from_config(config)
            floors, totals, renders = [], [], []
            for _ in range(runs):
                start = time.perf_counter()
                backend = open_backend(settings)
                assert isinstance(backend, OmapiBackend)
                with peers.netns(topo.srv):
                    backend.open()
                held = lookup_many(backend, macs)
                backend.close()
                read_tree(tftp, http)
                floors.append(time.perf_counter() - start)
                assert sum(r is not None for r in held.values()) == count
                before = digest(config.state_path, tftp, http, leases)
                start = time.perf_counter()
                with StateDB(config.state_path) as db, peers.netns(topo.srv):
                    report = reconcile(config, db, bmc=False)
                totals.append(time.perf_counter() - start)
                after = digest(config.state_path, tftp, http, leases)
                assert report.findings == [], report.findings[:5]
                assert before == after, "a clean reconcile wrote something"
                # The same reconcile without the render records (bmprov.boot.digests): every
                # node rendered and compared, as before the records existed.
                start = time.perf_counter()
                with StateDB(config.state_path) as db, peers.netns(topo.srv):
                    db.file_digests = dict  # type: ignore[method-assign]
                    report = reconcile(config, db, bmc=False)
                renders.append(time.perf_counter() - start)
                assert report.findings == [], report.findings[:5]
                assert digest(config.state_path, tftp, http, leases) == before
            floor, total, render = min(floors), min(totals), min(renders)
            print(
                f"floor: {count:,} pipelined OMAPI lookups + one read of {files:,} boot files: "
                f"best {floor:.2f} s, median {statistics.median(floors):.2f} s"
            )
            print(
                f"reconcile of {count:,} {'deployed' if deployed else 'installing'} nodes"
                " (dhcp + boot, lease file read for orphans): "
                f"best {total:.2f} s, median {statistics.median(totals):.2f} s "
                f"= {total / floor:.2f}x the floor (targets ≤ 10 s, ≤ 2x); "
                "0 findings, 0 writes (hashes and mtimes unchanged)"
            )
            print(
                f"  same, rendering every node (no render records): best {render:.2f} s, "
                f"median {statistics.median(renders):.2f} s = {render / floor:.2f}x the floor"
            )
            print(f"load: {Path('/proc/loadavg').read_text().strip()}")
            return total <= 10 and total <= 2 * floor
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_export(rows: int) -> bool:
    work = Path(tempfile.mkdtemp(prefix="bmprov-bench-export-"))
    try:
        sheet = work / f"purchases-{rows}.xlsx"
        print(f"generating {sheet} ...", flush=True)
        generate(sheet, rows)
        env = {**os.environ, "BMPROV_CONFIG": str(work / "bmprov.toml")}
        subprocess.run([*BMPROV, "init", str(work)], check=True, env=env, capture_output=True)
        imp, imp_rss, _ = run([*BMPROV, "import", str(sheet), "--json"], env)
        exports = [
            run([*BMPROV, "export", str(work / "out.xlsx"), "--json"], env) for _ in range(3)
        ]
        exp, exp_rss, _ = min(exports)
        again, _, out = run([*BMPROV, "import", str(work / "out.xlsx"), "--json"], env)
        print(f"import of {rows:,} rows (.xlsx): {imp:.2f} s, peak {imp_rss} MB")
        print(
            f"export of {rows:,} nodes (.xlsx): best {exp:.2f} s of 3, peak {exp_rss} MB "
            f"= {exp / imp:.2f}x the import (target ≤ 2x)"
        )
        print(f"import of the export: {again:.2f} s; {out.split('counts', 1)[1][:60].strip()}")
        return exp <= 2 * imp
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-reconcile", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument(
        "--deployed", action="store_true", help="reconcile deployed nodes (local boot entries)"
    )
    args = parser.parse_args()
    ok = True
    if not args.skip_reconcile:
        if not peers.can_run_peers():
            sys.exit("the reconcile bench needs root, iproute2 and dhcpd")
        ok &= bench_reconcile(args.nodes, args.runs, args.deployed)
    if not args.skip_export:
        ok &= bench_export(args.rows)
    print("RESULT:", "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
