"""One virtual machine: a QEMU process started and stopped the way a BMC powers a server.

Power on starts QEMU with the boot order the BMC was last told (``pxe``: NIC first; anything
else: local disk first) and, unless it was persistent, the next start forgets it, as IPMI's
one-time boot override does. QEMU runs with ``-no-reboot``: every reset, the guest's own
reboot or a BMC reset over QMP (``system_reset``), ends the process, and the watcher starts
it again with the then-current boot order, so a one-time PXE boot is followed by a disk boot.
A ``SHUTDOWN`` event of another reason (the guest powered off, ``quit``) leaves it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bmprov.lab.qmp import Event, Qmp, QmpError

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
RESTART_REASONS = ("guest-reset", "host-qmp-system-reset")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class MachineSpec:
    """What QEMU needs to start one machine (kept in the lab's state file)."""

    name: str
    serial: str
    mac: str
    firmware: str  # bios | uefi
    dir: str  # its disk, NVRAM, QMP socket and console log
    tap: str
    netns: str
    bmc_port: int

    @property
    def path(self) -> Path:
        return Path(self.dir)


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def kill(self) -> None: ...


Launcher = Callable[[list[str], Path], Process]


def qemu_argv(spec: MachineSpec, bootdev: str) -> list[str]:
    """The QEMU command line for one start (TCG: KVM does not work here, pxe-boot.md §1)."""
    d = spec.path
    nic_first = bootdev == "network"
    nic_index, disk_index = (1, 2) if nic_first else (2, 1)
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-m", "384", "-smp", "1", "-nodefaults",
        "-display", "none", "-no-reboot", "-name", spec.name,
        "-smbios", f"type=1,manufacturer=bmprov-lab,product=lab-{spec.firmware}"
        f",serial={spec.serial}",
        "-chardev", f"file,id=s0,path={d / 'console.log'},append=on", "-serial", "chardev:s0",
        "-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
        "-netdev", f"tap,id=n0,ifname={spec.tap},script=no,downscript=no",
        "-drive", f"file={d / 'disk.img'},format=raw,if=none,id=d0",
        "-device", f"virtio-blk-pci,drive=d0,bootindex={disk_index}",
    ]  # fmt: skip
    if spec.firmware == "uefi":
        # OVMF's own PXE client (virtio-net without the iPXE ROM, pxe-boot.md §9.10)
        return [
            *argv, "-machine", "q35",
            "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,unit=1,file={d / 'OVMF_VARS.fd'}",
            "-device", f"virtio-net-pci,romfile=,netdev=n0,mac={spec.mac},bootindex={nic_index}",
        ]  # fmt: skip
    # SeaBIOS + the virtio-net iPXE ROM
    return [
        *argv, "-machine", "pc",
        "-device", f"virtio-net-pci,netdev=n0,mac={spec.mac},bootindex={nic_index}",
    ]  # fmt: skip


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the agent that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Spawner:
    """Forks every QEMU from one thread that lives as long as the agent.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, not the process:
    a QEMU restarted from a machine's watcher thread was killed the moment that watcher
    returned (seen: SIGKILL 0 s after the restart, so never a QMP socket).
    """

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Callable[[], Process], Future[Process]]] = queue.Queue()
        threading.Thread(target=self._run, name="qemu-spawner", daemon=True).start()

    def _run(self) -> None:
        while True:
            job, future = self.jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def __call__(self, job: Callable[[], Process]) -> Process:
        future: Future[Process] = Future()
        self.jobs.put((job, future))
        return future.result()


_spawn: _Spawner | None = None


def launcher_for(netns: str) -> Launcher:
    """QEMU inside ``netns`` (``ip netns exec`` execs it), killed if the agent dies."""
    global _spawn  # noqa: PLW0603 (one spawner thread per process, made on first use)
    if _spawn is None:
        _spawn = _Spawner()
    spawn = _spawn

    def launch(argv: list[str], log: Path) -> Process:
        def popen() -> Process:
            with log.open("ab") as out:
                return subprocess.Popen(
                    ["ip", "netns", "exec", netns, *argv],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 (only prctl, async-safe)
                )  # fmt: skip

        return spawn(popen)

    return launch


