"""Waves and the blast-radius guard: the fake driver, a fake clock (no real sleeping)."""

from __future__ import annotations

import json

import pytest

from bmprov.drivers import BootDevice, PowerAction
from bmprov.drivers.fake import LAB
from bmprov.errors import InputError
from bmprov.nodes import list_nodes
from bmprov.power import PowerRequest, PowerSettings, run_power
from bmprov.waves import check_blast_radius, in_waves
from tests.sims.fixtures import add_nodes, configure_fake_bmc

pytestmark = pytest.mark.usefixtures("clean_lab")


def _cycled(i: int) -> int:
    return LAB.bmc(f"10.0.1.{i}:623").calls.count("power cycle")


def _untouched() -> bool:
    return all(not LAB.bmc(f"10.0.1.{i}:623").calls for i in range(1, 8))


class FakeClock:
    """Records sleeps instead of sleeping; ``marks`` notes how many BMCs were cycled at each."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.marks: list[int] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.marks.append(sum(_cycled(i) for i in range(1, 8)))


@pytest.fixture
def farm(site, monkeypatch):
    """Seven nodes with fake BMCs (10.0.1.1..7) and one without."""
    configure_fake_bmc(site, monkeypatch, "wave_size = 3\nwave_interval = 45\nmax_nodes = 5\n")
    rows = [{"serial": f"w{i}", "bmc_address": f"10.0.1.{i}:623"} for i in range(1, 8)]
    with site.db() as db:
        add_nodes(db, [*rows, {"serial": "w8"}])
    return site


def test_in_waves_splits_and_sleeps_between_only() -> None:
    clock = FakeClock()
    assert [len(w) for w in in_waves(list(range(7)), 3, 10, clock)] == [3, 3, 1]
    assert clock.sleeps == [10, 10]
    clock = FakeClock()
    assert list(in_waves([1, 2], 3, 10, clock)) == [[1, 2]]
    assert list(in_waves([], 3, 10, clock)) == []
    assert list(in_waves([1, 2, 3, 4], 0, 10, clock)) == [[1, 2, 3, 4]]
    assert clock.sleeps == []


def test_pxe_cycle_goes_in_waves(farm) -> None:
    with farm.db() as db:
        nodes = list_nodes(db)
    clock = FakeClock()
    settings = PowerSettings(concurrency=8, wave_size=3, wave_interval=45)
    request = PowerRequest(PowerAction.CYCLE, BootDevice.PXE)
    batch = run_power(farm.config, nodes, request, settings=settings, clock=clock)
    assert [r.status for r in batch.results].count("ok") == 7
    assert clock.sleeps == [45, 45]  # 8 nodes: waves of 3, 3, 2
    # every BMC of a wave was cycled before the clock waited for the next one
    assert clock.marks[0] == 3 and clock.marks[1] == 6
    # no waves for what does not PXE-boot (status, boot device alone, power off)
    clock = FakeClock()
    run_power(farm.config, nodes, PowerRequest(PowerAction.OFF), settings=settings, clock=clock)
    run_power(
        farm.config, nodes, PowerRequest(bootdev=BootDevice.PXE), settings=settings, clock=clock
    )
    assert clock.sleeps == []


def test_guard_message_and_override() -> None:
    check_blast_radius(50, 50, None, "power-cycle")
    with pytest.raises(
        InputError,
        match=r"power-cycle 51 node\(s\), more than \[power\] max_nodes = 50.*--max-nodes 51",
    ):
        check_blast_radius(51, 50, None, "power-cycle")
    check_blast_radius(51, 50, 60, "power-cycle")
    with pytest.raises(InputError, match="more than --max-nodes 40"):
        check_blast_radius(51, 50, 40, "reinstall")


def test_cli_power_cycle_over_max_nodes_needs_the_option(cli, farm) -> None:
    run = cli("power", "cycle", "--all", "--json")
    assert run.exit_code == 2
    doc = json.loads(run.stdout)
    assert "max_nodes = 5" in doc["error"] and "--max-nodes 8" in doc["error"]
    assert _untouched()  # nothing done
    # status and off are not guarded; a confirmed cycle runs (waves: the real clock, 0 s here)
    assert cli("power", "status", "--all").exit_code == 0
    farm.write_config("")
    text = farm.config_path.read_text().replace("wave_interval = 45", "wave_interval = 0")
    farm.config_path.write_text(text)
    run = cli("power", "cycle", "--bootdev", "pxe", "--all", "--max-nodes", "8", "--json")
    assert run.exit_code == 0, run.stdout
    assert LAB.bmc("10.0.1.7:623").bootdev == "pxe"


def test_advance_into_os_provisioning_is_guarded_when_it_powers(cli, farm) -> None:
    with farm.db() as db:
        db.conn.execute("UPDATE nodes SET stage = 'networking'")
    # automatic power off: nothing is power-cycled, so no guard
    run = cli("advance", "--stage", "os_provisioning", "--all", "--dry-run")
    assert run.exit_code == 0, run.stdout
    text = farm.config_path.read_text().replace(
        "[power]\n", "[power]\nauto_on_provisioning = true\n"
    )
    farm.config_path.write_text(text)
    run = cli("advance", "--stage", "os_provisioning", "--all", "--json")
    assert run.exit_code == 2
    assert "power-cycle 8 node(s)" in json.loads(run.stdout)["error"]
    with farm.db() as db:
        assert {n.stage for n in list_nodes(db)} == {"networking"}
    run = cli("advance", "--stage", "os_provisioning", "--serial", "w1", "--serial", "w2", "--json")
    assert run.exit_code == 0, run.stdout
    assert LAB.bmc("10.0.1.1:623").bootdev == "pxe"
