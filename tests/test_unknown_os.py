"""An OS with no profile is never installed as another one (issue 9, item 1).

Only an empty OS cell falls back to ``[boot] default_os``. A name with no profile is imported
with a located warning, fails networking (before it gets an address), fails ``pxe render``,
and is listed by ``bmprov check``, until the config maps it with ``[boot.os.NAME] base``.
"""

from __future__ import annotations

import json

from tests.bootutil import set_stage
from tests.conftest import write_csv

HEADER = ["Serial", "MAC", "OS", "Hostname", "Notes"]
ROWS = [
    ["SNW1", "52:54:00:00:09:01", "ubuntu_webserver", "web1", "provisioning_auto"],
    ["SNW2", "52:54:00:00:09:02", "ubuntu", "web2", "provisioning_auto"],
    ["SNW3", "52:54:00:00:09:03", "", "web3", "provisioning_auto"],
    ["SNW4", "52:54:00:00:09:04", "debian12", "web4", "provisioning_auto"],
    ["SNW5", "52:54:00:00:09:05", "windows2022", "web5", "installed by the vendor"],
]
MAPPING = '[boot.os.ubuntu_webserver]\nbase = "ubuntu-24.04"'


def _import(site, cli, *args: str):
    sheet = write_csv(site.dir / "sheet.csv", [HEADER, *ROWS])
    return sheet, cli("import", sheet, *args)


def test_import_warns_with_the_cell_and_the_known_names(site, cli) -> None:
    sheet, dry = _import(site, cli, "--dry-run", "--json")
    assert dry.exit_code == 0
    warnings = json.loads(dry.stdout)["warnings"]
    assert [(w["row"], w["column"]) for w in warnings] == [(2, "OS"), (3, "OS")]
    assert warnings[0]["text"].startswith(f"{sheet}:2:OS: unknown OS 'ubuntu_webserver' (known:")
    assert "debian12" in warnings[0]["message"] and "ubuntu-24.04" in warnings[0]["message"]
    run = cli("import", sheet)
    assert run.exit_code == 0  # imported all the same: the sheet comes long before networking
    lines = run.stderr.splitlines()
    assert f"{sheet}:2:OS: unknown OS 'ubuntu_webserver' (known: alma9" in lines[0]
    assert f"{sheet}:3:OS: unknown OS 'ubuntu' (known:" in lines[1]
    assert "did you mean 'ubuntu-24.04'?" in lines[1]
    assert len(lines) == 2  # the unmarked row's OS is not bmprov's to install
    assert "windows2022" not in run.stderr
    show = json.loads(cli("nodes", "show", "SNW1", "--json").stdout)
    assert show["os"] == "ubuntu_webserver"
    site.write_config(MAPPING)
    again = cli("import", sheet)
    assert again.exit_code == 0 and ":2:OS:" not in again.stderr and ":3:OS:" in again.stderr


def test_networking_fails_the_node_check_lists_it_until_mapped(site, cli) -> None:
    _import(site, cli)
    check = cli("check", "--json")
    assert check.exit_code == 2
    (names,) = [c for c in json.loads(check.stdout)["checks"] if c["name"] == "node OS names"]
    assert names["problem"].startswith("2 node(s) name an OS with no profile")
    assert "SNW1: unknown OS 'ubuntu_webserver'" in names["problem"]
    assert "SNW2: unknown OS 'ubuntu'" in names["problem"]
    assert cli("advance", "--stage", "mounting", "--all").exit_code == 0
    run = cli("advance", "--stage", "networking", "--all", "--json")
    assert run.exit_code == 1
    results = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    assert results["SNW1"]["status"] == "failed" and results["SNW1"]["step"] == "os"
    assert results["SNW1"]["message"].startswith("unknown OS 'ubuntu_webserver' (known:")
    assert results["SNW2"]["step"] == "os"
    assert {results[s]["status"] for s in ("SNW3", "SNW4")} == {"ok"}
    ks = site.dir / "http" / "ks"
    assert "(rocky9)" in (ks / "SNW3.cfg").read_text()  # an empty OS cell: default_os
    assert not (ks / "SNW1").exists() and not (ks / "SNW1.cfg").exists()
    nodes = {n["serial"]: n for n in json.loads(cli("nodes", "list", "--json").stdout)}
    assert nodes["SNW1"]["ip"] is None  # failed before it got an address
    reservations = json.loads((site.dir / "dhcp-reservations.json").read_text())["reservations"]
    assert {r["mac"] for r in reservations} == {"52:54:00:00:09:03", "52:54:00:00:09:04"}
    # the site maps its name: check is clean for it, a re-run installs it as Ubuntu 24.04
    site.write_config(MAPPING)
    names = [c for c in json.loads(cli("check", "--json").stdout)["checks"] if "OS" in c["name"]]
    assert "SNW1" not in names[0]["problem"] and "SNW2" in names[0]["problem"]
    run = cli("advance", "--stage", "networking", "--serial", "SNW1", "--json")
    assert run.exit_code == 0, run.stdout
    user_data = (ks / "SNW1" / "user-data").read_text()
    assert "autoinstall for SNW1 (ubuntu_webserver)" in user_data


def test_pxe_render_fails_a_node_whose_os_lost_its_profile(site, cli) -> None:
    site.write_config(MAPPING)
    _import(site, cli)
    set_stage(site, "os_provisioning", ["SNW1", "SNW3"])
    assert cli("pxe", "render").exit_code == 0
    site.config_path.write_text(site.config_path.read_text().replace(MAPPING, ""))
    run = cli("pxe", "render", "--json")
    assert run.exit_code == 1
    (failed,) = [r for r in json.loads(run.stdout)["results"] if r["status"] == "failed"]
    assert failed["serial"] == "SNW1" and "unknown OS 'ubuntu_webserver'" in failed["message"]


def test_ks_validate_reports_the_node_instead_of_guessing(site, cli) -> None:
    _import(site, cli)
    run = cli("ks", "validate", "--json")  # samples, one node per profile, SNW1 and SNW2
    assert run.exit_code == 1
    failed = {r["serial"]: r for r in json.loads(run.stdout)["results"] if r["status"] == "failed"}
    assert set(failed) == {"SNW1", "SNW2"}
    assert "unknown OS 'ubuntu_webserver'" in failed["SNW1"]["message"]
    # the unmarked row (installed by the vendor) is not bmprov's to install, unless named
    named = cli("ks", "validate", "SNW5", "--json")
    assert named.exit_code == 1 and "unknown OS 'windows2022'" in named.stdout
