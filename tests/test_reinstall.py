"""Reinstall: deployed → networking → os_provisioning with PXE and a power cycle; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmprov.drivers.base import BootDevice
from bmprov.drivers.fake import LAB
from bmprov.nodes import get_node
from tests.conftest import Site, write_csv
from tests.sims.fixtures import configure_fake_bmc

PASSWORD_VAR = "REINSTALL_ROOT_PW"
GPU_OS = '[boot.os.rocky9-gpu]\nbase = "rocky9"\ntags = ["bm", "gpu"]\n'

pytestmark = pytest.mark.usefixtures("clean_lab")


def _deployed(cli, site: Site, tmp_path: Path, rows: list[list[str]]) -> None:
    header = ["Serial", "MAC", "OS", "BMC Address", "BMC Type", "GPU", "Notes"]
    assert cli("import", write_csv(tmp_path / "p.csv", [header, *rows])).exit_code == 0
    for stage in ("mounting", "networking", "installing", "deployed"):
        run = cli("advance", "--stage", stage, "--all", "--json")
        assert run.exit_code == 0, run.stdout


def _fake_site(site: Site, monkeypatch: pytest.MonkeyPatch, power: str = "") -> None:
    configure_fake_bmc(site, monkeypatch, power)
    site.write_config(GPU_OS)


def _row(serial: str, i: int, gpu: str = "0") -> list[str]:
    return [
        serial,
        f"52:54:00:ee:00:{i:02x}",
        "rocky9",
        f"10.0.3.{i}:623",
        "",
        gpu,
        "provisioning_auto",
    ]


def test_reinstall_goes_back_through_pxe_with_a_power_cycle(
    cli, site: Site, tmp_path, monkeypatch
) -> None:
    _fake_site(site, monkeypatch)  # auto_on_provisioning off: a reinstall power-cycles anyway
    _deployed(cli, site, tmp_path, [_row("SNR1", 1)])
    assert LAB.bmc("10.0.3.1:623").calls == []
    assert not (site.dir / "http" / "ks" / "SNR1.cfg").exists()
    monkeypatch.setenv(PASSWORD_VAR, "Reinstall2026")
    run = cli(
        "reinstall", "SNR1", "--os", "ubuntu-24.04", "--partition-scheme", "lvm_hba",
        "--root-password-env", PASSWORD_VAR, "--json",
    )  # fmt: skip
    assert run.exit_code == 0, run.stdout
    (result,) = json.loads(run.stdout)["results"]
    assert result["stage"] == "os_provisioning" and result["message"].startswith(
        "PXE boot: boot pxe"
    )
    bmc = LAB.bmc("10.0.3.1:623")
    assert bmc.bootdev == BootDevice.PXE and "power cycle" in bmc.calls
    assert "Reinstall2026" not in run.stdout + run.stderr
    user_data = site.dir / "http" / "ks" / "SNR1" / "user-data"
    assert user_data.is_file() and "$6$" in user_data.read_text()
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / "01-52-54-00-ee-00-01"
    assert "LOCALBOOT" not in entry.read_text()
    with site.db() as db:
        node = get_node(db, "SNR1")
        history = db.history(node.id)
        (event,) = [e for e in db.events(node.id) if e.kind == "reinstall"]
    assert node.os == "ubuntu-24.04" and node.install_options["partition_scheme"] == "LVM_HBA"
    assert [(h["from_stage"], h["to_stage"], h["command"]) for h in history[-2:]] == [
        ("deployed", "networking", "reinstall"),
        ("networking", "os_provisioning", "reinstall"),
    ]
    assert (
        event.detail
        == "OS rocky9 → ubuntu-24.04; options set: partition_scheme, root_password_hash"
    )


def test_reinstall_refusals_change_nothing(cli, site: Site, tmp_path, monkeypatch) -> None:
    _fake_site(site, monkeypatch, "max_nodes = 1\n")
    _deployed(cli, site, tmp_path, [_row("SNR1", 1), _row("SNR2", 2, gpu="2")])

    def refused(*args: str) -> str:
        run = cli("reinstall", *args, "--json")
        assert run.exit_code == 2, run.stdout
        return str(json.loads(run.stdout)["error"])

    assert "the node has none" in refused("SNR1", "--os", "rocky9-gpu")
    assert "unknown OS 'rocky10'" in refused("SNR1", "--os", "rocky10")
    assert "not an OpenSSH public key" in refused("SNR1", "--os", "rocky9", "--ssh-key", "x")
    assert "max_nodes = 1" in refused("SNR1", "SNR2", "--os", "rocky9")
    assert "needs at least 4 disks" in refused(
        "SNR2", "--os", "rocky9", "--partition-scheme", "LVM_RAID10"
    )
    assert "REINSTALL_UNSET" in refused(
        "SNR1", "--os", "rocky9", "--root-password-env", "REINSTALL_UNSET"
    )
    assert LAB.bmc("10.0.3.1:623").calls == [] and LAB.bmc("10.0.3.2:623").calls == []
    with site.db() as db:
        assert {get_node(db, s).stage for s in ("SNR1", "SNR2")} == {"deployed"}
        db.conn.execute("UPDATE nodes SET stage = 'mounting' WHERE serial = 'SNR1'")
    assert "SNR1 is mounting" in refused("SNR1", "--os", "rocky9")
    dry = cli("reinstall", "SNR2", "--os", "rocky9-gpu", "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["results"][0]["status"] == "planned"
    run = cli("reinstall", "SNR2", "--os", "rocky9-gpu", "--json")
    assert run.exit_code == 0, run.stdout
    assert LAB.bmc("10.0.3.2:623").bootdev == BootDevice.PXE


def test_library_reinstall_and_os_fits(site: Site, cli, tmp_path, monkeypatch) -> None:
    import bmprov

    _fake_site(site, monkeypatch)
    _deployed(cli, site, tmp_path, [_row("SNR3", 3, gpu="1")])
    with bmprov.Site.open(site.config_path, command="api") as lib:
        fits = {f.os: f.applies for f in lib.os_fits("SNR3")}
        assert fits["rocky9-gpu"] is True
        batch = lib.reinstall(["SNR3"], "rocky9-gpu")
        assert [r.stage for r in batch.results] == ["os_provisioning"]
        assert lib.node("SNR3").os == "rocky9-gpu"
