"""Power batches, credentials, the CLI and the os_provisioning hook, on the fake driver.

(Wake-on-LAN goes to a real UDP listener on loopback; the IPMI and Redfish drivers have their
own real-peer test files.)
"""

from __future__ import annotations

import itertools
import json
import socket
import time
import traceback

import pytest

from bmprov.config import validate_config
from bmprov.credentials import CredentialStore
from bmprov.drivers import BootDevice, DriverSettings, PowerAction, PowerState, make_driver
from bmprov.drivers.base import BmcTarget
from bmprov.drivers.deadline import call_with_deadline
from bmprov.drivers.fake import LAB
from bmprov.errors import DriverError
from bmprov.nodes import list_nodes
from bmprov.power import PowerRequest, PowerSettings, Stagger, boot_from_disk, run_power
from bmprov.secret import Secret
from tests.sims.fixtures import PASSWORD, WOL_PORT, add_nodes, configure_bmc

FAKE = '[bmc]\ndriver = "fake"\n'


@pytest.fixture(autouse=True)
def _clean_lab():
    LAB.reset()
    yield
    LAB.reset()


@pytest.fixture
def fake_site(site, monkeypatch):
    """A site whose BMCs are all fake, with nodes n01..n04 (n04 has no BMC)."""
    configure_bmc(site, monkeypatch)
    text = site.config_path.read_text().replace("[bmc]\n", FAKE, 1)
    site.config_path.write_text(text)
    with site.db() as db:
        add_nodes(
            db,
            [
                {"serial": f"n0{i}", "bmc_address": f"10.0.0.{i}:623", "rack": "r1", "site": "dc1"}
                for i in (1, 2, 3)
            ]
            + [{"serial": "n04", "rack": "r1"}],
        )
    return site


def nodes_of(site):
    with site.db() as db:
        return list_nodes(db)


# ----------------------------------------------------------------------------- secrets
def test_secret_never_shows() -> None:
    secret = Secret("hunter2")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert "hunter2" not in shown
    assert secret.reveal() == "hunter2"
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)


def test_credentials_layered_node_over_rack_over_site(site, monkeypatch) -> None:
    configure_bmc(site, monkeypatch)
    site.write_config(
        '[bmc.sites.dc1]\nusername = "siteuser"\n'
        '[bmc.racks.r1]\npassword_env = "RACK_PW"\n'
        '[bmc.nodes.n02]\npassword = "inline-pw"\nusername = "nodeuser"\n'
    )
    monkeypatch.setenv("RACK_PW", "rack-secret")
    with site.db() as db:
        add_nodes(
            db,
            [
                {"serial": "n01", "site": "dc1", "rack": "r1"},
                {"serial": "n02", "site": "dc1", "rack": "r1"},
                {"serial": "n03", "site": "dc2"},
            ],
        )
    store = CredentialStore(site.config)
    n01, n02, n03 = nodes_of(site)
    one, two, three = (store.credentials(n) for n in (n01, n02, n03))
    assert (one.username, one.password.reveal()) == ("siteuser", "rack-secret")
    assert (two.username, two.password.reveal()) == ("nodeuser", "inline-pw")
    assert (three.username, three.password.reveal()) == ("admin", PASSWORD)
    assert "rack-secret" not in repr(one) and "inline-pw" not in repr(two)


def test_password_file(site, monkeypatch, tmp_path) -> None:
    configure_bmc(site, monkeypatch)
    secret_file = tmp_path / "bmc.pass"
    secret_file.write_text("from-file\n")
    site.write_config(f'[bmc.nodes.n01]\npassword_file = "{secret_file}"\n')
    with site.db() as db:
        add_nodes(db, [{"serial": "n01"}])
    (node,) = nodes_of(site)
    assert CredentialStore(site.config).credentials(node).password.reveal() == "from-file"


def test_missing_password_fails_the_node_not_the_batch(fake_site, monkeypatch) -> None:
    monkeypatch.delenv("BMPROV_TEST_BMC_PASSWORD")
    # the fake driver needs no password; an IPMI node does
    with fake_site.db() as db:
        add_nodes(db, [{"serial": "n05", "bmc_address": "10.0.0.5", "bmc_type": "ipmi"}])
    batch = run_power(fake_site.config, nodes_of(fake_site), PowerRequest(status=True))
    by = {r.serial: r for r in batch.results}
    assert by["n05"].status == "failed"
    assert "BMPROV_TEST_BMC_PASSWORD" in by["n05"].message and "not set" in by["n05"].message
    assert by["n01"].status == "ok" and by["n04"].status == "skipped"


