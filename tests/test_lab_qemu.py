"""``bmprov lab`` end to end: QEMU machines from a purchases sheet to *deployed* through serve.

One lab (2 machines: BIOS/SeaBIOS+iPXE → pxelinux, UEFI/OVMF PXE → GRUB; TCG) serves three
cases in order, through bmprov's own CLI against the config ``lab up`` wrote and the ``bmprov
serve`` it started inside the lab's namespace:

1. import → mounting → networking (real reservations over OMAPI) → *os_provisioning*, whose
   entry action sets a one-time PXE boot and powers each machine on through its virtual BMC
   (bmprov's IPMI driver, waves of one); each guest PXE-boots the installer stand-in, fetches
   its install file from serve (``GET /install/<serial>?token=``), posts stages 1-4, reboots,
   boots its disk and posts stage 5; serve moves it *installing → deployed* and completion
   sets the boot device to disk (through the virtual BMC) and every per-MAC entry to local
   boot. A further ``power cycle`` boots the local disk with no new callback.
2. ``bmprov reinstall`` of one deployed guest: a new install (new token), PXE again, stages
   1-5 again, *deployed* again.
3. ``bmprov reconcile`` on the finished lab is clean; a reservation deleted by hand (omshell)
   is reported (exit 1) and ``--fix`` puts it back.

``lab down`` then leaves no process and no namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bmprov.cli import app
from bmprov.lab import rack, site, state
from bmprov.lab.state import read_jsonl
from tests import peers
from tests.lab import processes_mentioning
from tests.sims.fixtures import PORT_BASE

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.skipif(
        not peers.can_run_peers() or rack.missing_packages() != [],
        reason=f"needs root and the lab's packages ({' '.join(rack.missing_packages())})",
    ),
]

LAB_PORT = PORT_BASE + 700
INSTALL_TIMEOUT = 240.0  # TCG: 35-75 s from power-on to deployed; far more at load average 9+
DISK_TIMEOUT = 150.0
ACCESS = re.compile(r"bmprov\.serve\.access: (\S+) (\S+) (\S+) (\d+) ")


class Lab:
    """The running lab and what the cases share."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.config = directory / "bmprov.toml"
        self.runner = CliRunner()
        self.machines: dict[str, dict[str, Any]] = {}
        self.ips: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.deployed = False
        self.timings: dict[str, float] = {}

    def cli(self, *args: object, config: bool = True) -> tuple[int, str]:
        argv = [*(("--config", str(self.config)) if config else ()), *map(str, args)]
        result = self.runner.invoke(app, argv, catch_exceptions=False)
        return result.exit_code, result.stdout + result.stderr

    def ok(self, *args: object, config: bool = True) -> str:
        code, out = self.cli(*args, config=config)
        assert code == 0, out
        return out

    def json(self, *args: object) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def stage(self, serial: str) -> str:
        return str(self.json("nodes", "show", serial)["stage"])

    def events(self, serial: str) -> list[dict[str, Any]]:
        return list(self.json("events", serial, "--limit", "1000"))

    def access(self) -> list[tuple[str, str, str, int]]:
        """serve's access log: (client, method, path, status) per request."""
        text = (self.dir / "logs/serve.log").read_text(errors="replace")
        return [(m[1], m[2], m[3], int(m[4])) for m in ACCESS.finditer(text)]

    def calls(self, name: str) -> list[dict[str, Any]]:
        return [e for e in read_jsonl(self.dir / "vbmc.jsonl") if e["machine"] == name]

    def console(self, name: str) -> str:
        return (self.dir / "machines" / name / "console.log").read_text(errors="replace")

    def wait_for(self, what: str, cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                consoles = "".join(
                    f"\n--- {p}\n{p.read_text(errors='replace')[-2500:]}"
                    for p in sorted(self.dir.glob("machines/*/console.log"))
                )
                serve = (self.dir / "logs/serve.log").read_text(errors="replace")[-4000:]
                calls = (self.dir / "vbmc.jsonl").read_text()
                raise AssertionError(f"timed out waiting for {what}\n{calls}\n{serve}{consoles}")
            time.sleep(0.5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = tmp_path_factory.mktemp("lab") / "lab"
    the = Lab(directory)
    t0 = time.monotonic()
    try:
        the.ok("lab", "up", "--nodes", 2, "--uefi", 1, "--dir", directory,
               "--port-base", LAB_PORT, config=False)  # fmt: skip
        the.timings["lab up"] = time.monotonic() - t0
        info = json.loads(the.ok("lab", "status", "--dir", directory, "--json", config=False))
        the.machines = {m["serial"]: m for m in info["machines"]}
        assert [m["firmware"] for m in info["machines"]] == ["bios", "uefi"]
        assert [p["name"] for p in info["processes"]][-1] == "serve"
        assert all(p["running"] for p in info["processes"])
        procs = state.load(directory).procs  # type: ignore[union-attr]
        yield the
    finally:
        code, out = the.cli("lab", "down", "--dir", directory, "--json", config=False)
    print(" ".join(f"{k} {v:.1f} s;" for k, v in the.timings.items()))
    assert code == 0, out
    report = json.loads(out)
    assert report["found"] and len(report["stopped"]) == 5  # serve, agent, tftpd, dhcpd, RAs
    assert report["stopped"][0].startswith("serve (")
    # A QEMU (ended by its death signal once the agent stops) or an in.tftpd transfer child may
    # still be exiting when the namespace is swept: the sweep kills it; it must then be gone.
    leftovers = report["killed_in_netns"]
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in leftovers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in leftovers), leftovers
    assert not any(state.alive(p) for p in procs)
    assert not any(n.startswith(f"bmpL-{os.getpid()}") for n in os.listdir("/run/netns"))
    assert processes_mentioning(str(directory)) == []


def install_token(lab: Lab, serial: str) -> str:
    """The token bmprov put on the node's boot entry (derived from its open install)."""
    from bmprov import tokens
    from bmprov.config import load_config
    from bmprov.store import open_state

    config = load_config(lab.config)
    secret = tokens.load_secret(config, create=False)
    with open_state(config.state_path) as db:
        install = next(i for i in db.current_installs().values() if i.serial == serial)
        return tokens.token_for(secret, install).reveal()


def bmc_calls(entries: list[dict[str, Any]]) -> list[tuple[str, str | None, bool | None]]:
    return [(c["call"], c.get("device"), c.get("persistent")) for c in entries if "call" in c]


def stage_moves(lab: Lab, serial: str) -> list[tuple[str, str]]:
    """The node's stage changes (sub-stage rows, installing → installing, left out)."""
    rows = [(h["from_stage"], h["to_stage"]) for h in lab.json("history", serial)]
    return [(a, b) for a, b in rows if a != b]


def stage_kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events if e["kind"].startswith("stage ")]


