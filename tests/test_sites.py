"""A host's ``site``: batch commands act on its nodes (``--all`` too); ``--all-sites`` widens
only what changes nothing on this host; lists, import and export see everything."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bmprov.sites import HOST_WORK
from bmprov.stages import REGISTRY
from tests.conftest import Site, set_top_level, write_csv

BOTH_BACKENDS = True


def two_site_sheet(site: Site) -> Path:
    rows = [["serial", "mac", "site", "notes"]]
    rows += [[f"A{i}", f"02:a0:00:00:00:{i:02x}", "dc1", "provisioning_auto"] for i in range(3)]
    rows += [[f"B{i}", f"02:b0:00:00:00:{i:02x}", "dc2", "provisioning_auto"] for i in range(2)]
    text = site.config_path.read_text(encoding="utf-8")
    state = re.search(r"^state = .*$", text, re.MULTILINE)
    assert state is not None
    set_top_level(site.config_path, f'{state.group(0)}\nsite = "dc1"')
    assert site.config.site == "dc1"
    return write_csv(site.dir / "two.csv", rows)


def stages(cli) -> dict[str, str]:
    run = cli("nodes", "list", "--json")
    return {n["serial"]: n["stage"] for n in json.loads(run.stdout)}


def refused(run, *words: str) -> None:
    """Exit 2, one clear line naming what was refused, no traceback."""
    assert run.exit_code == 2, run.stdout + run.stderr
    message = " ".join((run.stdout + run.stderr).split())
    assert "Traceback" not in message
    for word in words:
        assert word in message, message


def test_batches_stay_on_the_hosts_site_unless_widened(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    assert len(stages(cli)) == 5  # import and nodes list see every site
    assert cli("advance", "--stage", "mounting", "--from", "purchasing").exit_code == 0
    assert stages(cli) == {
        "A0": "mounting", "A1": "mounting", "A2": "mounting",
        "B0": "purchasing", "B1": "purchasing",
    }  # fmt: skip
    assert cli("advance", "--stage", "mounting", "--serial", "B0").exit_code == 0  # named: anywhere
    assert cli("advance", "--stage", "mounting", "--all-sites").exit_code == 0  # bookkeeping only
    assert set(stages(cli).values()) == {"mounting"}
    # --all is this host's site: another site's DHCP reservations are never written here
    assert cli("advance", "--stage", "networking", "--all").exit_code == 0
    assert stages(cli) == {
        "A0": "os_provisioning", "A1": "os_provisioning", "A2": "os_provisioning",
        "B0": "mounting", "B1": "mounting",
    }  # fmt: skip
    reservations = json.loads((site.dir / "dhcp-reservations.json").read_text())
    assert "B0" not in json.dumps(reservations) and "02:b0" not in json.dumps(reservations)


def test_moves_that_touch_this_host_refuse_other_sites(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    assert cli("advance", "--stage", "mounting", "--all-sites").exit_code == 0
    before = stages(cli)
    for selection in (
        ["--all-sites"],
        ["--site", "dc2"],
        ["--serial", "B1"],
        ["-s", "A0", "-s", "B0"],
    ):
        run = cli("advance", "--stage", "networking", *selection)
        refused(run, "networking", "site dc2", "DHCP", "dc1")
        run = cli("advance", "--stage", "networking", "--dry-run", *selection)
        refused(run, "networking", "site dc2")
    assert stages(cli) == before  # nothing half-done
    refused(cli("advance", "--stage", "mounting", "--site", "dc2", "--all-sites"), "not both")


def test_every_entry_action_is_named_as_host_work() -> None:
    assert set(HOST_WORK) == set(REGISTRY)


def test_pxe_render_writes_this_sites_nodes_only(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    pxelinux = site.dir / "tftpboot" / "pxelinux.cfg"
    want = [f"01-02-a0-00-00-00-0{i}" for i in range(3)]
    for args in ([], ["--all"], ["--site", "dc1"]):
        assert cli("pxe", "render", *args).exit_code == 0
        assert sorted(p.name for p in pxelinux.glob("01-*")) == want
    refused(cli("pxe", "render", "--all-sites"), "--all-sites", "boot tree", "dc1")
    refused(cli("pxe", "render", "--site", "dc2"), "--site dc2", "boot tree")
    assert sorted(p.name for p in pxelinux.glob("01-*")) == want


def test_power_reads_any_site_but_commands_only_this_one(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    run = cli("power", "status", "--all-sites", "--dry-run", "--json")
    assert run.exit_code != 2, run.stdout + run.stderr
    assert {r["serial"] for r in json.loads(run.stdout)["results"]} == {
        "A0",
        "A1",
        "A2",
        "B0",
        "B1",
    }
    run = cli("power", "status", "--all", "--dry-run", "--json")
    assert {r["serial"] for r in json.loads(run.stdout)["results"]} == {"A0", "A1", "A2"}
    for command in (["power", "on"], ["power", "off"], ["power", "cycle"], ["boot", "pxe"]):
        refused(cli(*command, "--all-sites", "--dry-run"), "site dc2", "BMCs", "dc1")
        refused(cli(*command, "-s", "B0", "--dry-run"), "B0", "BMCs")


def test_reconcile_compares_this_sites_nodes_only(site: Site, cli) -> None:
    assert cli("import", two_site_sheet(site)).exit_code == 0
    assert cli("advance", "--stage", "mounting", "--all-sites").exit_code == 0
    assert cli("advance", "--stage", "networking", "--all").exit_code == 0
    run = cli("reconcile", "--no-bmc", "--json")
    assert run.exit_code == 0, run.stdout
    assert "B0" not in run.stdout and "B1" not in run.stdout
    refused(cli("reconcile", "--no-bmc", "--all-sites"), "--all-sites", "DHCP server", "dc1")
    refused(cli("reconcile", "--no-bmc", "--site", "dc2"), "--site dc2")
