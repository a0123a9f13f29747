"""The networking stage against real DHCP servers, checked by a real DHCP and TFTP client.

For each of ISC dhcpd (OMAPI), dnsmasq and Kea: a namespace pair is built, the server started,
``advance --stage networking`` runs through the library, then busybox udhcpc with the node's MAC
must get exactly the allocated IP, the boot filename and next-server, and a TFTP client must
fetch the node's ``pxelinux.cfg/01-…`` file with the expected content.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bmprov.config import load_config
from bmprov.dhcp import DhcpSettings, open_backend
from bmprov.dhcp.export import server_view
from bmprov.dhcp.kea import KeaBackend
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.netdetect import NetworkSettings
from bmprov.nodes import Selection, get_node
from bmprov.setup_site import init_site
from bmprov.stages import ActionContext
from bmprov.store import StateDB
from bmprov.validate import pxe_mac_name
from tests import peers
from tests.conftest import write_csv

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(not peers.can_run_peers(), reason="needs root, iproute2 and the peers"),
]

MAC = "02:31:00:00:00:42"
BOOT_FILE = "pxelinux.0"


def make_site(tmp: Path, topo: peers.Topology, backend: str, extra: str, tftproot: Path):
    net = NetworkSettings(peers.SRV_IF, topo.server_ip, topo.subnet, topo.server_ip)
    result = init_site(tmp / "site", net)
    text = result.config_path.read_text().replace('backend = "file"', f'backend = "{backend}"')
    text = text.replace('tftp_root = "tftpboot"', f'tftp_root = "{tftproot}"')
    net3 = topo.server_ip.rsplit(".", 1)[0]  # the pool's own gateway/DNS reach the client
    extra += (
        f'\n[[pools]]\nname = "lab"\nsubnet = "{topo.subnet}"\ngateway = "{net3}.254"\n'
        f'dns = ["{net3}.53"]\n'
    )
    result.config_path.write_text(text + "\n" + extra + "\n")
    config = load_config(result.config_path)
    sheet = write_csv(
        tmp / "sheet.csv",
        [["serial", "mac", "hostname", "notes"], ["SRV42", MAC, "node42", "provisioning_auto"]],
    )
    with StateDB(config.state_path) as db:
        import_sheet(db, config, sheet)
    return config


def run_networking(config, topo: peers.Topology):
    with StateDB(config.state_path) as db:
        ctx = ActionContext(config, db, "advance")
        advance(ctx, Selection(all=True), "mounting")
        with peers.netns(topo.srv):  # OMAPI listens on 127.0.0.1 inside the server netns
            batch = advance(ctx, Selection(all=True), "networking")
        node = get_node(db, "SRV42")
    assert [r.status for r in batch.results] == ["ok"], batch.results
    return node


def check_client(topo: peers.Topology, d: Path, node, root: Path, options: bool = True) -> None:
    lease = peers.dhcp_client(topo, d)
    assert lease.get("ip") == node.ip
    if options:  # per-host options (dnsmasq takes them from its own config: no set: tags)
        net3 = topo.server_ip.rsplit(".", 1)[0]
        assert (lease.get("router"), lease.get("dns")) == (f"{net3}.254", f"{net3}.53")
    assert lease.get("boot_file") == BOOT_FILE
    assert lease.get("siaddr") == topo.server_ip
    got = peers.tftp_get(topo, f"pxelinux.cfg/{pxe_mac_name(MAC)}").decode()
    assert got == (root / "pxelinux.cfg" / pxe_mac_name(MAC)).read_text()
    assert "rocky9/vmlinuz" in got  # the install entry NodeFileWriter rendered for this node
    assert "SRV42" in got


def tftp_root(tmp: Path) -> Path:
    root = tmp / "tftp"
    root.mkdir()
    root.chmod(0o755)
    return root


def test_isc_dhcpd_over_omapi(tmp_path) -> None:
    with peers.topology(MAC, net=11) as topo:
        secret = peers.new_secret()
        peers.start_dhcpd(topo, tmp_path, secret)
        root = tftp_root(tmp_path)
        peers.start_tftpd(topo, root, tmp_path)
        (tmp_path / "omapi.key").write_text(secret + "\n")
        config = make_site(
            tmp_path,
            topo,
            "omapi",
            f'[dhcp.omapi]\nkey_file = "{tmp_path / "omapi.key"}"\ntimeout = 3',
            root,
        )
        node = run_networking(config, topo)
        assert node.stage == "os_provisioning"
        assert node.ip == "10.231.11.2"  # .1 is gateway and server
        check_client(topo, tmp_path, node, root)
        with StateDB(config.state_path) as db, peers.netns(topo.srv):  # `bmprov dhcp list`
            rows = server_view(db, DhcpSettings.from_config(config))
        assert [(r.serial, r.server_ip, r.status) for r in rows] == [("SRV42", node.ip, "ok")]
        leases = (tmp_path / "dhcpd.leases").read_text()
        assert "host SRV42" in leases
        assert 'server.filename = "pxelinux.0"' in leases


def dnsmasq_site(tmp_path: Path, topo: peers.Topology, hostsdir: Path, root: Path):
    """dnsmasq started on ``hostsdir`` and a site on the dnsmasq backend that signals it."""
    peers.start_dnsmasq(topo, tmp_path, hostsdir, root, BOOT_FILE)
    section = f'[dhcp.dnsmasq]\nhostsdir = "{hostsdir}"\npidfile = "{tmp_path / "dnsmasq.pid"}"'
    return make_site(tmp_path, topo, "dnsmasq", section, root)


@pytest.mark.slow  # includes a deliberate 2 s "no lease" probe
def test_dnsmasq_hostsdir(tmp_path) -> None:
    with peers.topology(MAC, net=12) as topo:
        root = tftp_root(tmp_path)
        hostsdir = tmp_path / "hosts.d"
        config = dnsmasq_site(tmp_path, topo, hostsdir, root)
        node = run_networking(config, topo)
        check_client(topo, tmp_path, node, root, options=False)
        dnsmasq = topo.procs[0]
        with StateDB(config.state_path) as db:  # leaving: file removed, SIGHUP, no lease
            db.conn.execute("UPDATE nodes SET stage = 'deployed'")
            ctx = ActionContext(config, db, "advance")
            batch = advance(ctx, Selection(all=True), "decommissioning")
            assert [r.status for r in batch.results] == ["ok"]
        assert list(hostsdir.glob("[!.]*")) == []
        # What the TFTP server now hands this MAC boots the disk, never the installer.
        got = peers.tftp_get(topo, f"pxelinux.cfg/{pxe_mac_name(MAC)}").decode()
        assert "LOCALBOOT" in got and "vmlinuz" not in got
        subprocess.run(["ip", "-n", topo.cli, "addr", "flush", "dev", peers.CLI_IF], check=True)
        assert peers.dhcp_client(topo, tmp_path, tries=2) == {}
        assert dnsmasq.poll() is None  # survived the SIGHUP (no set: tags in host lines)


def test_dnsmasq_never_edits_an_operators_hosts_file(tmp_path) -> None:
    """A MAC the operator also pinned in a file of their own: leaving is refused with the file
    and line (dnsmasq would go on serving it), their file untouched, the address kept; once
    they delete the line, the re-run completes."""
    with peers.topology(MAC, net=15) as topo:
        root = tftp_root(tmp_path)
        hostsdir = tmp_path / "hosts.d"
        config = dnsmasq_site(tmp_path, topo, hostsdir, root)
        node = run_networking(config, topo)
        operator = hostsdir / "pinned-by-hand"
        text = f"# racks 1-4\n{MAC},{node.ip},node42\n"
        operator.write_text(text)
        with StateDB(config.state_path) as db:
            db.conn.execute("UPDATE nodes SET stage = 'deployed'")
            ctx = ActionContext(config, db, "advance")
            batch = advance(ctx, Selection(all=True), "decommissioning")
            [result] = batch.results
            assert result.status == "failed"
            assert f"{operator}:2" in result.message and "did not write" in result.message
            assert get_node(db, "SRV42").ip == node.ip  # still reserved: the address stays held
        assert operator.read_text() == text
        assert (hostsdir / (MAC.replace(":", "-") + ".conf")).exists()  # nothing removed
        subprocess.run(["ip", "-n", topo.cli, "addr", "flush", "dev", peers.CLI_IF], check=True)
        assert peers.dhcp_client(topo, tmp_path).get("ip") == node.ip  # what dnsmasq serves
        operator.write_text("# racks 1-4\n")  # the operator deletes the line
        with StateDB(config.state_path) as db:
            batch = advance(
                ActionContext(config, db, "advance"), Selection(all=True), "decommissioning"
            )
            assert [r.status for r in batch.results] == ["ok"], batch.results
            assert get_node(db, "SRV42").ip is None
        assert sorted(p.name for p in hostsdir.glob("[!.]*")) == ["pinned-by-hand"]


def kea_site(tmp_path: Path, topo: peers.Topology, root: Path):
    """A site on the kea backend, its config and control socket in ``tmp_path``."""
    section = (
        f'[dhcp.kea]\nconfig = "{tmp_path / "kea-dhcp4.conf"}"\nsocket = "{tmp_path / "kea.sock"}"'
    )
    return make_site(tmp_path, topo, "kea", section, root)


def test_kea_config_reload(tmp_path) -> None:
    with peers.topology(MAC, net=13) as topo:
        root = tftp_root(tmp_path)
        peers.start_kea(topo, tmp_path)
        peers.start_tftpd(topo, root, tmp_path)
        config = kea_site(tmp_path, topo, root)
        node = run_networking(config, topo)
        check_client(topo, tmp_path, node, root)


def test_kea_reloads_a_file_a_killed_batch_wrote(tmp_path, monkeypatch) -> None:
    """A batch killed between writing kea-dhcp4.conf and config-reload left a file Kea did not
    run; the next batch found its reservation already in the file, wrote nothing and never
    reloaded (a reservation missing from Kea after a kill round, test_faults_peers)."""
    with peers.topology(MAC, net=14) as topo:
        root = tftp_root(tmp_path)
        peers.start_kea(topo, tmp_path)
        config = kea_site(tmp_path, topo, root)
        settings = DhcpSettings.from_config(config)
        ip = topo.subnet.rsplit(".", 1)[0] + ".77"
        want = settings.reservation(MAC, ip, "node42", "node42")

        def running() -> set[tuple[str, str]]:
            got = KeaBackend(settings).command("config-get")["arguments"]["Dhcp4"]["subnet4"]
            return {(r["hw-address"], r["ip-address"]) for s in got for r in s["reservations"]}

        real = KeaBackend.command

        def killed(self: KeaBackend, name: str) -> dict:
            if name == "config-reload":
                raise KeyboardInterrupt  # SIGKILL right after the file was written
            return real(self, name)

        backend = open_backend(settings)
        backend.open()
        backend.add(want)
        monkeypatch.setattr(KeaBackend, "command", killed)
        with pytest.raises(KeyboardInterrupt):
            backend.commit()
        backend.close()
        monkeypatch.setattr(KeaBackend, "command", real)
        assert MAC in (tmp_path / "kea-dhcp4.conf").read_text()
        assert (MAC, ip) not in running()  # the file has it, Kea does not
        again = open_backend(settings)
        again.open()
        assert again.add(want) is False  # already in the file: nothing to change...
        again.commit()
        assert (MAC, ip) in running()  # ...but Kea was reloaded
        assert not KeaBackend(settings).reload_mark.exists()
