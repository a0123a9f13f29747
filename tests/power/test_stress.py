"""200 simulated BMCs (4 labbmc processes) through PXE + power cycle, 20 times in a row.

Every round must finish (no hang: each round has a watchdog), every node must report ok, and
every simulated BMC must be in the expected state, read out-of-band over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bmprov.drivers import BootDevice, PowerAction
from bmprov.drivers.deadline import call_with_deadline
from bmprov.nodes import list_nodes
from bmprov.power import PowerRequest, PowerSettings, run_power
from tests.sims.fixtures import STRESS_HTTP, STRESS_PORT, LabBmcFarm, add_nodes, configure_bmc

pytestmark = [pytest.mark.peer, pytest.mark.slow]
ROUNDS, COUNT = 20, 200


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabBmcFarm]:
    farm = LabBmcFarm(STRESS_PORT, COUNT, STRESS_HTTP, 4, tmp_path_factory.mktemp("stress"))
    try:
        yield farm.start()
    finally:
        farm.stop()


def test_200_bmcs_20_rounds(site, monkeypatch, farm) -> None:
    configure_bmc(site, monkeypatch)
    with site.db() as db:
        add_nodes(
            db,
            [
                {"serial": f"s{port}", "bmc_address": f"127.0.0.1:{port}", "bmc_type": "ipmi"}
                for port in farm.ports
            ],
        )
        nodes = list_nodes(db)
    config = site.config
    request = PowerRequest(PowerAction.CYCLE, BootDevice.PXE)
    walls, retransmits = [], 0
    for round_no in range(ROUNDS):
        was_on = round_no % 2 == 0  # alternate: raw chassis cycle / power-on of an off node
        farm.reset("on" if was_on else "off")
        start = time.monotonic()
        batch = call_with_deadline(
            lambda: run_power(config, nodes, request, settings=PowerSettings()), 30
        )
        walls.append(time.monotonic() - start)
        failed = [(r.serial, r.message) for r in batch.results if r.status != "ok"]
        assert not failed, f"round {round_no}: {failed[:5]}"
        state = farm.state()
        counter = "cycle" if was_on else "on"
        bad = [
            port
            for port in farm.ports
            if (state[port]["power"], state[port]["bootdev"], state[port]["counters"][counter])
            != ("on", "network", 1)
        ]
        assert not bad, f"round {round_no}: {len(bad)} BMCs wrong, e.g. {state[bad[0]]}"
        retransmits += sum(value["counters"]["retransmit"] for value in state.values())
    print(
        f"\n200 BMCs x {ROUNDS} rounds: wall per round min {min(walls):.2f} s, "
        f"max {max(walls):.2f} s; {retransmits} retransmitted request(s) answered from cache"
    )
