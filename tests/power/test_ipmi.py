"""The IPMI driver against real simulated BMCs: OpenIPMI's ipmi_sim and pyghmi-based labbmc.

Effects are checked out-of-band (ipmi_sim's chassis state files, labbmc's HTTP state), and
ipmitool (an independent client) cross-checks power and boot device.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from bmprov.credentials import BmcCredentials
from bmprov.drivers import BmcTarget, BootDevice, DriverSettings, PowerAction, PowerState
from bmprov.drivers.ipmi import IpmiDriver, logout_all
from bmprov.errors import DriverError
from bmprov.secret import Secret
from tests.sims.fixtures import (
    DEAD_PORT,
    PASSWORD,
    UDP_BLACKHOLE_PORT,
    USER,
    add_nodes,
    configure_bmc,
)

pytestmark = pytest.mark.peer
SETTINGS = DriverSettings(timeout=5.0, connect_timeout=1.0, power_wait=5.0)


def driver(
    port: int,
    password: str = PASSWORD,
    user: str = USER,
    host: str = "127.0.0.1",
    settings: DriverSettings = SETTINGS,
) -> IpmiDriver:
    creds = BmcCredentials(user, Secret(password))
    return IpmiDriver(BmcTarget(f"SN{port}", "ipmi", host, port, creds), settings)


def ipmitool(port: int, *args: str) -> str:
    """ipmitool -I lanplus -C 3 (cipher suite 3; without -C, ipmi_sim costs 10 s a call)."""
    proc = subprocess.run(
        [
            "ipmitool",
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            USER,
            "-E",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env={"IPMI_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    return proc.stdout + proc.stderr


def test_ipmi_sim_power_and_boot(ipmi_sim) -> None:
    ipmi_sim.reset()
    bmc = driver(ipmi_sim.port)
    assert bmc.get_power() == PowerState.OFF
    assert bmc.set_power(PowerAction.ON) == "powered on"
    assert ipmi_sim.state()["power"] == "on"
    assert "Chassis Power is on" in ipmitool(ipmi_sim.port, "chassis", "power", "status")

    result = bmc.set_boot_device(BootDevice.PXE)
    assert ipmi_sim.state()["boot"] == "pxe"
    assert not result.verified  # ipmi_sim never sets boot-flags-valid: taken at its word
    assert "Force PXE" in ipmitool(ipmi_sim.port, "chassis", "bootparam", "get", "5")

    assert bmc.set_power(PowerAction.CYCLE) == "power-cycled"
    events = ipmi_sim.state()["events"]
    assert any(line.endswith("set power 0") for line in events)
    end = time.monotonic() + 3  # ipmi_sim turns power back on after a fixed 1 s
    while ipmi_sim.state()["power"] != "on" and time.monotonic() < end:
        time.sleep(0.05)
    assert ipmi_sim.state()["power"] == "on"

    bmc.set_boot_device(BootDevice.DISK, persistent=True)
    assert ipmi_sim.state()["boot"] == "default"  # ipmi_sim's name for the hd selector
    assert bmc.set_power(PowerAction.OFF) == "powered off"
    assert ipmi_sim.state()["power"] == "off"
    assert "Chassis Power is off" in ipmitool(ipmi_sim.port, "chassis", "power", "status")


def test_ipmi_sim_cycle_of_an_off_node_powers_it_on(ipmi_sim) -> None:
    ipmi_sim.reset()
    assert driver(ipmi_sim.port).set_power(PowerAction.CYCLE) == "was off: powered on"
    assert ipmi_sim.state()["power"] == "on"


def test_labbmc_power_boot_and_readback(labbmc) -> None:
    labbmc.reset()
    port = labbmc.ports[0]
    bmc = driver(port)
    result = bmc.set_boot_device(BootDevice.PXE)
    assert result.verified and result.attempts == 1
    assert labbmc.state()[port]["bootdev"] == "network"
    assert "Force PXE" in ipmitool(port, "chassis", "bootparam", "get", "5")
    assert bmc.set_power(PowerAction.CYCLE) == "was off: powered on"
    assert bmc.set_power(PowerAction.CYCLE) == "power-cycled"
    state = labbmc.state()[port]
    assert state["power"] == "on" and state["counters"]["cycle"] == 1
    assert "Chassis Power is on" in ipmitool(port, "chassis", "power", "status")
    assert bmc.set_power(PowerAction.ON) == "already on"
    assert bmc.set_power(PowerAction.SOFT_OFF) == "shutdown requested"
    assert labbmc.state()[port]["power"] == "off"
    assert bmc.set_boot_device(BootDevice.DISK).verified
    assert labbmc.state()[port]["bootdev"] == "hd"


def test_ipmitool_change_is_seen_by_the_driver(labbmc) -> None:
    labbmc.reset()
    port = labbmc.ports[1]
    assert "Up/On" in ipmitool(port, "chassis", "power", "on")
    assert driver(port).get_power() == PowerState.ON


# ----------------------------------------------------------------------------- failures
def timed_failure(bmc: IpmiDriver) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(DriverError) as info:
        bmc.get_power()
    return str(info.value), time.monotonic() - start


def test_wrong_password(ipmi_sim, labbmc) -> None:
    for port in (ipmi_sim.port, labbmc.ports[2]):
        message, took = timed_failure(driver(port, password="wrong-secret"))
        assert "wrong password for user 'admin'" in message
        assert f"SN{port}" in message and f"127.0.0.1:{port}" in message
        assert "wrong-secret" not in message
        assert took < 1.0


def test_unknown_user(labbmc) -> None:
    message, took = timed_failure(driver(labbmc.ports[2], user="nobody"))
    assert "unknown user 'nobody'" in message
    assert took < 1.0


def test_dead_port_fails_fast() -> None:
    message, took = timed_failure(driver(DEAD_PORT))
    assert f"nothing listens on UDP port {DEAD_PORT}" in message
    assert took < 0.5


def test_black_hole_costs_its_connect_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", UDP_BLACKHOLE_PORT))  # receives, never answers
        message, took = timed_failure(driver(UDP_BLACKHOLE_PORT))
    assert "no IPMI answer within 1 s" in message
    assert 0.9 < took < 1.8


def test_unknown_host() -> None:
    message, took = timed_failure(driver(623, host="no-such-bmc.invalid"))
    assert "cannot resolve 'no-such-bmc.invalid'" in message
    assert took < 2.0


def test_bmc_that_stops_answering_mid_session_is_cut_at_the_deadline(labbmc) -> None:
    """A logged-in BMC that goes silent (its simulator paused) costs exactly the deadline."""
    labbmc.reset()
    bmc = driver(labbmc.ports[3], settings=DriverSettings(timeout=1.5, connect_timeout=1.0))
    assert bmc.get_power() == PowerState.OFF  # logged in, session cached
    os.kill(labbmc.children[0].pid, signal.SIGSTOP)
    try:
        message, took = timed_failure(bmc)
    finally:
        os.kill(labbmc.children[0].pid, signal.SIGCONT)
    port = labbmc.ports[3]
    assert f"SN{port}" in message and f"127.0.0.1:{port}" in message
    assert "no answer within 1.5 s" in message
    assert 1.4 < took < 2.2


def test_cli_against_labbmc_never_leaks_the_password(cli, site, monkeypatch, labbmc) -> None:
    """-vv logging, the table, JSON and the state file: the password shows up nowhere."""
    labbmc.reset()
    configure_bmc(site, monkeypatch)
    secret = "Zq9-unguessable-Secret"
    site.write_config(f'[bmc.nodes.bad]\npassword = "{secret}"\n')
    with site.db() as db:
        add_nodes(
            db,
            [
                {"serial": "good", "bmc_address": f"127.0.0.1:{labbmc.ports[0]}"},
                {"serial": "bad", "bmc_address": f"127.0.0.1:{labbmc.ports[1]}"},
            ],
        )
    run = cli("-vv", "power", "cycle", "--bootdev", "pxe", "--all")
    assert run.exit_code == 1
    assert "wrong password for user 'admin'" in run.stdout
    assert labbmc.state()[labbmc.ports[0]]["bootdev"] == "network"
    # -vv logs each exchange with the BMC (so the grep below reads real log lines)
    assert "DEBUG bmprov.drivers.base: good: BMC 127.0.0.1" in run.stderr
    assert "INFO bmprov.result: power:cycle: bad failed" in run.stderr
    as_json = cli("-vv", "power", "status", "--all", "--json")
    for text in (run.stdout, run.stderr, as_json.stdout, as_json.stderr):
        assert secret not in text
    for path in site.dir.glob("bmprov.sqlite*"):
        data = path.read_bytes()
        assert secret.encode() not in data and PASSWORD.encode() not in data


def test_logout_then_login_again(labbmc, ipmi_sim) -> None:
    """Sessions are closed (at exit, or on demand); a later call logs in afresh."""
    labbmc.reset()
    bmcs = [driver(labbmc.ports[0]), driver(ipmi_sim.port)]
    for bmc in bmcs:
        bmc.get_power()
    assert logout_all(2.0) >= 2
    for bmc in bmcs:  # pyghmi alone would hand back the closed session here
        assert bmc.get_power() in (PowerState.ON, PowerState.OFF)


def test_labbmc_answers_a_retransmitted_request_from_its_cache(labbmc) -> None:
    """A retransmit (same rqSeq, new session sequence number) must not execute twice.

    pyghmi resends an unanswered request after 1.5-2.0 s exactly like this (``_timedout`` →
    ``send_payload()``); a loaded simulator answering later than that used to power on twice.
    """
    labbmc.reset()
    port = labbmc.ports[2]
    cmd = driver(port)._command()
    session = cmd.ipmi_session
    original = session.send_payload

    def send_twice(payload=(), *args, **kwargs):  # type: ignore[no-untyped-def]
        original(payload, *args, **kwargs)
        if payload and session.lastpayload is not None:
            original()  # what pyghmi's retry timer sends: the same payload again

    session.send_payload = send_twice
    try:
        reply = cmd.raw_command(netfn=0, command=2, data=[1])  # chassis control: power up
    finally:
        del session.send_payload
    assert not reply.get("code") and not reply.get("error")
    counters = labbmc.state()[port]["counters"]
    assert counters["on"] == 1, counters
    assert counters["retransmit"] == 1, counters
    assert driver(port).get_power() == PowerState.ON
