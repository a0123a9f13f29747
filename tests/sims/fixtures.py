"""Simulated BMCs for the power tests: start them, read their state out-of-band, stop them.

Everything binds 127.0.0.1 in a block of 1,000 ports chosen per test run (PORT_BASE: 19000,
20000, ... 31000, below the ephemeral range; free at start-up), so two test runs on one
machine never collide; `BMPROV_TEST_PORT_BASE` pins it. Each simulator is a child process
killed by its PID at teardown, even when the test fails.

Offsets from PORT_BASE: ipmi_sim +1; Wake-on-LAN +9; labbmc +100..+109 (HTTP +990); stress
farm +200..+399 (HTTP +980..+983); Redfish +800; nothing listening +555; UDP black hole +556;
TCP black hole +558. (The benchmark uses its own farm on 19400-19599.)
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from bmprov.drivers.ipmi import probe
from bmprov.store import StateDB, utcnow
from tests.peers import stop_process

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
USER, PASSWORD = "admin", "password"


def _block_is_free(base: int) -> bool:
    """True when the block's fixed ports can be bound now (UDP and TCP)."""
    for offset, kind in (
        (1, socket.SOCK_DGRAM),
        (9, socket.SOCK_DGRAM),
        (100, socket.SOCK_DGRAM),
        (200, socket.SOCK_DGRAM),
        (800, socket.SOCK_STREAM),
        (990, socket.SOCK_STREAM),
    ):
        with socket.socket(socket.AF_INET, kind) as probe_socket:
            try:
                probe_socket.bind(("127.0.0.1", base + offset))
            except OSError:
                return False
    return True


def _port_base() -> int:
    pinned = os.environ.get("BMPROV_TEST_PORT_BASE")
    if pinned:
        return int(pinned)
    blocks = [19000 + 1000 * k for k in range(13)]
    start = os.getpid() % len(blocks)
    for base in blocks[start:] + blocks[:start]:
        if _block_is_free(base):
            return base
    return blocks[start]


PORT_BASE = _port_base()
IPMI_SIM_PORT = PORT_BASE + 1
LABBMC_PORT, LABBMC_HTTP = PORT_BASE + 100, PORT_BASE + 990
STRESS_PORT, STRESS_HTTP = PORT_BASE + 200, PORT_BASE + 980
WOL_PORT = PORT_BASE + 9
DEAD_PORT, UDP_BLACKHOLE_PORT, TCP_BLACKHOLE_PORT = (
    PORT_BASE + 555,
    PORT_BASE + 556,
    PORT_BASE + 558,
)
REDFISH_PORT = PORT_BASE + 800


DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"]
"""Command prefix: the simulator gets SIGTERM if pytest itself dies (even by SIGKILL)."""


stop = stop_process
"""Terminate a child we started, by PID; kill it if it lingers (shared with the DHCP peers)."""


def wait_until(
    check: Callable[[], bool], what: str, proc: subprocess.Popen[Any], log: Path
) -> None:
    """Poll ``check`` for up to 15 s; fail with the child's log if it died or never got ready."""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if check():
                return
        except Exception:  # noqa: S110  (not up yet: refused, no answer...)
            pass
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"{what} did not come up: {log.read_text(errors='replace')[-2000:]}")


def http_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method)  # noqa: S310  (loopback only)
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        body = reply.read()
    return json.loads(body) if body else None