@pytest.mark.timeout(600)
def test_sheet_to_deployed_through_serve_then_local_disk(lab: Lab) -> None:
    text = lab.config.read_text()
    assert "auto_on_provisioning = true" in text and 'listen = "10.239.0.1:8080"' in text
    lab.ok("import", lab.dir / site.SHEET_NAME)
    lab.ok("advance", "--stage", "mounting", "--all")
    t1 = time.monotonic()
    lab.ok("advance", "--stage", "networking", "--all")  # → os_provisioning: PXE + power on
    nodes = {n["serial"]: n for n in lab.json("nodes", "list")}
    lab.ips = {serial: nodes[serial]["ip"] for serial in lab.machines}
    assert {n["stage"] for n in nodes.values()} <= {"os_provisioning", "installing"}
    lab.tokens = tokens = {serial: install_token(lab, serial) for serial in lab.machines}
    lab.wait_for("both machines deployed",
                 lambda: all(lab.stage(s) == "deployed" for s in lab.machines),
                 INSTALL_TIMEOUT)  # fmt: skip
    lab.timings["power-on to deployed"] = time.monotonic() - t1
    access = lab.access()
    leases = (lab.dir / "logs/dhcpd.log").read_text()
    power_on: list[float] = []
    for serial, m in lab.machines.items():
        ip, name = lab.ips[serial], m["name"]
        assert f"DHCPACK on {ip} to {m['mac']}" in leases  # the reservation networking made
        # serve saw the guest's own address: the reserved-IP rule held for every request
        mine = [(method, path, code) for client, method, path, code in access if client == ip]
        assert mine == [
            ("POST", f"/callback/{serial}", 200),
            ("GET", f"/install/{serial}", 200),  # query string (the token) never logged
            *[("POST", f"/callback/{serial}", 200)] * 4,
        ], mine
        events = lab.events(serial)
        assert stage_kinds(events) == [f"stage {n}" for n in range(1, 6)]
        assert {e["source"] for e in events if e["kind"].startswith("stage ")} == {ip}
        kinds = [e["kind"] for e in events]
        for step in ("complete.boot_device", "complete.local_boot", "complete.install"):
            assert step in kinds, kinds
        moves = stage_moves(lab, serial)
        assert moves[-3:] == [
            ("networking", "os_provisioning"),
            ("os_provisioning", "installing"),
            ("installing", "deployed"),
        ]
        console = lab.console(name)
        assert f"INSTALLER serial={serial}" in console
        assert re.search(r"INSTALL-FILE [1-9]\d* bytes", console)
        assert "LOCALDISK-BOOTED BMPROV-INSTALLED" in console and "firstboot=pending" in console
        assert "STAGE-5-OK" in console and tokens[serial] not in console
        mac = m["mac"].replace(":", "-")
        assert "LOCALBOOT" in (lab.dir / f"tftp/pxelinux.cfg/01-{mac}").read_text()
        assert not (lab.dir / f"http/ks/{serial}.cfg").exists()  # completion removed it
        calls = lab.calls(name)
        assert [
            (c["call"], c.get("device"), c.get("persistent")) for c in calls if "call" in c
        ] == [
            ("set_boot_device", "network", False),  # os_provisioning: one-time PXE
            ("power_on", None, None),
            ("set_boot_device", "hd", True),  # serve's completion: disk, every boot
        ]
        assert [e["bootdev"] for e in calls if e.get("event") == "start"] == ["network", "default"]
        power_on.append(next(c["t"] for c in calls if c.get("call") == "power_on"))
    assert "Booting `install labinst'" in lab.console(lab.machines["LABVM0002"]["name"])  # GRUB
    assert power_on[1] - power_on[0] >= site.WAVE_INTERVAL  # two waves of one machine
    lab.deployed = True

    # a further power cycle boots the local disk: no install, no callback. Not before each guest
    # has marked its first boot done (after serve's answer to stage 5): cut off earlier, it would
    # rightly post stage 5 again on the next boot.
    for m in lab.machines.values():
        lab.wait_for(f"{m['name']} online", lambda n=m["name"]: "SERVER-ONLINE" in lab.console(n),
                     DISK_TIMEOUT)  # fmt: skip
    t2 = time.monotonic()
    callbacks_before = len(lab.access())
    lab.ok("power", "cycle", "--all")
    for m in lab.machines.values():
        lab.wait_for(f"{m['name']} local disk again",
                     lambda n=m["name"]: lab.console(n).count("SERVER-ONLINE") >= 2,
                     DISK_TIMEOUT)  # fmt: skip
        assert "firstboot=done" in lab.console(m["name"])
        assert lab.console(m["name"]).count("INSTALLER serial=") == 1
        calls = lab.calls(m["name"])
        assert [c["call"] for c in calls if "call" in c][-1] == "power_cycle"
        assert [e["bootdev"] for e in calls if e.get("event") == "start"][-1] == "hd"
    lab.timings["disk power cycle"] = time.monotonic() - t2
    assert len(lab.access()) == callbacks_before
    assert all(lab.stage(s) == "deployed" for s in lab.machines)


