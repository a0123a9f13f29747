"""``bmprov lab``: a virtual rack of real QEMU machines that bmprov drives through their BMCs.

One test walks what the lab is for, through bmprov's own CLI against the config ``lab up``
wrote (2 machines: BIOS/pxelinux and UEFI/OVMF-PXE/GRUB; TCG):

1. ``lab up --nodes 2 --uefi 1``; import its purchases sheet → mounting → networking, which
   adds real reservations to the lab's dhcpd over OMAPI (through the agent's forwarder);
2. ``bmprov power cycle --bootdev pxe --all``: bmprov's IPMI driver sets a one-time PXE boot
   and powers the machines on through their virtual BMCs; each guest PXE-boots the installer
   stand-in from bmprov's files on the address bmprov allocated, fetches its install file
   (``GET /install/<serial>``), posts stages 1-4 with its bearer token, writes its disk marker,
   reboots; the one-time boot is spent, so it boots its local disk and posts stage 5;
3. ``bmprov boot disk --persistent`` + ``power cycle``: the local disk boots, no install and no
   callback;
4. ``lab down`` leaves no process and no namespace.

Until ``bmprov serve`` exists, the lab's own HTTP stand-in (bmprov/lab/web.py) records the
callbacks; the token is the one networking issued for the node's install, on its boot entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest

from bmprov.lab import rack, state
from bmprov.lab.web import read_jsonl
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
INSTALL_TIMEOUT = 240.0  # TCG: 25-40 s from power-on to stage 5; 130 s at load average 9+
DISK_TIMEOUT = 150.0


def install_tokens(config: Path) -> dict[str, str]:
    """serial → the token bmprov put on the node's boot entry (derived from its open install)."""
    from bmprov import tokens
    from bmprov.config import load_config
    from bmprov.store import open_state

    site = load_config(config)
    secret = tokens.load_secret(site, create=False)
    with open_state(site.state_path) as db:
        return {
            i.serial: tokens.token_for(secret, i).reveal() for i in db.current_installs().values()
        }


def wait_for(what: str, cond, timeout: float, lab: Path) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            consoles = "".join(
                f"\n--- {p}\n{p.read_text(errors='replace')[-2500:]}"
                for p in sorted(lab.glob("machines/*/console.log"))
            )
            calls = (lab / "vbmc.jsonl").read_text() if (lab / "vbmc.jsonl").exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{calls}{consoles}")
        time.sleep(0.5)


