"""A host's ``site``: batch commands act on its nodes unless widened; lists see everything."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Site, set_top_level, write_csv


def two_site_sheet(site: Site) -> Path:
    rows = [["serial", "mac", "site", "notes"]]
    rows += [[f"A{i}", f"02:a0:00:00:00:{i:02x}", "dc1", "provisioning_auto"] for i in range(3)]
    rows += [[f"B{i}", f"02:b0:00:00:00:{i:02x}", "dc2", "provisioning_auto"] for i in range(2)]
    set_top_level(site.config_path, 'state = "bmprov.sqlite"\nsite = "dc1"')
    assert site.config.site == "dc1"
    return write_csv(site.dir / "two.csv", rows)


def stages(cli) -> dict[str, str]:
    run = cli("nodes", "list", "--json")
    return {n["serial"]: n["stage"] for n in json.loads(run.stdout)}


def test_batches_stay_on_the_hosts_site_unless_widened(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    assert len(stages(cli)) == 5  # import and nodes list see every site
    assert cli("advance", "--stage", "mounting", "--from", "purchasing").exit_code == 0
    assert stages(cli) == {
        "A0": "mounting", "A1": "mounting", "A2": "mounting",
        "B0": "purchasing", "B1": "purchasing",
    }  # fmt: skip
    assert cli("advance", "--stage", "mounting", "--serial", "B0").exit_code == 0  # named: anywhere
    assert cli("advance", "--stage", "mounting", "--site", "dc2").exit_code == 0
    assert set(stages(cli).values()) == {"mounting"}
    assert cli("advance", "--stage", "networking", "--all").exit_code == 0  # --all: every site
    assert set(stages(cli).values()) == {"os_provisioning"}


def test_pxe_render_writes_this_sites_nodes_only(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    pxelinux = site.dir / "tftpboot" / "pxelinux.cfg"
    assert cli("pxe", "render").exit_code == 0
    assert sorted(p.name for p in pxelinux.glob("01-*")) == [
        f"01-02-a0-00-00-00-0{i}" for i in range(3)
    ]
    assert cli("pxe", "render", "--all").exit_code == 0
    assert len(list(pxelinux.glob("01-*"))) == 5
