"""Entering deployed: PXE entries switch to local boot, and persistent PXE goes back to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmprov.drivers.base import BootDevice
from bmprov.drivers.fake import LAB
from tests.conftest import Site, write_csv

MAC = "52:54:00:aa:00:01"


def _installing(cli, site: Site, tmp_path: Path) -> Path:
    sheet = write_csv(
        tmp_path / "p.csv",
        [
            ["Serial", "MAC", "OS", "BMC Address", "Notes"],
            ["SNDEP1", MAC, "rocky9", "192.0.2.10:623", "provisioning_auto"],
        ],
    )
    assert cli("import", sheet).exit_code == 0
    for stage in ("mounting", "networking", "installing"):
        run = cli("advance", "--stage", stage, "--all", "--json")
        assert run.exit_code == 0, run.stdout
    assert (site.dir / "http" / "ks" / "SNDEP1.cfg").is_file()
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / ("01-" + MAC.replace(":", "-"))
    assert "LOCALBOOT" not in entry.read_text()  # an install entry while installing
    return entry


def test_deployed_switches_every_entry_to_local_boot(cli, site: Site, tmp_path: Path) -> None:
    entry = _installing(cli, site, tmp_path)
    run = cli("advance", "--stage", "deployed", "--all", "--json")
    assert run.exit_code == 0
    (result,) = json.loads(run.stdout)["results"]
    assert result["stage"] == "deployed" and "local boot" in result["message"]
    assert "LOCALBOOT" in entry.read_text()
    grub = site.dir / "tftpboot" / "grub" / ("grub.cfg-01-" + MAC.replace(":", "-"))
    assert "chainloader" in grub.read_text()
    # the install file (root password hash) leaves the HTTP tree, and a render keeps it away
    assert "install file removed" in result["message"]
    kickstart = site.dir / "http" / "ks" / "SNDEP1.cfg"
    assert not kickstart.exists()
    assert cli("pxe", "render").exit_code == 0
    assert not kickstart.exists()


def test_persistent_pxe_is_set_back_to_disk(
    cli, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = site.config_path.read_text()
    text = text.replace('driver = "ipmi"', 'driver = "fake"', 1)
    text = text.replace("provisioning_persistent = false", "provisioning_persistent = true")
    site.config_path.write_text(text)
    monkeypatch.setenv("BMPROV_BMC_PASSWORD", "not-a-real-one")
    _installing(cli, site, tmp_path)
    bmc = LAB.bmc("192.0.2.10:623")
    bmc.bootdev, bmc.persistent = BootDevice.PXE, True
    run = cli("advance", "--stage", "deployed", "--serial", "SNDEP1", "--json")
    assert run.exit_code == 0, run.stdout
    assert (bmc.bootdev, bmc.persistent) == (BootDevice.DISK, True)
    assert "not-a-real-one" not in run.stdout
