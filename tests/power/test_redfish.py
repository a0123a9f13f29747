"""The Redfish driver against sushy-tools' emulator (power delay pinned to 0).

The effect is checked in the emulator's own state store (its sqlite file), not through the
driver's reads.
"""

from __future__ import annotations

import socket
import time

import pytest

from bmprov.credentials import BmcCredentials
from bmprov.drivers import BmcTarget, BootDevice, DriverSettings, PowerAction, PowerState
from bmprov.drivers.redfish import RedfishDriver
from bmprov.errors import DriverError
from bmprov.secret import Secret
from tests.sims.fixtures import DEAD_PORT, PASSWORD, REDFISH_PORT, TCP_BLACKHOLE_PORT, USER

pytestmark = pytest.mark.peer


def driver(
    port: int,
    password: str = PASSWORD,
    host: str = "127.0.0.1",
    system: str = "",
    timeout: float = 5.0,
) -> RedfishDriver:
    options = {"scheme": "http", **({"system_id": system} if system else {})}
    settings = DriverSettings(timeout=timeout, connect_timeout=1.0, power_wait=5.0, options=options)
    creds = BmcCredentials(USER, Secret(password))
    return RedfishDriver(BmcTarget(f"RF{port}", "redfish", host, port, creds), settings)


def test_power_and_boot_override(redfish) -> None:
    bmc = driver(redfish.port)
    system = "00000000-0000-4000-8000-000000000000"
    assert bmc.get_power() == PowerState.OFF
    assert bmc.set_power(PowerAction.ON) == "powered on"
    assert redfish.system(0)["power_state"] == "On"
    assert redfish.system(1)["power_state"] == "Off"  # the other system is untouched

    result = bmc.set_boot_device(BootDevice.PXE)
    assert result.verified
    assert redfish.system(0)["boot_device"] == "Pxe"
    assert bmc.set_power(PowerAction.CYCLE) == "power-cycled (ForceRestart)"  # no PowerCycle
    assert redfish.system(0)["power_state"] == "On"

    assert bmc.set_boot_device(BootDevice.DISK, persistent=True).verified
    assert redfish.system(0)["boot_device"] == "Hdd"
    assert bmc.set_power(PowerAction.OFF) == "powered off"
    assert redfish.system(0)["power_state"] == "Off"
    assert bmc.set_power(PowerAction.CYCLE) == "was off: powered on"
    assert redfish.system(0)["power_state"] == "On"
    named = driver(redfish.port, system=system)
    assert named.set_power(PowerAction.OFF) == "powered off"
    bmc.close()


def failure(bmc: RedfishDriver) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(DriverError) as info:
        bmc.get_power()
    return str(info.value), time.monotonic() - start


def test_wrong_password(redfish) -> None:
    message, took = failure(driver(redfish.port, password="not-it"))
    assert "login refused (HTTP 401)" in message and f"RF{REDFISH_PORT}" in message
    assert "not-it" not in message
    assert took < 1.0


def test_dead_port_fails_at_once() -> None:
    message, took = failure(driver(DEAD_PORT))
    assert "connection refused" in message and f"127.0.0.1:{DEAD_PORT}" in message
    assert took < 0.5  # sushy's defaults take 27 s here


def test_black_hole_costs_the_read_timeout() -> None:
    with socket.socket() as hole:  # accepts connections, never answers
        hole.bind(("127.0.0.1", TCP_BLACKHOLE_PORT))
        hole.listen(8)
        message, took = failure(driver(TCP_BLACKHOLE_PORT, timeout=1.0))
    assert "no answer within 1 s" in message or "no HTTP answer within 1 s" in message
    assert took < 1.8


def test_unknown_host() -> None:
    message, took = failure(driver(443, host="no-such-bmc.invalid"))
    assert "cannot resolve 'no-such-bmc.invalid'" in message
    assert took < 2.0