# ------------------------------------------------------------------------- labbmc farm
@dataclass
class LabBmcFarm:
    """``count`` pyghmi-based BMCs in ``procs`` processes; state over HTTP."""

    base_port: int
    count: int
    http_base: int
    procs: int
    log_dir: Path
    children: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return list(range(self.base_port, self.base_port + self.count))

    def start(self) -> LabBmcFarm:
        per = -(-self.count // self.procs)
        for index in range(self.procs):
            first = self.base_port + index * per
            count = min(per, self.base_port + self.count - first)
            log = self.log_dir / f"labbmc-{first}.log"
            proc = subprocess.Popen(
                [
                    *DIE_WITH_PARENT,
                    sys.executable,
                    "-m",
                    "tests.sims.labbmc",
                    "--base-port",
                    str(first),
                    "--count",
                    str(count),
                    "--http-port",
                    str(self.http_base + index),
                ],
                cwd=REPO,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            self.children.append(proc)
        for index, proc in enumerate(self.children):
            url = f"http://127.0.0.1:{self.http_base + index}/state"
            log = self.log_dir / f"labbmc-{self.base_port + index * per}.log"
            wait_until(lambda url=url: bool(http_json(url)), "labbmc", proc, log)
        return self

    def state(self) -> dict[int, dict[str, Any]]:
        merged: dict[int, dict[str, Any]] = {}
        for index in range(len(self.children)):
            data = http_json(f"http://127.0.0.1:{self.http_base + index}/state")
            merged.update({int(port): value for port, value in data.items()})
        return merged

    def reset(self, power: str = "off") -> None:
        for index in range(len(self.children)):
            http_json(f"http://127.0.0.1:{self.http_base + index}/reset?power={power}", "POST")

    def stop(self) -> None:
        for proc in self.children:
            stop(proc)


@pytest.fixture(scope="module")
def labbmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabBmcFarm]:
    """Four pyghmi-based BMCs on 127.0.0.1:LABBMC_PORT+0..3 (state: HTTP LABBMC_HTTP)."""
    farm = LabBmcFarm(LABBMC_PORT, 4, LABBMC_HTTP, 1, tmp_path_factory.mktemp("labbmc"))
    try:
        yield farm.start()
    finally:
        farm.stop()


# ------------------------------------------------------------------------- ipmi_sim
@dataclass
class IpmiSim:
    """One OpenIPMI ipmi_sim BMC; its chassis state is in plain files."""

    port: int
    state_dir: Path
    proc: subprocess.Popen[Any] | None = None

    def start(self) -> IpmiSim:
        self.reset()
        conf = (HERE / "ipmi_sim" / "lan.conf.tmpl").read_text()
        conf = conf.replace("@PORT@", str(self.port)).replace("@STATE@", str(self.state_dir))
        conf = conf.replace("@DIR@", str(HERE / "ipmi_sim"))
        (self.state_dir / "lan.conf").write_text(conf)
        log = self.state_dir / "ipmi_sim.log"
        self.proc = subprocess.Popen(
            [
                *DIE_WITH_PARENT,
                "ipmi_sim",
                "-c",
                "lan.conf",
                "-f",
                str(HERE / "ipmi_sim" / "sim.emu"),
                "-s",
                str(self.state_dir),
                "-n",
            ],
            cwd=self.state_dir,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: probe("127.0.0.1", self.port, 0.2) > 0, "ipmi_sim", self.proc, log)
        return self

    def reset(self) -> None:
        (self.state_dir / "power").write_text("0\n")
        (self.state_dir / "boot").write_text("default\n")
        (self.state_dir / "events.log").write_text("")

    def state(self) -> dict[str, Any]:
        read = lambda name: (self.state_dir / name).read_text().strip()  # noqa: E731
        events = read("events.log").splitlines()
        return {
            "power": {"1": "on", "0": "off"}.get(read("power"), read("power")),
            "boot": read("boot"),
            "events": events,
        }

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture(scope="module")
def ipmi_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpmiSim]:
    """OpenIPMI's ipmi_sim on 127.0.0.1:IPMI_SIM_PORT (admin/password)."""
    if not shutil.which("ipmi_sim"):
        pytest.skip("ipmi_sim (apt openipmi) is not installed")
    sim = IpmiSim(IPMI_SIM_PORT, tmp_path_factory.mktemp("ipmisim"))
    try:
        yield sim.start()
    finally:
        sim.stop()


