"""Fault injection for networking batches: real ``bmprov`` processes run at once or killed.

Shared by tests/test_faults.py (file backend) and tests/test_faults_peers.py (dnsmasq, Kea).
Every process of a run carries a marker in its environment (forked file workers inherit it),
so a process that outlives its killed batch is found however it was re-parented.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bmprov.config import Config
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, list_nodes
from bmprov.stages import ActionContext
from bmprov.store import StateDB
from tests.conftest import write_csv

MARKER = "BMPROV_FAULT_RUN"
POOL = '[[pools]]\nname = "faults"\nsubnet = "{subnet}"\n'
"""A pool big enough for every round's nodes (format with the subnet)."""
CONCURRENT = 180
"""Nodes per concurrent round (30 per rack)."""
WORKERS_AT = 220
"""Nodes per batch: over filejobs.PROCESS_MIN_NODES (200), so the batch forks file workers."""


def mac(round_: int, i: int) -> str:
    return f"02:32:00:{round_:02x}:{i >> 8:02x}:{i & 0xFF:02x}"


RACKS = 6


def load_round(config: Config, round_: int, count: int) -> list[str]:
    """``count`` new nodes in *mounting*, spread over racks R01…R06; their serials."""
    rows = [["serial", "mac", "hostname", "rack", "notes"]]
    serials = [f"R{round_}N{i}" for i in range(count)]
    for i, serial in enumerate(serials):
        rack = f"R{i % RACKS + 1:02d}"
        rows.append([serial, mac(round_, i), f"r{round_}n{i}", rack, "provisioning_auto"])
    sheet = write_csv(config.path.parent / f"round{round_}.csv", rows)
    with StateDB(config.state_path) as db:
        import_sheet(db, config, sheet)
        advance(ActionContext(config, db, "t"), Selection(serials=tuple(serials)), "mounting")
    return serials


def start(config: Config, *args: str, marker: str = "") -> subprocess.Popen[str]:
    """``python -m bmprov --config … ARGS`` as a real process (output kept for the assert)."""
    env = {**os.environ, MARKER: marker or uuid.uuid4().hex}
    cmd = [sys.executable, "-m", "bmprov", "--config", str(config.path), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a process started by :func:`start`."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def concurrent_round(config: Config, round_: int, count: int) -> list[str]:
    """Networking batches at once on overlapping selections (the issue's operator mix).

    One per rack (disjoint: a batch that rewrote the table from a stale read dropped another
    rack's reservations, which no later batch re-adds), ``--from mounting`` over them all and
    ``--serial`` for a quarter. Eight processes: with the store unlocked, 180 nodes lost
    reservations in 7 rounds of 8 (four processes over three racks: 2 rounds in 10).
    """
    serials = load_round(config, round_, count)
    picks = [a for s in serials[: count // 4] for a in ("--serial", s)]
    racks = [["--rack", f"R{r + 1:02d}"] for r in range(RACKS)]
    selections = [*racks, ["--from", "mounting"], picks]
    procs = [start(config, "advance", "--stage", "networking", *s) for s in selections]
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0, out + err  # every node ends ok in each process, as in the issue
    return serials


def marked(marker: str) -> list[int]:
    """PIDs of live processes whose environment carries ``marker`` (zombies excluded)."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        text = " ".join(Path(f"/proc/{pid}/task/{t}/children").read_text() for t in tasks)
    except OSError:
        return []
    return [int(c) for c in text.split()]


def kill_round(config: Config, rng: random.Random, round_: int) -> dict[str, int]:
    """One batch SIGKILLed at a random point, then checked for survivors; the re-run's counts.

    Even rounds kill at a uniform moment of the whole run; odd rounds once the file workers
    exist (where the issue saw them survive), after a random extra delay.
    """
    marker = uuid.uuid4().hex
    proc = start(config, "advance", "--stage", "networking", "--all", marker=marker)
    if round_ % 2:
        deadline = time.monotonic() + 20
        while not children(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.1))
    else:
        time.sleep(rng.uniform(0.2, 1.6))
    had_workers = len(children(proc.pid))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # not communicate(): a surviving worker keeps the pipes open
    deadline = time.monotonic() + 5
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    survivors = marked(marker)
    for pid in survivors:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert survivors == [], f"{len(survivors)} process(es) of the killed batch survived it"
    code, out, err = finish(start(config, "advance", "--stage", "networking", "--all"))
    assert code == 0, out + err
    return {"workers_at_kill": had_workers}


def temp_files(*roots: Path) -> list[Path]:
    """Every ``.*.tmp`` below ``roots``."""
    return sorted(p for root in roots for p in root.rglob(".*.tmp"))


def networked(config: Config) -> dict[str, str]:
    """MAC → IP of every node the state file has past networking (all must hold one)."""
    with StateDB(config.state_path) as db:
        nodes = list_nodes(db)
    out = {}
    for node in nodes:
        assert node.stage == "os_provisioning", (node.serial, node.stage, node.stage_reason)
        assert node.ip and node.mac, node.serial
        out[node.mac] = node.ip
    return out


def check_consistent(
    config: Config, held: Callable[[], list[tuple[str, str]]], files: bool = True
) -> None:
    """State, DHCP store and files agree: one reservation per node, every file in place
    (``files``: checked by a ``pxe render --prune`` that must find nothing to write or prune;
    a process, so rounds may leave it to the last)."""
    want = networked(config)
    got = held()
    assert len(got) == len(set(got)), "a reservation is held twice"
    assert sorted(got) == sorted(want.items())
    assert len(set(want.values())) == len(want), "an address is given twice"
    if not files:
        return
    code, out, err = finish(start(config, "pxe", "render", "--prune", "--json"))
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["files_written"], report["stale"]) == (0, []), report  # files match state