@pytest.mark.timeout(400)
def test_reinstall_of_a_deployed_guest_goes_around_again(lab: Lab) -> None:
    if not lab.deployed:
        pytest.skip("the first case did not deploy the lab")
    serial = "LABVM0001"
    name, ip = lab.machines[serial]["name"], lab.ips[serial]
    calls_before = len(lab.calls(name))
    t = time.monotonic()
    lab.ok("reinstall", serial, "--os", site.OS_NAME)
    token = install_token(lab, serial)
    assert token != lab.tokens[serial]  # a new install, a new token
    lab.wait_for("the reinstalled machine deployed again",
                 lambda: lab.console(name).count("STAGE-5-OK") >= 2
                 and lab.stage(serial) == "deployed", INSTALL_TIMEOUT)  # fmt: skip
    lab.timings["reinstall"] = time.monotonic() - t
    calls = lab.calls(name)[calls_before:]
    assert bmc_calls(calls) == [
        ("set_boot_device", "network", False),
        ("power_cycle", None, None),
        ("set_boot_device", "hd", True),
    ]
    assert [e["bootdev"] for e in calls if e.get("event") == "start"] == ["network", "default"]
    assert lab.console(name).count(f"INSTALLER serial={serial}") == 2
    assert token not in lab.console(name)
    events = lab.events(serial)
    assert stage_kinds(events) == [f"stage {n}" for n in range(1, 6)] * 2
    assert "reinstall" in [e["kind"] for e in events]
    moves = stage_moves(lab, serial)
    assert moves[-4:] == [
        ("deployed", "networking"),
        ("networking", "os_provisioning"),
        ("os_provisioning", "installing"),
        ("installing", "deployed"),
    ]
    installs = [(c, p, s) for c, _, p, s in lab.access() if c == ip and p.startswith("/install/")]
    assert installs == [(ip, f"/install/{serial}", 200)] * 2


@pytest.mark.timeout(120)
def test_reconcile_is_clean_then_repairs_a_reservation_deleted_by_hand(lab: Lab) -> None:
    if not lab.deployed:
        pytest.skip("the first case did not deploy the lab")
    report = lab.json("reconcile")
    assert report["exit_code"] == 0 and report["findings"] == [], report
    serial = "LABVM0002"
    secret = (lab.dir / "omapi.key").read_text().strip()
    script = (
        f"server 127.0.0.1\nport {LAB_PORT}\nkey omapi_key {secret}\nconnect\nnew host\n"
        f"set hardware-address = {lab.machines[serial]['mac']}\nset hardware-type = 1\n"
        "open\nremove\n"
    )
    out = subprocess.run(
        ["omshell"], check=False, input=script, capture_output=True, text=True, timeout=30
    )
    assert "obj: <null>" in out.stdout, out.stdout + out.stderr  # omshell's word for removed
    code, text = lab.cli("reconcile", "--json")
    assert code == 1, text
    findings = json.loads(text)["findings"]
    assert [(f["node"], f["plane"], f["kind"]) for f in findings] == [(serial, "dhcp", "missing")]
    fixed = json.loads(lab.ok("reconcile", "--fix", "--json"))
    assert [f["fixed"] for f in fixed["findings"]] == [True]
    assert lab.json("reconcile")["findings"] == []
