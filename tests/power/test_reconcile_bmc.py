"""The BMC plane of ``bmprov reconcile`` against pyghmi-based simulated BMCs (labbmc): a
machine powered off, a BMC gone; a read-only run changes no BMC; nothing is ever forced."""

from __future__ import annotations

import json
import time

import pytest

from bmprov.drivers import BootDevice, PowerAction
from bmprov.drivers.fake import LAB
from tests.power.test_ipmi import driver
from tests.sims.fixtures import DEAD_PORT, add_nodes, configure_bmc

pytestmark = pytest.mark.peer


def run(cli, *args: str) -> tuple[int, list[dict]]:
    result = cli("reconcile", "--json", *args)
    doc = json.loads(result.stdout)
    return result.exit_code, [f for f in doc["findings"] if f["plane"] == "bmc"]


def test_powered_off_and_gone_bmcs_are_reported_never_changed(
    site, cli, monkeypatch, labbmc
) -> None:
    configure_bmc(site, monkeypatch, "concurrency = 4")
    # a live simulator answered in 5 s+ on the 2-core box at load 13: give it room
    text = site.config_path.read_text().replace("timeout = 5.0", "timeout = 20.0", 1)
    site.config_path.write_text(text)
    labbmc.reset(power="on")
    on, off = labbmc.ports[0], labbmc.ports[1]
    with site.db() as db:
        add_nodes(
            db,
            [
                {"serial": "B1", "bmc_address": f"127.0.0.1:{on}", "bmc_type": "ipmi"},
                {"serial": "B2", "bmc_address": f"127.0.0.1:{off}", "bmc_type": "ipmi"},
                {"serial": "B3", "bmc_address": f"127.0.0.1:{DEAD_PORT}", "bmc_type": "ipmi"},
                {
                    "serial": "B4",
                    "bmc_address": f"127.0.0.1:{labbmc.ports[2]}",
                    "bmc_type": "ipmi",
                    "stage": "mounting",
                },
            ],
            stage="deployed",
        )
    code, findings = run(cli)
    assert (code, findings) == (1, [f for f in findings if f["node"] == "B3"])
    assert findings[0]["kind"] == "unreachable"
    driver(off).set_power(PowerAction.OFF)  # switched off behind bmprov's back
    before = labbmc.state()
    start = time.monotonic()
    code, findings = run(cli, "--fix")
    took = time.monotonic() - start
    kinds = {(f["node"], f["kind"], f["fixed"]) for f in findings}
    assert kinds == {("B2", "power", False), ("B3", "unreachable", False)}
    assert code == 1
    after = labbmc.state()
    assert after[off]["power"] == "off"  # reported, never powered on
    assert {p: s["counters"] for p, s in after.items()} == {
        p: s["counters"] for p, s in before.items()
    }
    assert took < 30  # a dead BMC (port unreachable) fails at once; no call outlives its deadline
    code, findings = run(cli, "--no-bmc")
    assert (code, findings) == (0, [])


def test_deployed_node_left_on_persistent_pxe(site, cli, monkeypatch) -> None:
    configure_bmc(site, monkeypatch)
    text = site.config_path.read_text().replace("[bmc]\n", '[bmc]\ndriver = "fake"\n', 1)
    site.config_path.write_text(text)
    LAB.reset()
    with site.db() as db:
        add_nodes(db, [{"serial": "F1", "bmc_address": "10.0.0.1:623"}], stage="deployed")
    bmc = LAB.bmc("10.0.0.1:623")
    bmc.power = "on"
    bmc.bootdev, bmc.persistent = BootDevice.PXE, True
    code, findings = run(cli)
    assert code == 1
    assert [(f["node"], f["kind"], f["actual"]) for f in findings] == [
        ("F1", "boot_device", "pxe, persistent")
    ]
    assert (bmc.bootdev, bmc.persistent) == (BootDevice.PXE, True)
    LAB.reset()
