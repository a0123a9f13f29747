"""``bmprov ks validate``: pykickstart parses the rendered kickstarts for real."""

from __future__ import annotations

import json

import pytest

from bmprov.install.check import parse_kickstart
from tests.bootutil import edit_config, import_nodes

ROWS = [
    ["SN1", "52:54:00:00:00:01", "rocky9", "web1", "provisioning_auto"],
    ["SN2", "52:54:00:00:00:02", "alma9", "web2", "provisioning_auto"],
    ["SN3", "52:54:00:00:00:03", "debian12", "web3", "provisioning_auto"],
]


def test_samples_validate_every_kickstart_profile_and_scheme(site, cli) -> None:
    run = cli("ks", "validate", "--json")
    assert run.exit_code == 0, run.stdout
    results = json.loads(run.stdout)["results"]
    labels = {r["serial"] for r in results}
    for os_name in ("rocky9", "rhel9", "alma9"):
        for scheme in ("LVM_HBA", "LVM_RAID0", "LVM_RAID1", "LVM_RAID10", "LVM_RAID10S"):
            assert f"sample {os_name}/anaconda/{scheme}" in labels
    assert all(r["status"] == "ok" for r in results)


def test_named_and_all_nodes(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    run = cli("ks", "validate", "SN1", "--json")
    assert run.exit_code == 0
    assert [r["serial"] for r in json.loads(run.stdout)["results"]] == ["SN1"]
    run = cli("ks", "validate", "--all", "--json")
    statuses = {r["serial"]: r["status"] for r in json.loads(run.stdout)["results"]}
    assert statuses == {"SN1": "ok", "SN2": "ok", "SN3": "ok"}
    messages = {r["serial"]: r["message"] for r in json.loads(run.stdout)["results"]}
    assert "debconf-set-selections --checkonly" in messages["SN3"]
    assert "valid RHEL" not in messages["SN3"]  # a preseed is never called a kickstart


def test_invalid_kickstart_names_template_and_line(site, cli) -> None:
    import_nodes(site, cli, ROWS)
    tpl = site.dir / "tpl/kickstart"
    tpl.mkdir(parents=True)
    (tpl / "rocky9.j2").write_text("text\nrootpw --lock\npartx --bogus\n")
    edit_config(site, "dirs = []", 'dirs = ["tpl"]')
    run = cli("ks", "validate", "SN1", "SN2", "--json")
    assert run.exit_code == 1
    results = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    message = results["SN1"]["message"]
    assert "tpl/kickstart/rocky9.j2" in message
    assert "line 3 ('partx --bogus'): Unknown command: partx" in message
    assert results["SN2"]["status"] == "ok"


def test_parse_kickstart_catches_known_mistakes() -> None:
    parse_kickstart("text\nrootpw --lock\n", "RHEL9")
    with pytest.raises(ValueError, match="line 2"):
        parse_kickstart("text\npart / --size=40G\n", "RHEL9")
    with pytest.raises(ValueError, match="line 2"):
        parse_kickstart("text\ninstall\n", "RHEL9")
    with pytest.raises(ValueError, match="syntax version"):
        parse_kickstart("text\n", "ROCKY9")


def test_serials_and_all_together_is_bad_input(site, cli) -> None:
    run = cli("ks", "validate", "SN1", "--all")
    assert run.exit_code == 2