class Machine:
    """Power and boot device of one QEMU machine; every change is reported to ``record``."""

    def __init__(
        self, spec: MachineSpec, launch: Launcher, record: Callable[[dict[str, Any]], None]
    ) -> None:
        self.spec = spec
        self.launch = launch
        self.record = record
        self.lock = threading.RLock()
        self.proc: Process | None = None
        self.qmp: Qmp | None = None
        self.bootdev = "default"
        self.persistent = False
        self.uefi = spec.firmware == "uefi"
        self.starts = 0
        self._restart = False  # set by cycle: start again when this process ends
        self._reason = ""  # the SHUTDOWN event's reason

    # ------------------------------------------------------------------ state
    @property
    def power(self) -> str:
        with self.lock:
            return "on" if self.proc is not None and self.proc.poll() is None else "off"

    def set_boot(self, device: str, persistent: bool, uefi: bool) -> None:
        with self.lock:
            self.bootdev, self.persistent, self.uefi = device, persistent, uefi
            self.record({"event": "bootdev", "device": device, "persistent": persistent})

    # ------------------------------------------------------------------ power
    def power_on(self) -> None:
        with self.lock:
            if self.power == "off":
                self._start()

    def power_off(self) -> None:
        with self.lock:
            self._restart = False
            self._stop("quit")

    def shutdown(self) -> None:
        """ACPI power button (the stand-in ignores it, as a hung OS would)."""
        with self.lock:
            self._qmp("system_powerdown")

    def reset(self) -> None:
        """Hard reset: QEMU ends (``-no-reboot``) and the watcher starts it again."""
        with self.lock:
            if self.power == "on" and not self._qmp("system_reset"):
                self._restart = True
                self._kill()

    def cycle(self) -> None:
        """Off, then on with the current boot device (a machine that is off just starts)."""
        with self.lock:
            if self.power == "off":
                self._start()
                return
            self._restart = True
            self._stop("quit")

    # ------------------------------------------------------------------ process
    def _start(self) -> None:
        bootdev = self.bootdev
        if not self.persistent:
            self.bootdev = "default"  # one-time: the next start boots the default order
        (self.spec.path / "qmp.sock").unlink(missing_ok=True)
        argv = qemu_argv(self.spec, bootdev)
        proc = self.launch(argv, self.spec.path / "qemu.log")
        self.proc, self.qmp, self._restart, self._reason = proc, None, False, ""
        self.starts += 1
        self.record({"event": "start", "bootdev": bootdev, "pid": proc.pid, "n": self.starts})
        threading.Thread(target=self._watch, args=(proc,), daemon=True).start()

    def _watch(self, proc: Process) -> None:
        """Connect QMP, wait for QEMU to end, then start it again if it was a reset."""
        try:
            qmp = Qmp(self.spec.path / "qmp.sock", self._event)
        except (QmpError, OSError, ValueError) as exc:
            self.record({"event": "qmp-failed", "error": str(exc)})
            qmp = None
        with self.lock:
            if self.proc is proc:
                self.qmp = qmp
        code = proc.wait()
        if qmp is not None:
            qmp.reader.join(2.0)  # the SHUTDOWN event's reason is read before deciding
        with self.lock:
            if qmp is not None:
                qmp.close()
            if self.proc is not proc:
                return
            self.proc, self.qmp = None, None
            again = self._restart or self._reason in RESTART_REASONS
            self.record({"event": "exit", "code": code, "reason": self._reason, "restart": again})
            if again:
                self._start()

    def _event(self, event: Event) -> None:
        if event.get("event") == "SHUTDOWN":
            self._reason = str(event.get("data", {}).get("reason", ""))

    def _qmp(self, command: str) -> bool:
        """Send a QMP command to the running QEMU; False when there is none or it failed."""
        qmp = self._wait_qmp()
        if qmp is None:
            return False
        try:
            qmp.command(command)
        except QmpError as exc:
            self.record({"event": "qmp-error", "command": command, "error": str(exc)})
            return False
        return True

    def _wait_qmp(self, timeout: float = 5.0) -> Qmp | None:
        """The QMP connection of the running QEMU (just started: wait for it)."""
        deadline = time.monotonic() + timeout
        while self.power == "on" and self.qmp is None and time.monotonic() < deadline:
            self.lock.release()
            try:
                time.sleep(0.02)
            finally:
                self.lock.acquire()
        return self.qmp if self.power == "on" else None

    def _stop(self, command: str) -> None:
        if self.power == "on" and not self._qmp(command):
            self._kill()

    def _kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()

    def stop_now(self, timeout: float = 5.0) -> None:
        """Power off and wait for the process to end (lab teardown)."""
        with self.lock:
            self._restart = False
            proc = self.proc
            self._stop("quit")
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
