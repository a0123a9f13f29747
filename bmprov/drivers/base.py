"""The power/boot driver interface (ironic-style), and the hard deadline around every call.

A driver talks to one node's BMC. Its public methods are template methods: each runs the
driver's protocol code (``_get_power``, ``_set_power``...) under a hard deadline of
``settings.timeout`` seconds (:mod:`bmprov.drivers.deadline`), so no BMC, library bug or lost
packet can hold a caller longer than that. A call that misses its deadline is abandoned and
reported as a :class:`~bmprov.errors.DriverError` naming the node and BMC.

Setting the boot device is verified generically: the driver reads it back; a BMC that reports a
different device gets one retry and is then reported; a BMC that does not report boot flags at
all is taken at its word (the command was acknowledged).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from bmprov.credentials import BmcCredentials
from bmprov.drivers.deadline import DeadlineExceeded, bounded
from bmprov.errors import DriverError

log = logging.getLogger(__name__)
T = TypeVar("T")


class PowerState(StrEnum):
    """What a BMC reports."""

    ON = "on"
    OFF = "off"


class PowerAction(StrEnum):
    """What a driver can be asked to do."""

    ON = "on"
    OFF = "off"  # hard off
    SOFT_OFF = "soft-off"  # ACPI shutdown request
    RESET = "reset"  # warm reset (no effect while off on most BMCs)
    CYCLE = "cycle"  # off, then on; powers on a machine that is off


class BootDevice(StrEnum):
    """Boot devices a node can be told to use next."""

    PXE = "pxe"
    DISK = "disk"
    BIOS = "bios"  # firmware setup


@dataclass(frozen=True)
class BootReadback:
    """The boot device a BMC reports; ``device=None`` when it does not report one.

    ``device`` is a :class:`BootDevice` value, or the BMC's own name for anything else.
    """

    device: str | None
    persistent: bool | None = None
    uefi: bool | None = None


@dataclass(frozen=True)
class DriverSettings:
    """Timeouts and options shared by every driver (from ``[bmc]``)."""

    timeout: float = 10.0  # hard deadline for one call
    connect_timeout: float = 2.0  # reachability probe / TCP connect
    power_wait: float = 30.0  # how long on/off may take to show in the BMC's power state
    poll_interval: float = 0.2
    options: dict[str, Any] = field(default_factory=dict)  # driver-specific ([bmc.redfish]...)


@dataclass(frozen=True)
class BmcTarget:
    """One node's BMC: who it is for, where it is, how to log in."""

    node: str  # the node's serial, for messages
    driver: str
    host: str
    port: int | None = None
    credentials: BmcCredentials | None = None
    mac: str | None = None  # the node's boot MAC (Wake-on-LAN)

    @property
    def where(self) -> str:
        """``host:port`` (or the host alone when the port is the driver default)."""
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass(frozen=True)
class BootResult:
    """What :meth:`PowerDriver.set_boot_device` achieved."""

    device: BootDevice
    persistent: bool
    verified: bool  # the BMC reported it back; False = acknowledged but not reported
    attempts: int


