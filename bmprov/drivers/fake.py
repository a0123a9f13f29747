"""An in-memory driver for unit tests and ``--dry-run``: no packet leaves the process.

Every fake BMC lives in :data:`LAB`, keyed by ``host:port``. Tests can preload a state or make
a BMC misbehave (refuse, hang, ignore the boot device) to exercise the callers' error paths::

    LAB.bmc("10.0.0.5:623").hang = True
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

from bmprov.drivers.base import (
    BootDevice,
    BootReadback,
    PowerAction,
    PowerDriver,
    PowerState,
)


@dataclass
class FakeBmc:
    """One fake BMC's state and misbehaviour switches."""

    power: PowerState = PowerState.OFF
    bootdev: BootDevice = BootDevice.DISK
    persistent: bool = True
    uefi: bool = True
    refuse: str | None = None  # calls fail with this message (all, or those in refuse_only)
    refuse_only: str = ""  # e.g. "power": only calls whose name starts with it are refused
    hang: bool = False  # every call blocks (until released), to test deadlines
    ignore_bootdev: bool = False  # acknowledges boot device changes but keeps the old one
    report_bootdev: bool = True  # False: like ipmi_sim, never reports boot flags
    delay: float = 0.0  # seconds each call takes
    calls: list[str] = field(default_factory=list)


class FakeLab:
    """The registry of fake BMCs (thread-safe)."""

    def __init__(self) -> None:
        self._bmcs: dict[str, FakeBmc] = {}
        self._lock = threading.Lock()
        self.release = threading.Event()  # set to let hanging calls go

    def bmc(self, where: str) -> FakeBmc:
        """The fake BMC at ``where`` (created powered off, booting from disk)."""
        with self._lock:
            return self._bmcs.setdefault(where, FakeBmc())

    def reset(self) -> None:
        """Forget every fake BMC and release hanging calls."""
        self.release.set()
        with self._lock:
            self._bmcs.clear()
        self.release = threading.Event()


LAB = FakeLab()


class FakeDriver(PowerDriver):
    """Power and boot control of a :class:`FakeBmc` in :data:`LAB`."""

    name: ClassVar[str] = "fake"
    default_port: ClassVar[int | None] = None
    needs_credentials: ClassVar[bool] = False

    @property
    def bmc(self) -> FakeBmc:
        """This target's fake BMC."""
        return LAB.bmc(self.target.where)

    def _enter(self, what: str) -> FakeBmc:
        bmc = self.bmc
        bmc.calls.append(what)
        if bmc.delay:
            time.sleep(bmc.delay)
        if bmc.hang:
            LAB.release.wait()
        if bmc.refuse and what.startswith(bmc.refuse_only):
            raise self.error(bmc.refuse)
        return bmc

    def _get_power(self) -> PowerState:
        return self._enter("get_power").power

    def _set_power(self, action: PowerAction) -> str:
        bmc = self._enter(f"power {action}")
        if action in (PowerAction.OFF, PowerAction.SOFT_OFF):
            bmc.power = PowerState.OFF
            return "powered off" if action == PowerAction.OFF else "shutdown requested"
        if action == PowerAction.RESET:
            return "reset" if bmc.power == PowerState.ON else "reset (node is off: no effect)"
        was = bmc.power
        bmc.power = PowerState.ON
        if action == PowerAction.CYCLE:
            return "power-cycled" if was == PowerState.ON else "was off: powered on"
        return "powered on"

    def _set_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        bmc = self._enter(f"boot {device}")
        if not bmc.ignore_bootdev:
            bmc.bootdev, bmc.persistent, bmc.uefi = device, persistent, uefi

    def _get_boot(self) -> BootReadback:
        bmc = self._enter("get_boot")
        if not bmc.report_bootdev:
            return BootReadback(None)
        return BootReadback(bmc.bootdev, bmc.persistent, bmc.uefi)
