"""Install-option columns at import: password policy and hashing, hashes, keys, scheme vs disks."""

from __future__ import annotations

import json

import pytest
from passlib.hash import sha512_crypt

from bmprov.errors import ConfigError
from bmprov.install.options import InstallDefaults, check_password_policy
from tests.bootutil import edit_config
from tests.conftest import write_csv

HEADER = ["serial", "mac", "root password", "ssh key", "partition scheme", "disks", "callback"]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host"
HASH = sha512_crypt.using(rounds=5000).hash("Other-Secret9")


def run_import(site, cli, rows: list[list[str]]):
    return cli("import", write_csv(site.dir / "inst.csv", [HEADER, *rows]))


def stored(site, serial: str) -> dict:
    with site.db() as db:
        row = db.query("SELECT install_options FROM nodes WHERE serial = ?", (serial,))
    return json.loads(row[0][0])


def test_accepts_and_hashes_plain_password(site, cli) -> None:
    rows = [
        ["SN1", "52:54:00:00:00:01", "Secret123", KEY, "lvm_raid1", "2", "http://10.20.0.1/cb"],
        ["SN2", "52:54:00:00:00:02", HASH, "", "LVM_RAID10S", "5", ""],
    ]
    run = run_import(site, cli, rows)
    assert run.exit_code == 0, run.stderr
    one = stored(site, "SN1")
    assert one["root_password_hash"].startswith("$6$")
    assert sha512_crypt.verify("Secret123", one["root_password_hash"])
    assert one["partition_scheme"] == "LVM_RAID1" and one["disks"] == 2
    assert one["ssh_key"] == KEY and one["callback_url"] == "http://10.20.0.1/cb"
    assert stored(site, "SN2")["root_password_hash"] == HASH
    state = (site.dir / "bmprov.sqlite").read_bytes()
    assert b"Secret123" not in state
    assert "Secret123" not in run.stdout + run.stderr
    again = run_import(
        site, cli, rows
    )  # same plain password: a new salt must not count as a change
    assert "0 changed" in again.stdout, again.stdout


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("short1A", "does not meet the policy"),
        ("alllowercase1", "does not meet the policy"),
        ("NoDigitsHere", "does not meet the policy"),
        ("$1$abc$defghijklmnopqrstuvwxyz", "is not a SHA-512 crypt hash"),
        ("$5$abcdefgh$" + "a" * 43, "is not a SHA-512 crypt hash"),
    ],
)
def test_rejects_bad_password_cells(site, cli, cell: str, message: str) -> None:
    run = run_import(site, cli, [["SN1", "52:54:00:00:00:01", cell, "", "", "", ""]])
    assert run.exit_code == 2
    assert "inst.csv:2:root password:" in run.stderr and message in run.stderr
    if not cell.startswith("$"):
        assert cell not in run.stderr  # a plain password is never echoed


@pytest.mark.parametrize(
    ("scheme", "disks", "ok"),
    [
        ("LVM_HBA", "1", True),
        ("LVM_RAID0", "1", False),
        ("LVM_RAID0", "2", True),
        ("LVM_RAID1", "2", True),
        ("LVM_RAID10", "3", False),
        ("LVM_RAID10", "4", True),
        ("LVM_RAID10S", "4", False),
        ("LVM_RAID10S", "5", True),
    ],
)
def test_scheme_against_disk_count(site, cli, scheme: str, disks: str, ok: bool) -> None:
    run = run_import(site, cli, [["SN1", "52:54:00:00:00:01", "", "", scheme, disks, ""]])
    if ok:
        assert run.exit_code == 0, run.stderr
    else:
        assert run.exit_code == 2
        assert (
            f"inst.csv:2:partition scheme: partition scheme {scheme} needs at least" in run.stderr
        )


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("ssh key", "ssh-ed25519 notbase64!"),
        ("ssh key", "ssh-dss AAAAB3NzaC1kc3MAAACBAP"),
        ("ssh key", "ssh-rsa " + KEY.split()[1]),  # ed25519 data under an rsa type
        ("partition scheme", "ZFS"),
        ("disks", "0"),
        ("disks", "two"),
        ("callback", "ftp://10.20.0.1/cb"),
        ("callback", "http://10.20.0.1/cb;reboot"),
    ],
)
def test_rejects_bad_option_cells(site, cli, column: str, cell: str) -> None:
    row = ["SN1", "52:54:00:00:00:01", "", "", "", "", ""]
    row[HEADER.index(column)] = cell
    run = run_import(site, cli, [row])
    assert run.exit_code == 2
    assert f"inst.csv:2:{column}:" in run.stderr


def test_policy_message_never_echoes() -> None:
    with pytest.raises(ValueError, match="policy") as info:
        check_password_policy("weakpass")
    assert "weakpass" not in str(info.value)


def test_default_password_from_env_is_stable(site, monkeypatch) -> None:
    monkeypatch.setenv("ROOTPW", "Env-Secret42")
    edit_config(site, "disks = 1", 'disks = 1\nroot_password_env = "ROOTPW"')
    first = InstallDefaults.from_config(site.config).root_password_hash
    second = InstallDefaults.from_config(site.config).root_password_hash
    assert first == second and first is not None
    assert sha512_crypt.verify("Env-Secret42", first)
    assert "Env-Secret42" not in repr(InstallDefaults.from_config(site.config).for_node({}))
    monkeypatch.setenv("ROOTPW", "weak")
    with pytest.raises(ConfigError, match=r"install\.root_password_env") as info:
        InstallDefaults.from_config(site.config)
    assert "weak" not in str(info.value)