class PowerDriver(ABC):
    """Power and boot-device control of one BMC.

    Subclasses implement the underscored protocol methods; callers use the public ones, which
    add the deadline, the error wording and the boot-device verification.
    """

    name: ClassVar[str] = ""
    default_port: ClassVar[int | None] = None
    needs_credentials: ClassVar[bool] = True
    supported_actions: ClassVar[frozenset[PowerAction]] = frozenset(PowerAction)
    can_read_power: ClassVar[bool] = True
    can_set_boot: ClassVar[bool] = True

    def __init__(self, target: BmcTarget, settings: DriverSettings) -> None:
        self.target = target
        self.settings = settings

    # ---------------------------------------------------------------- public API
    def get_power(self) -> PowerState:
        """The node's power state.

        :raises DriverError: the BMC did not answer in time, refused, or cannot report it.
        """
        self._require(self.can_read_power, "reading the power state")
        return self._bounded("get power state", self._get_power)

    def set_power(self, action: PowerAction) -> str:
        """Do ``action``; for on/off, wait (up to ``power_wait``) until the BMC shows it.

        :returns: a short description of what happened (``"powered on"``...).
        :raises DriverError: the action is unsupported, refused, timed out or not reached.
        """
        self._require(action in self.supported_actions, f"power {action}")
        done = self._bounded(f"power {action}", lambda: self._set_power(action))
        want = {PowerAction.ON: PowerState.ON, PowerAction.OFF: PowerState.OFF}.get(action)
        if want is not None and self.can_read_power:
            self._wait_power(want)
        return done

    def set_boot_device(
        self, device: BootDevice, persistent: bool = False, uefi: bool = True
    ) -> BootResult:
        """Make ``device`` the next boot device (every boot if ``persistent``); read it back.

        A BMC that reads back another device gets one more try, then is reported.

        :raises DriverError: the BMC refused, timed out, or kept reporting another device.
        """
        self._require(self.can_set_boot, f"setting the boot device to {device}")
        mode = "persistent" if persistent else "one-time"
        for attempt in (1, 2):
            self._bounded(
                f"set boot device {device}", lambda: self._set_boot(device, persistent, uefi)
            )
            seen = self.get_boot_device()
            if seen.device is None:
                return BootResult(device, persistent, verified=False, attempts=attempt)
            if seen.device == device:
                return BootResult(device, persistent, verified=True, attempts=attempt)
            log.info(
                "%s: BMC %s reports boot device %s after setting %s (attempt %d)",
                self.target.node,
                self.target.where,
                seen.device,
                device,
                attempt,
            )
        raise self.error(
            f"does not accept boot device {device} ({mode}): it still reports {seen.device}"
        )

    def get_boot_device(self) -> BootReadback:
        """The boot device the BMC reports (``device=None`` if it does not say).

        :raises DriverError: the BMC did not answer in time or refused.
        """
        self._require(self.can_set_boot, "reading the boot device")
        return self._bounded("get boot device", self._get_boot)

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections (drivers that keep none need not override)."""

    def error(self, message: str) -> DriverError:
        """A :class:`DriverError` naming the node, the BMC and the driver."""
        where = f"node {self.target.node}: BMC {self.target.where} ({self.target.driver})"
        return DriverError(f"{where}: {message}")

    # ---------------------------------------------------------------- protocol (subclasses)
    @abstractmethod
    def _get_power(self) -> PowerState:
        """Ask the BMC for the power state."""

    @abstractmethod
    def _set_power(self, action: PowerAction) -> str:
        """Send the power command; return a short description of what was done."""

    def _set_boot(self, device: BootDevice, persistent: bool, uefi: bool) -> None:
        """Send the boot-device command."""
        raise self.error("cannot set the boot device")

    def _get_boot(self) -> BootReadback:
        """Ask the BMC for the boot device."""
        return BootReadback(None)

    # ---------------------------------------------------------------- helpers
    def _require(self, supported: bool, what: str) -> None:
        if not supported:
            raise self.error(f"{what} is not supported by the {self.name} driver")

    def _wait_power(self, want: PowerState) -> None:
        deadline = time.monotonic() + self.settings.power_wait
        while True:
            state = self.get_power()
            if state == want:
                return
            if time.monotonic() >= deadline:
                raise self.error(
                    f"still {state} {self.settings.power_wait:g} s after asking for {want}"
                )
            time.sleep(self.settings.poll_interval)

    def _bounded(self, what: str, call: Callable[[], T]) -> T:
        timeout = f"{what}: no answer within {self.settings.timeout:g} s (hard deadline)"
        peer = f"{self.target.node}: BMC {self.target.where} ({self.target.driver})"
        log.debug("%s: %s", peer, what)
        started = time.monotonic()
        try:
            answer = bounded(call, self.settings.timeout, what, str(self.error(timeout)))
        except DeadlineExceeded:
            log.debug("%s: %s: no answer in %.3f s", peer, what, time.monotonic() - started)
            raise self.error(timeout) from None
        except DriverError as exc:
            log.debug("%s: %s: %s", peer, what, exc)
            raise
        except Exception as exc:  # a library failure we did not map: still name the BMC
            log.debug("%s: %s failed", self.target.node, what, exc_info=True)
            raise self.error(f"{what}: {self._describe(exc)}") from None
        log.debug("%s: %s → %s (%.3f s)", peer, what, answer, time.monotonic() - started)
        return answer

    def _describe(self, exc: BaseException) -> str:
        """One line for a library exception this driver did not map itself."""
        return describe_exception(exc)


def describe_exception(exc: BaseException) -> str:
    """A one-line description of a library exception, never empty, never a repr of locals."""
    text = " ".join(str(exc).split())
    if not text or text == "None":
        return f"{type(exc).__name__} (no details)"
    return f"{text[:200]}"
