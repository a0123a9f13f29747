"""Completion and reinstall against a real BMC simulator (pyghmi-based labbmc, tests/sims)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bmprov.drivers.ipmi import logout_all
from tests.conftest import Site, write_csv
from tests.sims.fixtures import LABBMC_PORT, configure_bmc


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    """This module's simulators are new processes on the ports test_ipmi.py's used: the
    process-wide IPMI session cache would hand back a session the old simulator held, and the
    first call would hang to its deadline (5 s, seen in a full run)."""
    logout_all(1.0)
    yield
    logout_all(1.0)


@pytest.mark.peer
def test_real_bmc_disk_on_completion_and_cycle_on_reinstall(
    cli, site: Site, tmp_path, monkeypatch, labbmc
) -> None:
    """A pyghmi BMC simulator (tests/sims/labbmc) sees every step, checked out-of-band."""
    labbmc.reset("on")
    configure_bmc(site, monkeypatch, "auto_on_provisioning = true\n")
    port = LABBMC_PORT + 2
    row = [
        "SNREAL",
        "52:54:00:ee:01:01",
        "rocky9",
        f"127.0.0.1:{port}",
        "ipmi",
        "",
        "provisioning_auto",
    ]
    header = ["Serial", "MAC", "OS", "BMC Address", "BMC Type", "GPU", "Notes"]
    assert cli("import", write_csv(tmp_path / "p.csv", [header, row])).exit_code == 0
    for stage in ("mounting", "networking", "installing"):
        run = cli("advance", "--stage", stage, "--all", "--json")
        assert run.exit_code == 0, run.stdout
    state = labbmc.state()[port]
    assert state["bootdev"] == "network" and state["counters"]["cycle"] == 1
    run = cli("complete", "SNREAL", "--json")
    assert run.exit_code == 0, run.stdout
    state = labbmc.state()[port]
    assert state["bootdev"] == "hd"  # (the simulator does not record the persistent flag)
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / "01-52-54-00-ee-01-01"
    assert "LOCALBOOT" in entry.read_text()
    (result,) = json.loads(run.stdout)["results"]
    assert "boot device: boot disk (persistent, verified)" in result["message"]
    run = cli("reinstall", "SNREAL", "--os", "debian12", "--json")
    assert run.exit_code == 0, run.stdout
    state = labbmc.state()[port]
    assert state["bootdev"] == "network" and state["counters"]["cycle"] == 2
    assert state["power"] == "on"
