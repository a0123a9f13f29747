"""``bmprov reconcile`` against real DHCP servers and the boot tree on disk.

For ISC dhcpd (OMAPI, in a namespace), dnsmasq (hostsdir) and Kea (config + config-reload):
networking runs for real, then drift is injected by hand (an OMAPI delete, a foreign
reservation, a changed address, a deleted or edited boot file, a stray ``01-<mac>`` file).
The report must name each, a read-only run must leave the state file, the boot tree and the
server's files byte for byte as they were, ``--fix`` repairs what is safe, ``--prune`` the
orphans, and a second run is clean (exit 0). Last, a reconcile racing an advance of the same
nodes leaves a consistent site.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bmprov.config import load_config
from bmprov.dhcp import DhcpSettings, Reservation, open_backend
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.netdetect import NetworkSettings
from bmprov.nodes import Selection, get_node
from bmprov.setup_site import init_site
from bmprov.stages import ActionContext
from bmprov.store import StateDB
from tests import peers
from tests.conftest import write_csv
from tests.test_reconcile import tree_hash

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(not peers.can_run_peers(), reason="needs root, iproute2 and the peers"),
]
FOREIGN = "02:99:00:00:00:07"


def macs(n: int) -> list[str]:
    return [f"02:31:00:00:09:{i:02x}" for i in range(1, n + 1)]


def make_site(tmp: Path, topo: peers.Topology, backend: str, extra: str, count: int = 3):
    net = NetworkSettings(peers.SRV_IF, topo.server_ip, topo.subnet, topo.server_ip)
    result = init_site(tmp / "site", net)
    text = result.config_path.read_text().replace('backend = "file"', f'backend = "{backend}"')
    result.config_path.write_text(text + "\n" + extra + "\n")
    config = load_config(result.config_path)
    rows = [
        [f"SN{i}", mac, f"node{i}", "provisioning_auto"] for i, mac in enumerate(macs(count), 1)
    ]
    sheet = write_csv(tmp / "sheet.csv", [["serial", "mac", "hostname", "notes"], *rows])
    with StateDB(config.state_path) as db:
        import_sheet(db, config, sheet)
        ctx = ActionContext(config, db, "advance")
        advance(ctx, Selection(all=True), "mounting")
        with peers.netns(topo.srv):
            batch = advance(ctx, Selection(all=True), "networking")
    assert {r.status for r in batch.results} == {"ok"}, batch.results
    return config


def reconcile(cli, topo, config, *args: str) -> tuple[int, dict]:
    with peers.netns(topo.srv):
        result = cli("--config", config.path, "reconcile", "--json", "--no-bmc", *args)
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


def found(doc: dict) -> set[tuple[str, str, str | None]]:
    return {(f["plane"], f["kind"], f["node"]) for f in doc["findings"]}


def fixed(doc: dict) -> set[tuple[str, str, str | None]]:
    return {(f["plane"], f["kind"], f["node"]) for f in doc["findings"] if f["fixed"]}


def boot_drift(config) -> None:
    """SN2's pxelinux entry deleted, its GRUB entry edited, a stray per-MAC file."""
    tftp = config.resolve("tftpboot")
    (tftp / "pxelinux.cfg/01-02-31-00-00-09-02").unlink()
    (tftp / "grub/grub.cfg-01-02-31-00-00-09-02").write_text("set timeout=0\n")
    (tftp / "pxelinux.cfg/01-02-99-00-00-00-08").write_text("DEFAULT install\n")


def snapshot(config, *server_files: Path) -> str:
    return tree_hash(
        config.state_path, config.resolve("tftpboot"), config.resolve("http"), *server_files
    )


EXPECT = {
    ("dhcp", "missing", "SN1"),
    ("dhcp", "orphan", None),
    ("boot", "missing", "SN2"),
    ("boot", "edited", "SN2"),
    ("boot", "orphan", None),
}
"""What every server's test injects (SN1's reservation gone, a foreign one, boot_drift)."""
PRUNABLE = {("dhcp", "orphan", None), ("boot", "orphan", None)}


def check_cycle(cli, topo, config, server_files: list[Path]) -> None:
    """Read-only run names EXPECT and writes nothing; --fix; --fix --prune; then clean."""
    expect, prunable = EXPECT, PRUNABLE
    before = snapshot(config, *server_files)
    code, doc = reconcile(cli, topo, config)
    assert code == 1
    assert found(doc) == expect, doc
    assert snapshot(config, *server_files) == before
    code, doc = reconcile(cli, topo, config, "--fix")
    assert fixed(doc) == expect - prunable, doc
    code, doc = reconcile(cli, topo, config, "--fix", "--prune")
    assert fixed(doc) == prunable, doc
    code, doc = reconcile(cli, topo, config)
    assert (code, doc["findings"]) == (0, []), doc


