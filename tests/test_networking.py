"""The networking chain with the file backend and fake peers: steps, undo, resume, batch."""

from __future__ import annotations

import json
import os

import pytest

from bmprov.dhcp import DhcpSettings, ReservationConflict
from bmprov.dhcp.filestore import FileBackend
from bmprov.errors import ConfigError, DriverError, StepFailed
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, get_node, list_nodes
from bmprov.stages import ActionContext, Services
from tests.conftest import raw_sql, write_csv

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)


def load(site, rows: list[list[str]]) -> None:
    sheet = write_csv(site.dir / "sheet.csv", [["serial", "mac", "hostname", "notes"], *rows])
    with site.db() as db:
        import_sheet(db, site.config, sheet)
        advance(ActionContext(site.config, db, "t"), Selection(all=True), "mounting")


def row(i: int, mac: bool = True) -> list[str]:
    return [f"SN{i}", f"02:31:00:00:00:{i:02x}" if mac else "", f"node{i}", "provisioning_auto"]


def networking(site, **options):
    with site.db() as db:
        ctx = ActionContext(site.config, db, "advance", Services(**options))
        batch = advance(ctx, Selection(all=True), "networking")
        return batch, {n.serial: n for n in list_nodes(db)}


def reservations(site) -> dict[str, str]:
    path = site.dir / "dhcp-reservations.json"
    if not path.exists():
        return {}
    return {r["mac"]: r["ip"] for r in json.loads(path.read_text())["reservations"]}


class FlakyBackend(FileBackend):
    """The file backend, but refusing chosen MACs or failing its commit."""

    def __init__(self, settings, refuse=(), fail_commit=False, fail_open=False):
        super().__init__(settings)
        self.refuse, self.fail_commit, self.fail_open = set(refuse), fail_commit, fail_open

    def open(self):
        if self.fail_open:
            raise DriverError("dhcp server 10.9.9.9 is unreachable")
        super().open()

    def _add(self, res):
        if res.mac in self.refuse:
            raise ReservationConflict(f"MAC {res.mac} is already reserved elsewhere")
        return super()._add(res)

    def _save(self, reservations):
        if self.fail_commit:
            raise DriverError("reload refused")
        super()._save(reservations)


def test_happy_path_allocates_reserves_writes_and_moves_on(site) -> None:
    load(site, [row(1), row(2)])
    batch, nodes = networking(site)
    assert batch.counts() == {"ok": 2}
    assert nodes["SN1"].stage == "os_provisioning"
    assert reservations(site) == {
        "02:31:00:00:00:01": nodes["SN1"].ip,
        "02:31:00:00:00:02": nodes["SN2"].ip,
    }
    assert (site.dir / "tftpboot/pxelinux.cfg/01-02-31-00-00-00-01").exists()
    assert batch.results[0].details["ip"] == nodes["SN1"].ip


def test_node_without_mac_fails_at_allocate_others_go_on(site) -> None:
    load(site, [row(1), row(2, mac=False)])
    _batch, nodes = networking(site)
    assert nodes["SN2"].stage == "failed"
    assert nodes["SN2"].stage_reason.startswith("allocate: no MAC address")
    assert nodes["SN2"].ip is None
    assert nodes["SN1"].stage == "os_provisioning"


def test_exhausted_pool_fails_that_node_not_the_batch(site) -> None:
    site.write_config('[[pools]]\nname = "tiny"\nsubnet = "10.231.9.0/30"')
    load(site, [row(1), row(2), row(3)])
    _batch, nodes = networking(site)
    assert sorted(n.stage for n in nodes.values()) == [
        "failed",
        "os_provisioning",
        "os_provisioning",
    ]
    failed = next(n for n in nodes.values() if n.stage == "failed")
    assert "pool tiny (10.231.9.0/30) is exhausted" in failed.stage_reason


def test_refused_reservation_gives_the_address_back(site) -> None:
    load(site, [row(1), row(2)])
    backend = FlakyBackend(DhcpSettings.from_config(site.config), refuse={"02:31:00:00:00:01"})
    _batch, nodes = networking(site, dhcp_backend=backend)
    assert nodes["SN1"].stage == "failed"
    assert nodes["SN1"].stage_reason.startswith("reserve: MAC 02:31:00:00:00:01")
    assert nodes["SN1"].ip is None  # no IP in the state without its reservation
    assert nodes["SN2"].ip == "10.20.0.3"  # chosen in the same transaction as SN1's
    assert not (site.dir / "tftpboot/pxelinux.cfg/01-02-31-00-00-00-01").exists()
    # re-run picks up where it stopped
    with site.db() as db:
        ctx = ActionContext(site.config, db, "advance")
        again = advance(ctx, Selection(serials=("SN1",)), "networking")
        assert [r.status for r in again.results] == ["ok"]
        assert get_node(db, "SN1").ip == "10.20.0.2"  # released, so lowest free again


def test_failed_commit_undoes_addresses_and_files(site) -> None:
    load(site, [row(1)])
    backend = FlakyBackend(DhcpSettings.from_config(site.config), fail_commit=True)
    _batch, nodes = networking(site, dhcp_backend=backend)
    assert nodes["SN1"].stage_reason == "reserve: reload refused"
    assert nodes["SN1"].ip is None
    assert not (site.dir / "tftpboot/pxelinux.cfg/01-02-31-00-00-00-01").exists()