# ------------------------------------------------------------------------- Redfish
@dataclass
class RedfishEmulator:
    """sushy-tools' emulator with ``systems`` fake systems; state read from its sqlite file."""

    port: int
    state_dir: Path
    systems: int = 2
    proc: subprocess.Popen[Any] | None = None

    def start(self) -> RedfishEmulator:
        auth = self.state_dir / "htpasswd"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        auth.write_text(f"{USER}:{hashed}\n")
        env = dict(
            os.environ,
            BMPROV_SIM_PORT=str(self.port),
            BMPROV_SIM_STATE=str(self.state_dir / "state"),
            BMPROV_SIM_SYSTEMS=str(self.systems),
            BMPROV_SIM_AUTH=str(auth),
            BMPROV_SIM_POWER_DELAY="0",
            PYTHONWARNINGS="ignore",
        )
        log = self.state_dir / "emulator.log"
        self.proc = subprocess.Popen(
            [
                *DIE_WITH_PARENT,
                sys.executable,
                str(HERE / "redfish_emulator.py"),
                "--config",
                str(HERE / "emulator.conf"),
            ],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._up, "sushy-emulator", self.proc, log)
        return self

    def _up(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True

    def system(self, index: int = 0) -> dict[str, Any]:
        """The fake system's stored state (power and boot), as the emulator keeps it."""
        uuid = f"00000000-0000-4000-8000-{index:012d}"
        path = self.state_dir / "state" / "fakedriver.sqlite"
        with sqlite3.connect(path) as conn:
            row = conn.execute("SELECT value FROM cache WHERE key = ?", (pickle.dumps(uuid),))
            data: dict[str, Any] = pickle.loads(row.fetchone()[0])  # noqa: S301  (our own sim)
        pending = data.get("pending_power")
        if pending:  # the emulator applies pending changes lazily, on the next read
            data["power_state"] = (
                "On" if "Restart" in pending["power_state"] else pending["power_state"]
            )
        return data

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture(scope="module")
def redfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedfishEmulator]:
    """sushy-emulator on 127.0.0.1:REDFISH_PORT with two fake systems (admin/password)."""
    emulator = RedfishEmulator(REDFISH_PORT, tmp_path_factory.mktemp("redfish"))
    try:
        yield emulator.start()
    finally:
        emulator.stop()


# ------------------------------------------------------------------------- nodes
def add_nodes(db: StateDB, rows: list[dict[str, Any]], stage: str = "mounting") -> None:
    """Insert nodes straight into the state file (one transaction), with optional MAC."""
    now = utcnow()
    with db.atomic() as conn:
        for row in rows:
            cur = conn.execute(
                "INSERT INTO nodes(serial, site, rack, bmc_address, bmc_type, automated, stage,"
                " created_at, updated_at, stage_changed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    row["serial"],
                    row.get("site"),
                    row.get("rack"),
                    row.get("bmc_address"),
                    row.get("bmc_type"),
                    1,
                    row.get("stage", stage),
                    now,
                    now,
                    now,
                ),
            )
            if row.get("mac"):
                conn.execute(
                    "INSERT INTO macs(mac, node_id, position) VALUES (?, ?, 0)",
                    (row["mac"], cur.lastrowid),
                )


BMC_TEST_CONFIG = f"""
[bmc]
username = "admin"
password_env = "BMPROV_TEST_BMC_PASSWORD"
timeout = 5.0
connect_timeout = 1.0
power_wait = 5.0

[bmc.redfish]
scheme = "http"

[bmc.wol]
host = "127.0.0.1"
port = {WOL_PORT}
"""


def configure_bmc(site: Any, monkeypatch: pytest.MonkeyPatch, power: str = "") -> None:
    """Replace the site's [bmc]/[power] tables: simulator credentials (password from the
    environment), short timeouts, Redfish over http, WoL to loopback; ``power`` = [power] body.
    """
    kept, skipping = [], False
    for line in site.config_path.read_text().splitlines():
        if line.startswith("["):
            name = line.strip("[] ").split(".")[0]
            skipping = name in ("bmc", "power")
        if not skipping:
            kept.append(line)
    text = "\n".join(kept) + "\n" + BMC_TEST_CONFIG + "\n[power]\n" + power + "\n"
    site.config_path.write_text(text)
    monkeypatch.setenv("BMPROV_TEST_BMC_PASSWORD", PASSWORD)


def configure_fake_bmc(site: Any, monkeypatch: pytest.MonkeyPatch, power: str = "") -> None:
    """:func:`configure_bmc` with every BMC on the fake driver (``bmprov.drivers.fake.LAB``)."""
    configure_bmc(site, monkeypatch, power)
    text = site.config_path.read_text().replace("[bmc]\n", '[bmc]\ndriver = "fake"\n', 1)
    site.config_path.write_text(text)
