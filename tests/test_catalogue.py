"""The OS catalogue: profile tags and minimums, node facts from the sheet, `bmprov os list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bmprov import facts
from bmprov.boot.osprofiles import build_profiles
from bmprov.catalogue import fit
from bmprov.errors import ConfigError
from bmprov.facts import Facts
from tests.conftest import Site, write_csv

CATALOGUE = """
[boot.os.rocky9-gpu]
base = "rocky9"
tags = ["bm", "gpu"]
min_ram_gb = 128

[boot.os.ubuntu-vgpu]
base = "ubuntu-24.04"
tags = ["bm", "vgpu"]
min_disk_gb = 900

[boot.os.guest-image]
base = "rocky9"
tags = ["vm"]
"""


@pytest.mark.parametrize(
    ("cell", "gb"),
    [("512", 512), ("512 GB", 512), ("1 TB", 1024), ("1.5tb", 1536), ("960G", 960), ("64.0", 64)],
)
def test_sizes(cell: str, gb: int) -> None:
    assert facts.size_gb(cell) == gb


@pytest.mark.parametrize("cell", ["", "0", "lots", "12 PB", "1;rm", "5\n"])
def test_bad_sizes(cell: str) -> None:
    with pytest.raises(ValueError):
        facts.ram_gb(cell)


def test_gpu_cells() -> None:
    assert [facts.gpus(c) for c in ("2", "yes", "No", "none", "0")] == [2, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="GPU count"):
        facts.gpus("A100")


def test_fit_rules() -> None:
    profiles = build_profiles(
        {
            "gpu": {"base": "rocky9", "tags": ["bm", "gpu"], "min_ram_gb": 128},
            "vm": {"base": "rocky9", "tags": ["vm"]},
            "big": {"base": "rocky9", "min_disk_gb": 900},
        }
    )
    small = Facts(ram_gb=64, disk_gb=480, gpus=0)
    assert fit(profiles["rocky9"], small).applies
    no = fit(profiles["gpu"], small)
    assert not no.applies
    assert no.reasons == (
        "a gpu image needs a GPU; the node has none",
        "needs 128 GB RAM; the node has 64 GB",
    )
    assert fit(profiles["vm"], small).reasons == ("for vm only, not bare metal",)
    assert fit(profiles["gpu"], Facts(ram_gb=256, gpus=4)).applies
    unknown = fit(profiles["big"], Facts())
    assert unknown.applies and "not known (not checked)" in unknown.notes[0]
    assert not fit(profiles["gpu"], Facts(ram_gb=256)).applies  # GPUs unknown: refused


def test_bad_catalogue_keys_are_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"os.x.tags"):
        build_profiles({"x": {"tags": ["metal"]}})
    with pytest.raises(ValueError, match=r"os.x.min_ram_gb"):
        build_profiles({"x": {"min_ram_gb": 0}})


def test_schema_knows_the_catalogue(site: Site) -> None:
    site.write_config(CATALOGUE)
    assert site.config.section("boot")["os"]["rocky9-gpu"]["min_ram_gb"] == 128  # validated
    site.write_config('[boot.os.bad]\ntags = ["metal"]\n')
    with pytest.raises(ConfigError, match="tags"):
        site.config  # noqa: B018


def _import(cli, tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "p.csv",
        [
            ["Serial", "MAC", "OS", "RAM", "Disk Size", "GPU", "Notes"],
            ["SNG1", "52:54:00:cc:00:01", "rocky9", "512 GB", "1.92 TB", "4", "provisioning_auto"],
            ["SNS1", "52:54:00:cc:00:02", "rocky9", "64", "480", "no", "provisioning_auto"],
            ["SNU1", "52:54:00:cc:00:03", "rocky9", "", "", "", "provisioning_auto"],
        ],
    )
    run = cli("import", sheet)
    assert run.exit_code == 0, run.stdout + run.stderr


def test_os_list_json_and_table(cli, site: Site, tmp_path: Path) -> None:
    site.write_config(CATALOGUE)
    _import(cli, tmp_path)
    doc = json.loads(cli("os", "list", "SNG1", "--json").stdout)
    assert doc["facts"] == {"ram_gb": 512, "disk_gb": 1966, "disks": None, "gpus": 4}
    by = {o["os"]: o for o in doc["os"]}
    assert by["rocky9-gpu"]["applies"] and by["ubuntu-vgpu"]["applies"]
    assert not by["guest-image"]["applies"]
    small = {o["os"]: o for o in json.loads(cli("os", "list", "SNS1", "--json").stdout)["os"]}
    assert small["rocky9"]["applies"]
    assert small["rocky9-gpu"]["reasons"] == [
        "a gpu image needs a GPU; the node has none",
        "needs 128 GB RAM; the node has 64 GB",
    ]
    assert small["ubuntu-vgpu"]["reasons"][-1] == "needs 900 GB install disk; the node has 480 GB"
    run = cli("os", "list", "SNU1")
    assert run.exit_code == 0
    assert "rocky9-gpu" in run.stdout and "none known" in run.stdout
    bad = cli("os", "list", "NOPE")
    assert bad.exit_code == 2


def test_bad_fact_cell_is_located(cli, site: Site, tmp_path: Path) -> None:
    sheet = write_csv(
        tmp_path / "p.csv",
        [["Serial", "MAC", "RAM"], ["SNB1", "52:54:00:cc:00:09", "plenty"]],
    )
    run = cli("import", sheet)
    assert run.exit_code == 2
    assert "p.csv:2:RAM:" in run.stderr and "not a RAM size" in run.stderr