# ----------------------------------------------------------------------------- batches
def test_cycle_with_pxe_batch(fake_site) -> None:
    request = PowerRequest(PowerAction.CYCLE, BootDevice.PXE)
    batch = run_power(fake_site.config, nodes_of(fake_site), request)
    by = {r.serial: r for r in batch.results}
    assert [r.serial for r in batch.results] == ["n01", "n02", "n03", "n04"]
    for serial in ("n01", "n02", "n03"):
        assert by[serial].status == "ok"
        assert by[serial].message == "boot pxe (one-time, verified); was off: powered on"
        bmc = LAB.bmc(by[serial].details["bmc"])
        assert (bmc.power, bmc.bootdev, bmc.persistent) == (PowerState.ON, "pxe", False)
    assert by["n04"].status == "skipped" and "manual power-on" in by["n04"].message
    assert batch.exit_code == 0


def test_a_hanging_bmc_costs_its_deadline_and_never_delays_the_others(fake_site) -> None:
    fake_site.write_config("")
    LAB.bmc("10.0.0.2:623").hang = True
    settings = PowerSettings(concurrency=2)
    start = time.monotonic()
    text = fake_site.config_path.read_text().replace("timeout = 5.0", "timeout = 0.5")
    fake_site.config_path.write_text(text)
    batch = run_power(
        fake_site.config, nodes_of(fake_site), PowerRequest(status=True), settings=settings
    )
    took = time.monotonic() - start
    by = {r.serial: r for r in batch.results}
    assert by["n02"].status == "failed"
    assert by["n02"].message == (
        "node n02: BMC 10.0.0.2:623 (fake): get power state: no answer within 0.5 s (hard deadline)"
    )
    assert by["n01"].status == by["n03"].status == "ok"
    assert took < 1.2
    assert batch.exit_code == 1


def test_a_call_given_up_on_does_not_go_on_to_the_next_step(fake_site) -> None:
    text = fake_site.config_path.read_text().replace("timeout = 5.0", "timeout = 0.3")
    fake_site.config_path.write_text(text)
    slow = LAB.bmc("10.0.0.1:623")
    slow.delay = 0.6  # each call outlives the 0.3 s deadline, then returns
    request = PowerRequest(PowerAction.CYCLE, BootDevice.PXE)
    batch = run_power(fake_site.config, nodes_of(fake_site), request)
    by = {r.serial: r for r in batch.results}
    assert by["n01"].status == "failed" and by["n01"].step == "boot"
    assert "set boot device pxe: no answer within 0.3 s" in by["n01"].message
    assert by["n02"].status == "ok"
    time.sleep(0.8)  # the abandoned call has returned by now
    assert slow.calls == ["boot pxe"]  # no readback, no power cycle after the deadline


def test_refusing_bmc_and_boot_device_not_accepted(fake_site) -> None:
    LAB.bmc("10.0.0.1:623").refuse = "insufficient privilege"
    LAB.bmc("10.0.0.2:623").ignore_bootdev = True
    LAB.bmc("10.0.0.3:623").report_bootdev = False
    batch = run_power(fake_site.config, nodes_of(fake_site), PowerRequest(bootdev=BootDevice.PXE))
    by = {r.serial: r for r in batch.results}
    assert by["n01"].status == "failed" and "insufficient privilege" in by["n01"].message
    assert by["n01"].step == "boot"
    assert by["n02"].status == "failed"
    assert "does not accept boot device pxe (one-time): it still reports disk" in by["n02"].message
    assert LAB.bmc("10.0.0.2:623").calls.count("boot pxe") == 2  # one retry
    assert by["n03"].status == "ok" and "acknowledged" in by["n03"].message
    LAB.bmc("10.0.0.3:623").refuse, LAB.bmc("10.0.0.3:623").refuse_only = "no power", "power"
    request = PowerRequest(PowerAction.CYCLE, BootDevice.PXE)
    batch = run_power(fake_site.config, nodes_of(fake_site), request)
    (n03,) = [r for r in batch.results if r.serial == "n03"]
    assert (n03.status, n03.step) == ("failed", "power")