def stages(lab: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cb in read_jsonl(lab / "callbacks.jsonl"):
        out.setdefault(cb["serial"], []).append(cb["stage"])
    return out


def ok(run) -> str:
    assert run.exit_code == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.timeout(600)
def test_lab_pxe_install_via_virtual_bmcs_then_local_disk(cli, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    t0 = time.monotonic()
    try:
        ok(cli("lab", "up", "--nodes", "2", "--uefi", "1", "--dir", lab,
               "--port-base", LAB_PORT))  # fmt: skip
        up_s = time.monotonic() - t0
        info = json.loads(ok(cli("lab", "status", "--dir", lab, "--json")))
        machines = {m["serial"]: m for m in info["machines"]}
        assert [m["firmware"] for m in info["machines"]] == ["bios", "uefi"]
        assert all(p["running"] for p in info["processes"])
        config = lab / "bmprov.toml"
        text = config.read_text()
        args = '"console=ttyS0,115200", "panic=-1", "quiet"'
        assert args in text
        c = ("--config", config)
        ok(cli(*c, "import", lab / "purchases.csv"))
        ok(cli(*c, "advance", "--stage", "mounting", "--all"))
        ok(cli(*c, "advance", "--stage", "networking", "--all"))
        nodes = {n["serial"]: n for n in json.loads(ok(cli(*c, "nodes", "list", "--json")))}
        ips = {serial: nodes[serial]["ip"] for serial in machines}
        assert all(n["stage"] == "os_provisioning" for n in nodes.values())
        assert (lab / "tftp/labinst/vmlinuz").exists()  # media add of the stand-in ISO
        token = install_tokens(config)  # networking issued one per node, on its boot entry

        t1 = time.monotonic()
        ok(cli(*c, "power", "cycle", "--bootdev", "pxe", "--all"))
        wait_for("stage 5 from both machines",
                 lambda: all("5" in stages(lab).get(s, []) for s in machines),
                 INSTALL_TIMEOUT, lab)  # fmt: skip
        install_s = time.monotonic() - t1
        for serial, m in machines.items():
            digest = hashlib.sha256(token[serial].encode()).hexdigest()[:16]
            cbs = [cb for cb in read_jsonl(lab / "callbacks.jsonl") if cb["serial"] == serial]
            assert [cb["stage"] for cb in cbs] == ["1", "2", "3", "4", "5"], cbs
            assert {cb["client"] for cb in cbs} == {ips[serial]}  # the reserved address
            assert all(cb["bearer"] and cb["token_sha256"] == digest for cb in cbs)
            requests = [r["line"] for r in read_jsonl(lab / "requests.jsonl")
                        if r["client"] == ips[serial]]  # fmt: skip
            assert any(f'GET /install/{serial} HTTP/1.1" 200' in r for r in requests), requests
            console = Path(m["console"]).read_text(errors="replace")
            assert f"INSTALLER serial={serial}" in console
            assert re.search(r"INSTALL-FILE [1-9]\d* bytes", console)
            assert "LOCALDISK-BOOTED BMPROV-INSTALLED" in console and "firstboot=pending" in console
            assert token[serial] not in console  # neither the kernel (quiet) nor the stand-in
            leases = (lab / "logs/dhcpd.log").read_text()
            assert f"DHCPACK on {ips[serial]} to {m['mac']}" in leases
        calls = read_jsonl(lab / "vbmc.jsonl")
        for m in machines.values():
            mine = [e for e in calls if e["machine"] == m["name"]]
            assert [e["call"] for e in mine if "call" in e] == ["set_boot_device", "power_on"]
            assert mine[0]["device"] == "network" and mine[0]["persistent"] is False
            starts_ = [e["bootdev"] for e in mine if e.get("event") == "start"]
            assert starts_ == ["network", "default"]  # one-time PXE, then the disk
            assert any(e.get("reason") == "guest-reset" for e in mine)

        t2 = time.monotonic()
        serials = [a for s in machines for a in ("--serial", s)]
        ok(cli(*c, "boot", "disk", *serials, "--persistent"))
        ok(cli(*c, "power", "cycle", "--all"))
        before = len(read_jsonl(lab / "callbacks.jsonl"))
        for m in machines.values():
            console = Path(m["console"])
            wait_for(f"{m['name']} local disk again",
                     lambda p=console: p.read_text(errors="replace").count("SERVER-ONLINE") >= 2,
                     DISK_TIMEOUT, lab)  # fmt: skip
            assert "firstboot=done" in console.read_text(errors="replace")
        disk_s = time.monotonic() - t2
        assert len(read_jsonl(lab / "callbacks.jsonl")) == before  # no reinstall, no stage 5
        calls = read_jsonl(lab / "vbmc.jsonl")
        for m in machines.values():
            mine = [e for e in calls if e["machine"] == m["name"]]
            assert [e["call"] for e in mine if "call" in e][2:] == [
                "set_boot_device",
                "power_cycle",
            ]
            assert [e["bootdev"] for e in mine if e.get("event") == "start"][-1] == "hd"
        status = json.loads(ok(cli("lab", "status", "--dir", lab, "--json")))
        assert {m["power"] for m in status["machines"]} == {"on"}
        procs = state.load(lab).procs  # type: ignore[union-attr]
    finally:
        down = cli("lab", "down", "--dir", lab, "--json")
    assert down.exit_code == 0, down.stdout + down.stderr
    report = json.loads(down.stdout)
    assert report["found"] and len(report["stopped"]) == 4
    # A QEMU (ended by its death signal once the agent stops) or an in.tftpd transfer child may
    # still be exiting when the namespace is swept: the sweep kills it; it must then be gone.
    leftovers = report["killed_in_netns"]
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in leftovers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in leftovers), leftovers
    assert not any(state.alive(p) for p in procs)
    assert not any(n.startswith(f"bmpL-{os.getpid()}") for n in os.listdir("/run/netns"))
    assert processes_mentioning(str(lab)) == []
    print(
        f"lab up {up_s:.1f} s; PXE install to stage 5 {install_s:.1f} s; disk boot {disk_s:.1f} s"
    )