def test_unreachable_server_fails_every_node_with_its_message(site) -> None:
    load(site, [row(1), row(2)])
    backend = FlakyBackend(DhcpSettings.from_config(site.config), fail_open=True)
    _batch, nodes = networking(site, dhcp_backend=backend)
    assert {n.stage_reason for n in nodes.values()} == {
        "reserve: dhcp server 10.9.9.9 is unreachable"
    }
    assert {n.ip for n in nodes.values()} == {None}


class BrokenWriter:
    def write(self, node, ip):
        raise StepFailed("install file", f"node {node.serial}: template kickstart.j2 is broken")


def test_file_failure_keeps_ip_and_reservation_consistent_and_resumes(site) -> None:
    load(site, [row(1)])
    _, nodes = networking(site, file_writer=BrokenWriter())
    assert nodes["SN1"].stage == "failed"
    assert nodes["SN1"].stage_reason.startswith("install file: node SN1: template")
    assert reservations(site) == {"02:31:00:00:00:01": nodes["SN1"].ip}
    _batch, nodes = networking(site)  # fixed: a plain re-run finishes the job
    assert nodes["SN1"].stage == "os_provisioning"
    assert nodes["SN1"].ip == "10.20.0.2"


def test_rerun_is_idempotent(site) -> None:
    load(site, [row(1)])
    networking(site)
    with site.db() as db:
        ctx = ActionContext(site.config, db, "advance")
        advance(ctx, Selection(all=True), "networking")  # os_provisioning → networking again
        assert get_node(db, "SN1").ip == "10.20.0.2"
    assert reservations(site) == {"02:31:00:00:00:01": "10.20.0.2"}


def test_decommission_removes_reservation_and_releases_ip(site) -> None:
    load(site, [row(1)])
    networking(site)
    with site.db() as db:
        db.conn.execute("UPDATE nodes SET stage = 'deployed'")
        batch = advance(ActionContext(site.config, db, "t"), Selection(all=True), "decommissioning")
        assert [r.status for r in batch.results] == ["ok"]
        assert get_node(db, "SN1").ip is None
        assert get_node(db, "SN1").stage == "wiping"
    assert reservations(site) == {}


def test_decommission_switches_boot_entries_and_removes_the_install_file(site) -> None:
    """A leaving machine that PXE-boots must find its disk, and its kickstart (with the root
    password hash) must no longer be published."""
    load(site, [row(1), row(2)])
    networking(site)
    pxe = site.dir / "tftpboot" / "pxelinux.cfg" / "01-02-31-00-00-00-01"
    kickstart = site.dir / "http" / "ks" / "SN1.cfg"
    assert "LOCALBOOT" not in pxe.read_text() and kickstart.exists()
    with site.db() as db:
        db.conn.execute("UPDATE nodes SET stage = 'deployed' WHERE serial = 'SN1'")
        batch = advance(
            ActionContext(site.config, db, "t"), Selection(serials=("SN1",)), "decommissioning"
        )
    assert [r.status for r in batch.results] == ["ok"]
    assert "LOCALBOOT" in pxe.read_text()
    grub = site.dir / "tftpboot" / "grub" / "grub.cfg-01-02-31-00-00-00-01"
    assert "linux" not in grub.read_text()
    assert not kickstart.exists()
    assert (site.dir / "http" / "ks" / "SN2.cfg").exists()  # the other node is untouched


def test_decommission_keeps_the_reservation_when_files_cannot_be_switched(site) -> None:
    load(site, [row(1)])
    networking(site)
    pxe = site.dir / "tftpboot" / "pxelinux.cfg"
    pxe.chmod(0o500)
    try:
        if os.access(pxe, os.W_OK):  # root ignores modes: make the entry a directory instead
            entry = pxe / "01-02-31-00-00-00-01"
            entry.unlink()
            entry.mkdir()
        with site.db() as db:
            db.conn.execute("UPDATE nodes SET stage = 'deployed'")
            batch = advance(
                ActionContext(site.config, db, "t"), Selection(all=True), "decommissioning"
            )
            node = get_node(db, "SN1")
    finally:
        pxe.chmod(0o755)
    [result] = batch.results
    assert result.status == "failed" and "01-02-31-00-00-00-01" in result.message
    assert node.ip == "10.20.0.2" and node.stage == "failed"
    assert reservations(site) == {"02:31:00:00:00:01": "10.20.0.2"}


def test_config_error_is_clear_and_moves_nothing(site) -> None:
    site.write_config('[[pools]]\nname = "bad"\nsubnet = "10.231.9.1/24"')
    load(site, [row(1)])
    with pytest.raises(ConfigError, match="host bits set"):
        networking(site)
    with site.db() as db:
        assert get_node(db, "SN1").stage == "mounting"


@pytest.mark.parametrize("hostname", ['a"b', "x;y"])
def test_hostnames_are_validated_before_sending(site, hostname) -> None:
    load(site, [row(1)])
    with site.db() as db:
        raw_sql(db, "UPDATE nodes SET hostname = ?", (hostname,))
    _batch, nodes = networking(site)
    assert "not a valid host name" in nodes["SN1"].stage_reason
    assert reservations(site) == {}


def test_networking_also_writes_the_loaders_default_files(site) -> None:
    """A site that never ran `pxe render` still boots unknown machines to their disk."""
    load(site, [row(1)])
    batch, _ = networking(site)
    assert batch.exit_code == 0
    default = site.dir / "tftpboot" / "pxelinux.cfg" / "default"
    assert "LOCALBOOT" in default.read_text()
    assert (site.dir / "tftpboot" / "grub" / "grub.cfg").exists()