def test_boot_from_disk_at_the_end_of_a_reinstall(fake_site) -> None:
    LAB.bmc("10.0.0.1:623").bootdev = BootDevice.PXE
    batch = boot_from_disk(fake_site.config, nodes_of(fake_site))
    assert batch.counts() == {"ok": 3, "skipped": 1}
    bmc = LAB.bmc("10.0.0.1:623")
    assert (bmc.bootdev, bmc.persistent) == (BootDevice.DISK, True)


def test_stagger_spaces_power_ons() -> None:
    stagger, stamps = Stagger(0.1), []
    for _ in range(3):
        stagger.wait()
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(0.08 < gap < 0.3 for gap in gaps)


def test_stagger_in_a_batch(fake_site) -> None:
    start = time.monotonic()
    run_power(
        fake_site.config,
        nodes_of(fake_site),
        PowerRequest(PowerAction.ON),
        settings=PowerSettings(concurrency=8, stagger=0.2),
    )
    assert time.monotonic() - start >= 0.38  # three power-ons: 0, 0.2, 0.4


def test_deadline_helper_returns_and_raises() -> None:
    assert call_with_deadline(lambda: 42, 1) == 42
    with pytest.raises(ZeroDivisionError):
        call_with_deadline(lambda: 1 / 0, 1)


def test_driver_error_names_node_and_bmc_without_secret() -> None:
    target = BmcTarget("SN9", "fake", "10.9.9.9", 623)
    bmc = make_driver(target, DriverSettings(timeout=0.2))
    LAB.bmc("10.9.9.9:623").refuse = "boom"
    with pytest.raises(DriverError) as info:
        bmc.set_power(PowerAction.OFF)
    assert str(info.value) == "node SN9: BMC 10.9.9.9:623 (fake): boom"


