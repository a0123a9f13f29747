"""``bmprov reconcile`` with the file backend and the boot tree on disk: each kind of drift is
named, a read-only run writes nothing, ``--fix`` repairs, a second run is clean."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from bmprov.errors import LockedError
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection, get_node
from bmprov.stages import ActionContext
from tests.conftest import write_csv


def load(site, count: int = 3) -> None:
    rows = [
        [f"SN{i}", f"02:31:00:00:07:{i:02x}", f"node{i}", "provisioning_auto"]
        for i in range(1, count + 1)
    ]
    sheet = write_csv(site.dir / "sheet.csv", [["serial", "mac", "hostname", "notes"], *rows])
    with site.db() as db:
        import_sheet(db, site.config, sheet)
        ctx = ActionContext(site.config, db, "t")
        advance(ctx, Selection(all=True), "mounting")
        advance(ctx, Selection(all=True), "networking")


def tree_hash(*roots: Path) -> str:
    """Every file under the roots (names, modes and bytes), plus single files."""
    digest = hashlib.sha256()
    for root in roots:
        paths = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in paths:
            if path.is_file():
                digest.update(str(path).encode() + b"\0" + oct(path.stat().st_mode).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def snapshot(site) -> str:
    return tree_hash(
        site.config.state_path,
        site.dir / "tftpboot",
        site.dir / "http",
        site.dir / "dhcp-reservations.json",
    )


def reservations(site) -> dict[str, str]:
    doc = json.loads((site.dir / "dhcp-reservations.json").read_text())
    return {r["mac"]: r["ip"] for r in doc["reservations"]}


def set_reservations(site, table: dict[str, str]) -> None:
    path = site.dir / "dhcp-reservations.json"
    doc = json.loads(path.read_text())
    by_mac = {r["mac"]: r for r in doc["reservations"]}
    doc["reservations"] = [
        {**by_mac.get(mac, {"name": "HANDMADE"}), "mac": mac, "ip": ip} for mac, ip in table.items()
    ]
    path.write_text(json.dumps(doc))


def run(cli, *args: str) -> tuple[int, dict]:
    result = cli("reconcile", "--json", "--no-bmc", *args)
    return result.exit_code, json.loads(result.stdout)


def kinds(doc: dict) -> set[tuple[str, str, str | None]]:
    return {(f["plane"], f["kind"], f["node"]) for f in doc["findings"]}


def test_clean_site_is_clean_and_unchanged(site, cli) -> None:
    load(site)
    lock = site.dir / ".dhcp-reservations.json.lock"
    lock.unlink()  # a read-only run does not even create the store's lock file
    names = sorted(p.name for p in site.dir.iterdir())
    before = snapshot(site)
    code, doc = run(cli)
    assert (code, doc["findings"], doc["ok"]) == (0, [], True)
    assert snapshot(site) == before
    assert sorted(p.name for p in site.dir.iterdir()) == names


def test_each_drift_is_named_nothing_changes_fix_repairs_then_clean(site, cli) -> None:
    load(site, 4)
    tftp, http = site.dir / "tftpboot", site.dir / "http"
    table = reservations(site)
    sn1, sn2 = get_node(site.db(), "SN1"), get_node(site.db(), "SN2")
    # DHCP: SN1's reservation deleted, SN2's address changed, a foreign host added
    del table[sn1.mac]
    table[sn2.mac] = "10.99.0.9"
    table["02:99:00:00:00:01"] = "10.99.0.10"
    set_reservations(site, table)
    # boot: SN3's pxelinux entry deleted, its grub entry edited, a stray 01-<mac> file
    (tftp / "pxelinux.cfg/01-02-31-00-00-07-03").unlink()
    (tftp / "grub/grub.cfg-01-02-31-00-00-07-03").write_text("set default=0\n")
    (tftp / "pxelinux.cfg/01-02-99-00-00-00-02").write_text("DEFAULT local\n")
    before = snapshot(site)

    code, doc = run(cli)
    assert code == 1
    assert {
        ("dhcp", "missing", "SN1"),
        ("dhcp", "wrong_ip", "SN2"),
        ("dhcp", "orphan", None),
        ("boot", "missing", "SN3"),
        ("boot", "edited", "SN3"),
        ("boot", "orphan", None),
    } == kinds(doc)
    assert not any(f["fixed"] for f in doc["findings"])
    assert snapshot(site) == before  # read-only: nothing written anywhere

    code, doc = run(cli, "--fix")
    fixed = {(f["plane"], f["kind"]) for f in doc["findings"] if f["fixed"]}
    assert fixed == {("dhcp", "missing"), ("boot", "missing"), ("boot", "edited")}
    assert code == 1  # the wrong address and the orphans stay: reported, never forced
    assert reservations(site)[sn1.mac] == sn1.ip
    assert (tftp / "pxelinux.cfg/01-02-31-00-00-07-03").exists()
    history = [h["reason"] for h in site.db().history(get_node(site.db(), "SN1").id)]
    assert any("re-added" in (r or "") for r in history)

    code, doc = run(cli, "--fix", "--prune")
    assert {(f["plane"], f["kind"]) for f in doc["findings"] if f["fixed"]} == {
        ("dhcp", "orphan"),
        ("boot", "orphan"),
    }
    assert not (tftp / "pxelinux.cfg/01-02-99-00-00-00-02").exists()
    assert "02:99:00:00:00:01" not in reservations(site)

    table = reservations(site)
    table[sn2.mac] = sn2.ip  # the person who changed it puts it back
    set_reservations(site, table)
    code, doc = run(cli)
    assert (code, doc["findings"]) == (0, [])
    assert http.exists()


def test_deployed_node_with_install_entry_and_leaving_node_with_install_file(site, cli) -> None:
    load(site, 2)
    http, tftp = site.dir / "http", site.dir / "tftpboot"
    entry = tftp / "pxelinux.cfg/01-02-31-00-00-07-01"
    install_entry = entry.read_bytes()
    ks = http / "ks/SN2.cfg"
    ks_text = ks.read_bytes()
    with site.db() as db:
        ctx = ActionContext(site.config, db, "t")
        advance(ctx, Selection(serials=("SN1", "SN2")), "installing")
        advance(ctx, Selection(serials=("SN1", "SN2")), "deployed")
        advance(ctx, Selection(serials=("SN2",)), "decommissioning")
    entry.write_bytes(install_entry)  # the reinstall-loop risk, put back by hand
    ks.write_bytes(ks_text)  # a restored backup brings the root hash back
    code, doc = run(cli)
    assert code == 1
    assert ("boot", "install_entry", "SN1") in kinds(doc)
    assert ("boot", "install_file_left", "SN2") in kinds(doc)
    code, doc = run(cli, "--fix")
    assert all(f["fixed"] for f in doc["findings"]), doc
    assert b"initrd" not in entry.read_bytes()
    assert not ks.exists()
    assert run(cli)[0] == 0


def test_plain_lines_when_not_a_tty_and_bad_site_is_exit_2(site, cli) -> None:
    load(site, 1)
    (site.dir / "tftpboot/pxelinux.cfg/01-02-31-00-00-07-01").unlink()
    result = cli("reconcile", "--no-bmc")
    assert result.exit_code == 1
    assert "boot missing SN1: expected " in result.stdout
    assert "\x1b[" not in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("reconcile (state, boot, dhcp)")
    result = cli("reconcile", "--site", "nowhere")
    assert result.exit_code == 2
    assert "no node there" in result.stderr


def test_reconcile_excludes_advances_which_share_the_site_lock(site, cli) -> None:
    import fcntl

    from bmprov.runlock import lock_file

    load(site, 1)
    site.config_path.write_text("state_timeout = 0.3\n" + site.config_path.read_text())
    fd = os.open(lock_file(site.config.state_path), os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as an advance under way holds it
        result = cli("reconcile", "--no-bmc")
        assert result.exit_code == 1
        assert "another bmprov is running" in result.stderr
        with site.db() as db:  # another advance goes ahead (shared)
            batch = advance(ActionContext(site.config, db, "t"), Selection(all=True), "installing")
        assert [r.status for r in batch.results] == ["ok"]
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a reconcile holds it: advances wait, then give up
        with site.db() as db, pytest.raises(LockedError):
            advance(ActionContext(site.config, db, "t"), Selection(all=True), "deployed")
    finally:
        os.close(fd)


def test_wrong_mac_and_duplicate_ip_are_reported_never_fixed(site, cli) -> None:
    load(site, 2)
    sn1, sn2 = get_node(site.db(), "SN1"), get_node(site.db(), "SN2")
    table = reservations(site)
    del table[sn1.mac]
    table["02:99:00:00:00:05"] = sn1.ip  # SN1's address went to another machine
    table["02:99:00:00:00:06"] = sn2.ip  # and SN2's is on two MACs
    set_reservations(site, table)
    code, doc = run(cli, "--fix")
    assert code == 1
    assert {("dhcp", "wrong_mac", "SN1"), ("dhcp", "duplicate_ip", "SN2")} <= kinds(doc)
    assert not any(f["fixed"] for f in doc["findings"] if f["kind"] != "orphan")
    assert reservations(site)["02:99:00:00:00:05"] == sn1.ip  # never overwritten


def test_syslog_gets_one_line_per_finding(site, cli, monkeypatch, tmp_path) -> None:
    import socket

    from bmprov.cli import reconcile as cli_reconcile

    load(site, 1)
    (site.dir / "tftpboot/pxelinux.cfg/01-02-31-00-00-07-01").unlink()
    path = tmp_path / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setattr(cli_reconcile, "SYSLOG_SOCKET", str(path))
    try:
        assert cli("reconcile", "--no-bmc", "--syslog").exit_code == 1
        lines = [sock.recv(4096).decode() for _ in range(2)]
    finally:
        sock.close()
    assert "bmprov: boot missing SN1" in lines[0]
    assert "1 finding(s)" in lines[1]
