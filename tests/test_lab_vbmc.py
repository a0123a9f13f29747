"""The virtual BMC ↔ QEMU mapping, against a fake QEMU that speaks QMP (tests/lab/fake_qemu.py).

What the IPMI chassis commands become (QMP command, process start with which boot order) and
how one-time and persistent boot devices survive resets and the guest's own reboot.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bmprov.lab.machine import Machine, MachineSpec, Process, qemu_argv
from bmprov.lab.vbmc import CallLog, VirtualBmc

ROOT = Path(__file__).resolve().parent.parent


def fake_launch(argv: list[str], log: Path) -> Process:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.lab.fake_qemu", *argv[1:]],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
def machine(tmp_path: Path):
    spec = MachineSpec("vm1", "SN1", "52:54:00:00:00:01", "bios", str(tmp_path), "tap0", "-", 1)
    events: list[dict[str, Any]] = []
    m = Machine(spec, fake_launch, events.append)
    m.events = events  # type: ignore[attr-defined]
    yield m
    m.stop_now()


def fake_log(m: Machine) -> list[dict[str, Any]]:
    path = m.spec.path / "fake.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def starts(m: Machine) -> list[str]:
    """The boot order of each start: 'nic' when the NIC had bootindex 1, else 'disk'."""
    return [
        "nic" if any("bootindex=1" in a and "virtio-net" in a for a in e["argv"]) else "disk"
        for e in fake_log(m)
        if "argv" in e
    ]


def commands(m: Machine) -> list[str]:
    return [e["command"] for e in fake_log(m) if "command" in e]


def wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def wait_qmp(m: Machine) -> None:
    wait(lambda: m.qmp is not None)


def test_argv_boot_order_and_firmware() -> None:
    bios = MachineSpec("vm1", "SN1", "52:54:00:00:00:01", "bios", "/d", "tap0", "ns", 1)
    argv = qemu_argv(bios, "network")
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01,bootindex=1" in argv
    assert "virtio-blk-pci,drive=d0,bootindex=2" in argv
    assert "-no-reboot" in argv  # every reset ends QEMU: the watcher restarts it
    assert any("serial=SN1" in a for a in argv)
    assert "virtio-blk-pci,drive=d0,bootindex=1" in qemu_argv(bios, "hd")
    uefi = MachineSpec("vm2", "SN2", "52:54:00:00:00:02", "uefi", "/d", "tap1", "ns", 2)
    argv = qemu_argv(uefi, "default")
    assert "q35" in argv and any("OVMF_CODE" in a for a in argv)
    assert any(a.startswith("virtio-net-pci,romfile=,") for a in argv)  # OVMF's own PXE


def test_one_time_pxe_then_guest_reboot_boots_disk(machine: Machine) -> None:
    machine.set_boot("network", persistent=False, uefi=False)
    machine.power_on()
    wait_qmp(machine)
    assert machine.power == "on" and machine.bootdev == "default"
    (machine.spec.path / "guest-reboot").touch()  # the installer reboots
    wait(lambda: len(starts(machine)) == 2)
    assert starts(machine) == ["nic", "disk"]
    exits = [e for e in machine.events if e["event"] == "exit"]  # type: ignore[attr-defined]
    assert exits[0]["reason"] == "guest-reset" and exits[0]["restart"] is True


def test_persistent_boot_device_survives_resets(machine: Machine) -> None:
    machine.set_boot("network", persistent=True, uefi=False)
    machine.power_on()
    wait_qmp(machine)
    machine.reset()
    wait(lambda: len(starts(machine)) == 2)
    # The restarted QEMU's own qmp_capabilities may already follow: look for the reset, and
    # that the machine was reset, not power-cycled (no quit).
    cmds = commands(machine)
    assert "system_reset" in cmds and "quit" not in cmds, cmds
    assert starts(machine) == ["nic", "nic"]


def test_cycle_off_and_guest_poweroff(machine: Machine) -> None:
    machine.cycle()  # off: just powers on
    wait_qmp(machine)
    machine.cycle()
    wait(lambda: len(starts(machine)) == 2)
    wait_qmp(machine)
    assert commands(machine).count("quit") == 1 and machine.power == "on"
    machine.shutdown()
    wait(lambda: "system_powerdown" in commands(machine))
    assert machine.power == "on"  # ACPI only asks; this guest ignores it
    machine.power_off()
    wait(lambda: machine.power == "off")
    time.sleep(0.3)
    assert len(starts(machine)) == 2  # quit from power off: no restart
    machine.power_on()
    wait_qmp(machine)
    (machine.spec.path / "guest-poweroff").touch()
    wait(lambda: machine.power == "off")
    time.sleep(0.3)
    assert len(starts(machine)) == 3


class FakeSession:
    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []

    def send_ipmi_response(self, data: Any = (), code: int = 0) -> None:
        self.replies.append({"data": list(data), "code": code})


@pytest.fixture
def bmc(machine: Machine, tmp_path: Path) -> VirtualBmc:
    b = VirtualBmc.__new__(VirtualBmc)  # the handlers without a socket
    b.machine, b.log, b.counters = machine, CallLog(tmp_path / "calls.jsonl"), {}
    return b


def calls(bmc: VirtualBmc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in bmc.log.path.read_text().splitlines()]


def test_ipmi_boot_flags_to_machine_and_back(bmc: VirtualBmc) -> None:
    session = FakeSession()
    # Set System Boot Options, parameter 5: valid + persistent + EFI, selector PXE (0x04)
    bmc.set_system_boot_options({"data": [5, 0xE0, 0x04, 0, 0]}, session)
    assert session.replies[-1]["code"] == 0
    m = bmc.machine
    assert (m.bootdev, m.persistent, m.uefi) == ("network", True, True)
    bmc.get_system_boot_options({"data": [5, 0, 0]}, session)
    assert session.replies[-1]["data"] == [1, 5, 0xE0, 0x04, 0, 0, 0]
    bmc.set_system_boot_options({"data": [5, 0x80, 0x08, 0, 0]}, session)  # disk, one-time
    assert (m.bootdev, m.persistent, m.uefi) == ("hd", False, False)
    bmc.set_system_boot_options({"data": [5, 0x80, 7 << 2, 0, 0]}, session)  # no such device
    assert session.replies[-1]["code"] == 0xCC and m.bootdev == "hd"
    assert [c["call"] for c in calls(bmc)][:2] == ["set_boot_device"] * 2
    assert calls(bmc)[0] == {**calls(bmc)[0], "device": "network", "persistent": True}


def test_ipmi_chassis_control_to_qmp(bmc: VirtualBmc) -> None:
    m = bmc.machine
    assert bmc.get_power_state() == "off"
    bmc.power_on()
    wait_qmp(m)
    assert bmc.get_power_state() == "on"
    bmc.power_reset()
    wait(lambda: len(starts(m)) == 2)
    wait_qmp(m)
    bmc.power_cycle()
    wait(lambda: len(starts(m)) == 3)
    wait_qmp(m)
    bmc.power_shutdown()
    bmc.power_off()
    wait(lambda: bmc.get_power_state() == "off")
    assert commands(m) == ["qmp_capabilities", "system_reset", "qmp_capabilities", "quit",
                           "qmp_capabilities", "system_powerdown", "quit"]  # fmt: skip
    assert [c["call"] for c in calls(bmc)] == [
        "power_on", "power_reset", "power_cycle", "power_shutdown", "power_off",
    ]  # fmt: skip