# ----------------------------------------------------------------------------- CLI
def test_cli_power_cycle_json(cli, fake_site) -> None:
    run = cli("power", "cycle", "--bootdev", "pxe", "--all", "--json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["action"] == "power:cycle"
    assert data["counts"] == {"ok": 3, "skipped": 1}


def test_cli_table_and_exit_1_on_failure(cli, fake_site) -> None:
    LAB.bmc("10.0.0.3:623").refuse = "BMC busy"
    run = cli("power", "status", "--rack", "r1")
    assert run.exit_code == 1
    assert "BMC busy" in run.stdout and "n03" in run.stdout
    assert "power:status: 1 failed, 2 ok, 1 skipped" in run.stdout


def test_cli_boot_and_off_and_dry_run(cli, fake_site, monkeypatch) -> None:
    assert cli("boot", "disk", "--persistent", "--serial", "n01").exit_code == 0
    assert LAB.bmc("10.0.0.1:623").persistent is True
    assert cli("power", "off", "--soft", "-s", "n01").exit_code == 0
    text = fake_site.config_path.read_text().replace('driver = "fake"', 'driver = "ipmi"')
    fake_site.config_path.write_text(text)
    LAB.reset()
    run = cli("power", "on", "--all", "--dry-run", "--json")
    assert run.exit_code == 0, run.stdout
    data = json.loads(run.stdout)
    assert data["counts"] == {"planned": 3, "skipped": 1}
    first = data["results"][0]
    assert first["message"] == "would power on via ipmi 10.0.0.1:623"
    assert PASSWORD not in run.stdout
    assert "Traceback" not in run.stderr


def test_dry_run_needs_no_bmc_password(cli, fake_site, monkeypatch) -> None:
    monkeypatch.delenv("BMPROV_TEST_BMC_PASSWORD")
    text = fake_site.config_path.read_text().replace('driver = "fake"', 'driver = "ipmi"')
    fake_site.config_path.write_text(text)
    run = cli("power", "cycle", "--bootdev", "pxe", "--all", "--dry-run", "--json")
    assert run.exit_code == 0, run.stdout
    assert json.loads(run.stdout)["counts"] == {"planned": 3, "skipped": 1}
    real = cli("power", "cycle", "-s", "n01", "--json")  # the real run still needs it
    assert real.exit_code == 1
    assert "not set" in json.loads(real.stdout)["results"][0]["message"]


def test_cli_needs_a_selection(cli, fake_site) -> None:
    run = cli("power", "status")
    assert run.exit_code == 2
    assert "select nodes" in run.stderr


# ----------------------------------------------------------------------------- lifecycle hook
def test_hook_off_by_default_reports_waiting(cli, fake_site) -> None:
    with fake_site.db() as db:
        db.conn.execute("UPDATE nodes SET stage = 'networking'")
    run = cli("advance", "--stage", "os_provisioning", "--all", "--json")
    assert run.exit_code == 0, run.stdout
    results = json.loads(run.stdout)["results"]
    assert {r["status"] for r in results} == {"ok"}
    assert all("manual power-on" in r["message"] for r in results)
    assert LAB.bmc("10.0.0.1:623").calls == []


def test_hook_cycles_into_pxe_and_fails_a_dead_bmc(cli, fake_site) -> None:
    fake_site.write_config("")
    text = fake_site.config_path.read_text() + "auto_on_provisioning = true\n"
    fake_site.config_path.write_text(text)
    LAB.bmc("10.0.0.3:623").refuse = "unreachable"
    with fake_site.db() as db:
        db.conn.execute("UPDATE nodes SET stage = 'networking'")
    run = cli("advance", "--stage", "os_provisioning", "--all", "--json")
    assert run.exit_code == 1
    by = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    assert by["n01"]["status"] == "ok" and by["n01"]["message"].startswith("PXE boot: boot pxe")
    assert LAB.bmc("10.0.0.1:623").bootdev == "pxe"
    assert by["n03"]["status"] == "failed" and by["n03"]["step"] == "boot"
    assert by["n04"]["status"] == "ok"
    assert by["n04"]["message"] == "waiting for a manual power-on (no BMC)"
    stages = {n.serial: (n.stage, n.failed_stage) for n in nodes_of(fake_site)}
    assert stages["n03"] == ("failed", "os_provisioning")
    assert stages["n01"] == ("os_provisioning", None)


# ----------------------------------------------------------------------------- Wake-on-LAN
def test_wake_on_lan_to_a_loopback_listener(cli, site, monkeypatch) -> None:
    configure_bmc(site, monkeypatch)
    with site.db() as db:
        add_nodes(db, [{"serial": "w1", "bmc_type": "wol", "mac": "52:54:00:12:34:56"}])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", WOL_PORT))
        listener.settimeout(2)
        run = cli("power", "on", "-s", "w1")
        packet = listener.recv(1024)
    assert run.exit_code == 0, run.stdout
    assert packet == b"\xff" * 6 + bytes.fromhex("525400123456") * 16
    status = cli("power", "status", "-s", "w1", "--json")
    assert json.loads(status.stdout)["results"][0]["status"] == "skipped"
    off = cli("power", "off", "-s", "w1", "--json")
    assert off.exit_code == 1
    assert "not supported by the wol driver" in json.loads(off.stdout)["results"][0]["message"]
    dry = cli("power", "off", "-s", "w1", "--json", "--dry-run")
    assert json.loads(dry.stdout)["results"][0]["message"] == (
        f"node w1: BMC 127.0.0.1:{WOL_PORT} (wol): power off is not supported by the wol driver"
    )
    dry = cli("power", "cycle", "--bootdev", "pxe", "-s", "w1", "--json", "--dry-run")
    assert json.loads(dry.stdout)["results"][0]["message"] == (
        f"would power cycle (PXE must be first in its boot order) via wol 127.0.0.1:{WOL_PORT}"
    )


def test_no_traceback_leaks_the_password(fake_site, monkeypatch) -> None:
    monkeypatch.setenv("BMPROV_TEST_BMC_PASSWORD", "s3cr3t-value")
    (node,) = [n for n in nodes_of(fake_site) if n.serial == "n01"]
    creds = CredentialStore(fake_site.config).credentials(node)
    try:
        raise DriverError(f"login failed for {creds}")
    except DriverError:
        text = traceback.format_exc()
    assert "s3cr3t-value" not in text


# ----------------------------------------------------------------------------- config
def test_config_schema_for_bmc_and_power(site) -> None:
    raw = site.config.raw
    assert raw["power"]["auto_on_provisioning"] is False  # off in the starter config
    assert validate_config(raw) == []
    bad = {
        **raw,
        "power": {"concurrency": 0, "turbo": True},
        "bmc": {"password_env": "X; rm -rf /", "racks": {"r1": {"passwd": "x"}}},
    }
    problems = "\n".join(validate_config(bad))
    assert "power: unknown key(s): turbo" in problems
    assert "power.concurrency" in problems
    assert "bmc.password_env" in problems
    assert "bmc.racks.r1: unknown key(s): passwd" in problems
