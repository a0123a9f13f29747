"""Virtual BMCs: IPMI-over-LAN endpoints on loopback that power QEMU machines (as virtualbmc).

Each :class:`VirtualBmc` is a ``pyghmi.ipmi.bmc.Bmc`` (with bmprov.lab.ipmiserver's fixes) on
127.0.0.1:PORT whose chassis commands drive one :class:`~bmprov.lab.machine.Machine`:

    IPMI chassis control          machine
    power on / off / cycle        start QEMU / QMP ``quit`` / ``quit`` then start
    hard reset                    QMP ``system_reset`` (QEMU ends, ``-no-reboot``; restarted)
    soft off (ACPI)               QMP ``system_powerdown``
    set boot flags (param 5)      boot order of the next start; persistent or one-time

Every call is appended to the lab's call log (JSON lines) with the machine, the call and its
arguments, so a test or an operator sees what bmprov asked for. Handlers run on pyghmi's one
IO thread: none waits for QEMU longer than a QMP reply.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.command as ipmicommand

from bmprov.lab.machine import Machine

BOOT_VALID, BOOT_PERSISTENT, BOOT_EFI = 0x80, 0x40, 0x20


class CallLog:
    """Append-only JSON lines, one per BMC call or machine event, shared by all BMCs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"t": round(time.time(), 3), **entry}, sort_keys=True)
        with self.lock, self.path.open("a") as out:
            out.write(line + "\n")


class VirtualBmc(pyghmi_bmc.Bmc):  # type: ignore[misc]
    """One machine's BMC."""

    def __init__(self, machine: Machine, authdata: dict[str, str], log: CallLog) -> None:
        self.machine = machine
        self.log = log
        self.counters: dict[str, int] = {"retransmit": 0}
        super().__init__(
            authdata,
            port=machine.spec.bmc_port,
            address="127.0.0.1",
            bmcuuid=uuid.uuid5(uuid.NAMESPACE_DNS, f"bmprov-lab-{machine.spec.serial}"),
        )

    def _call(self, call: str, **args: Any) -> None:
        self.log({"machine": self.machine.spec.name, "call": call, **args})

    def get_power_state(self) -> str:
        return self.machine.power

    def power_on(self) -> int:
        self._call("power_on")
        self.machine.power_on()
        return 0

    def power_off(self) -> int:
        self._call("power_off")
        self.machine.power_off()
        return 0

    def power_shutdown(self) -> int:
        self._call("power_shutdown")
        self.machine.shutdown()
        return 0

    def power_reset(self) -> int:
        self._call("power_reset")
        self.machine.reset()
        return 0

    def power_cycle(self) -> int:
        self._call("power_cycle")
        self.machine.cycle()
        return 0

    def cold_reset(self) -> int:
        return 0

    def get_system_guid(self) -> Any:
        return self.uuid

    def get_boot_device(self) -> str:
        return self.machine.bootdev

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> Any:
        """Boot flags with the persistence and EFI bits that were set (pyghmi drops them)."""
        if request["data"][0] != 5:
            return session.send_ipmi_response(code=0x80)
        m = self.machine
        flags = BOOT_VALID | (BOOT_PERSISTENT if m.persistent else 0) | (BOOT_EFI if m.uefi else 0)
        device = ipmicommand.boot_devices.get(m.bootdev, 0)
        return session.send_ipmi_response(data=[1, 5, flags, device, 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> Any:
        data = request["data"]
        if data[0] != 5 or len(data) < 3:
            return session.send_ipmi_response()  # flag clearing etc.: nod, as pyghmi does
        selector = (data[2] >> 2) & 0b1111
        device = "default" if selector == 0 else ipmicommand.boot_devices.get(selector)
        if not isinstance(device, str):
            return session.send_ipmi_response(code=0xCC)
        persistent, uefi = bool(data[1] & BOOT_PERSISTENT), bool(data[1] & BOOT_EFI)
        self._call("set_boot_device", device=device, persistent=persistent, uefi=uefi)
        self.machine.set_boot(device, persistent, uefi)
        return session.send_ipmi_response()
