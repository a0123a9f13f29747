"""Power-cycle + set PXE on 200 simulated BMCs (4 labbmc processes), through the real CLI.

Target (issue 4): <= 2 s wall at the default concurrency, and a dead BMC among them costing
no more than its timeout. Each round runs ``bmprov power cycle --bootdev pxe --all --json`` in
a fresh process (cold IPMI logins, as an operator would), with the starter config's defaults
(concurrency 32, connect_timeout 2 s), then checks every simulated BMC over HTTP. The dead
BMCs sort into the middle of the batch, as they would in a real rack.

    .venv/bin/python bench/power_bench.py [--rounds 3] [--count 200] [--procs 4]

Loopback only: BMCs on 127.0.0.1:19400-19599, state HTTP 19984-19987; dead BMCs: nothing on
UDP 19600, a black hole (bound, never answers) on UDP 19601.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bmprov.setup_site import init_site  # noqa: E402
from bmprov.store import StateDB  # noqa: E402
from tests.sims.fixtures import LabBmcFarm, add_nodes  # noqa: E402

BLACK_HOLE, DEAD = 19601, 19600


def run_cli(config: Path) -> tuple[float, float, dict]:
    """One CLI run: (wall seconds, CPU seconds of the bmprov process, its JSON)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, BMPROV_CONFIG=str(config), BMPROV_BMC_PASSWORD="password")  # noqa: S106
    start = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "bmprov", "power", "cycle", "--bootdev", "pxe", "--all"),
            *("--max-nodes", "100000", "--json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)


def check(farm: LabBmcFarm) -> int:
    state = farm.state()
    return sum(
        1
        for port in farm.ports
        if (state[port]["power"], state[port]["bootdev"], state[port]["counters"]["cycle"])
        != ("on", "network", 1)
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--procs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bmprov-power-bench-") as tmp:
        site = init_site(Path(tmp) / "site")
        # BMC throughput, not boot pacing: one wave (the simulators boot nothing over TFTP)
        text = site.config_path.read_text().replace("wave_size = 30", "wave_size = 0")
        site.config_path.write_text(text)
        farm = LabBmcFarm(19400, args.count, 19984, args.procs, Path(tmp))
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hole.bind(("127.0.0.1", BLACK_HOLE))
        try:
            farm.start()
            rows = [
                {"serial": f"b{p}", "bmc_address": f"127.0.0.1:{p}", "bmc_type": "ipmi"}
                for p in farm.ports
            ]
            with StateDB(Path(tmp) / "site" / "bmprov.sqlite") as db:
                add_nodes(db, rows)
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "bmprov", "--help"], capture_output=True, check=True
            )
            print(f"CLI start-up alone (bmprov --help): {time.monotonic() - start:.2f} s")
            load = os.getloadavg()[0]
            print(f"load average before: {load:.2f} on {os.cpu_count()} CPUs (others' work counts)")
            report("200 BMCs", farm, site.config_path, args.rounds, expect_failed=0)
            with StateDB(Path(tmp) / "site" / "bmprov.sqlite") as db:
                add_nodes(
                    db,
                    [
                        {
                            "serial": "b19500-blackhole",
                            "bmc_address": f"127.0.0.1:{BLACK_HOLE}",
                            "bmc_type": "ipmi",
                        },
                        {
                            "serial": "b19450-deadport",
                            "bmc_address": f"127.0.0.1:{DEAD}",
                            "bmc_type": "ipmi",
                        },
                    ],
                )
            report(
                "200 BMCs + black hole + dead port",
                farm,
                site.config_path,
                args.rounds,
                expect_failed=2,
            )
        finally:
            farm.stop()
            hole.close()
    return 0


def report(label: str, farm: LabBmcFarm, config: Path, rounds: int, expect_failed: int) -> None:
    walls, batch_walls, cpus = [], [], []
    for _ in range(rounds):
        farm.reset("on")
        wall, cpu, data = run_cli(config)
        cpus.append(cpu)
        failed = [r for r in data["results"] if r["status"] == "failed"]
        bad = check(farm)
        walls.append(wall)
        batch_walls.append(max(r["details"].get("seconds", 0) for r in data["results"]))
        assert len(failed) == expect_failed and bad == 0, (failed[:3], bad)
        for r in failed:
            print(f"  {r['serial']}: {r['message']}")
    print(
        f"{label}: CLI process wall median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); slowest node "
        f"{max(batch_walls):.2f} s; bmprov CPU median {statistics.median(cpus):.2f} s; "
        f"all {len(farm.ports)} BMCs verified PXE + cycled once",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