def test_isc_dhcpd_over_omapi(tmp_path, cli) -> None:
    with peers.topology(macs(1)[0], net=41) as topo:
        secret = peers.new_secret()
        peers.start_dhcpd(topo, tmp_path, secret)
        (tmp_path / "omapi.key").write_text(secret + "\n")
        leases = tmp_path / "dhcpd.leases"
        key = f'[dhcp.omapi]\nkey_file = "{tmp_path / "omapi.key"}"\ntimeout = 3\n'
        config = make_site(tmp_path, topo, "omapi", key + f'leases_file = "{leases}"')
        settings = DhcpSettings.from_config(config)
        with peers.netns(topo.srv), open_backend(settings) as backend:
            assert backend.remove(macs(3)[0])  # SN1 deleted over OMAPI
            backend.add(Reservation(FOREIGN, "10.231.41.200", "FOREIGN"))
        boot_drift(config)
        check_cycle(cli, topo, config, [leases])
        with peers.netns(topo.srv), open_backend(settings) as backend:
            assert backend.lookup(FOREIGN) is None
            assert backend.lookup(macs(3)[0]).ip == get_node(StateDB(config.state_path), "SN1").ip
        # a changed address is reported, never overwritten
        with peers.netns(topo.srv), open_backend(settings) as backend:
            backend.remove(macs(3)[2])
            backend.add(Reservation(macs(3)[2], "10.231.41.222", "SN3"))
        code, doc = reconcile(cli, topo, config, "--fix")
        assert (code, found(doc), fixed(doc)) == (1, {("dhcp", "wrong_ip", "SN3")}, set())
        # without dhcpd's files, orphans cannot be seen: the report says so
        text = config.path.read_text().replace(f'leases_file = "{leases}"', "")
        config.path.write_text(text)
        code, doc = reconcile(cli, topo, config)
        assert any("orphan reservations not checked" in n for n in doc["notes"])


def test_dnsmasq_hostsdir(tmp_path, cli) -> None:
    with peers.topology(macs(1)[0], net=42) as topo:
        hostsdir = tmp_path / "hosts.d"
        root = tmp_path / "tftp-unused"
        root.mkdir()
        peers.start_dnsmasq(topo, tmp_path, hostsdir, root, "pxelinux.0")
        config = make_site(
            tmp_path,
            topo,
            "dnsmasq",
            f'[dhcp.dnsmasq]\nhostsdir = "{hostsdir}"\npidfile = "{tmp_path / "dnsmasq.pid"}"',
        )
        files = sorted(p for p in hostsdir.iterdir() if not p.name.startswith("."))
        assert len(files) == 3
        sn1 = hostsdir / "02-31-00-00-09-01.conf"
        sn1.unlink()
        (hostsdir / "02-99-00-00-00-07.conf").write_text(f"{FOREIGN},10.231.42.200\n")
        boot_drift(config)
        check_cycle(cli, topo, config, [hostsdir])
        assert topo.procs[0].poll() is None  # dnsmasq survived the SIGHUPs
        # a line in a file bmprov did not write (it may hold others) is never deleted
        (hostsdir / "by-hand").write_text("02:99:00:00:00:09,10.231.42.201\n")
        code, doc = reconcile(cli, topo, config, "--fix", "--prune")
        assert (code, found(doc), fixed(doc)) == (1, {("dhcp", "orphan", None)}, set())
        assert "did not write" in doc["findings"][0]["note"]
        assert (hostsdir / "by-hand").exists()


def test_kea_config_reload(tmp_path, cli) -> None:
    with peers.topology(macs(1)[0], net=43) as topo:
        peers.start_kea(topo, tmp_path)
        conf = tmp_path / "kea-dhcp4.conf"
        config = make_site(
            tmp_path,
            topo,
            "kea",
            f'[dhcp.kea]\nconfig = "{conf}"\nsocket = "{tmp_path / "kea.sock"}"',
        )
        doc = json.loads(conf.read_text())
        held = doc["Dhcp4"]["subnet4"][0]["reservations"]
        held[:] = [r for r in held if r["hw-address"] != macs(1)[0]]
        held.append({"hw-address": FOREIGN, "ip-address": "10.231.43.200", "hostname": "foreign"})
        conf.write_text(json.dumps(doc, indent=2))
        boot_drift(config)
        check_cycle(cli, topo, config, [conf])
        assert topo.procs[0].poll() is None


def test_reconcile_racing_an_advance_leaves_a_consistent_site(tmp_path) -> None:
    """advance --stage networking of 150 nodes and reconcile --fix --prune, started together
    as separate processes (file backend): they take turns; afterwards every node holding an
    address has exactly its reservation and its files, and a read-only reconcile is clean."""
    site = init_site(tmp_path / "site")
    config = load_config(site.config_path)
    rows = [
        [f"R{i:03d}", f"02:31:00:01:{i >> 8:02x}:{i & 255:02x}", "provisioning_auto"]
        for i in range(150)
    ]
    sheet = write_csv(tmp_path / "sheet.csv", [["serial", "mac", "notes"], *rows])
    with StateDB(config.state_path) as db:
        import_sheet(db, config, sheet)
        advance(ActionContext(config, db, "t"), Selection(all=True), "mounting")
    env = {**os.environ, "BMPROV_CONFIG": str(site.config_path)}
    cmd = [sys.executable, "-m", "bmprov"]
    procs = [
        subprocess.Popen(
            [*cmd, "advance", "--stage", "networking", "--all", "--json"],
            env=env,
            stdout=subprocess.PIPE,
        ),
        subprocess.Popen(
            [*cmd, "reconcile", "--fix", "--prune", "--no-bmc", "--json"],
            env=env,
            stdout=subprocess.PIPE,
        ),
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert procs[0].returncode == 0, outs[0][-2000:]
    assert procs[1].returncode in (0, 1)
    with StateDB(config.state_path) as db:
        nodes = db.load_nodes()
        assert {n.stage for n in nodes} == {"os_provisioning"}
        held = json.loads(site.config_path.parent.joinpath("dhcp-reservations.json").read_text())
        assert {r["mac"]: r["ip"] for r in held["reservations"]} == {n.mac: n.ip for n in nodes}
    check = subprocess.run(
        [*cmd, "reconcile", "--no-bmc", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-3000:]
