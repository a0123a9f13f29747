"""``bmprov lab up|status|down``: the virtual rack's life cycle.

``up`` builds (once, cached) the installer stand-in and its ISO, gives every machine a local
disk, makes the namespace, starts router advertisements, dhcpd and in.tftpd in it and the
agent (virtual BMCs, QEMU, OMAPI forwarder) beside it, writes the site (``bmprov.toml``,
``purchases.csv``, the loaders, the stand-in added with ``media add``) and starts ``bmprov
serve`` on it, listening inside the namespace (:mod:`bmprov.lab.serving`).
Every process is recorded in ``lab.json`` as soon as it starts; any failure tears down what
was started. ``down`` stops the recorded processes (newest first, SIGTERM then SIGKILL after
5 s), kills whatever is still inside the namespace and deletes it; the site files and logs stay.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmprov.config import load_config
from bmprov.errors import BmprovError, InputError
from bmprov.fsutil import atomic_write
from bmprov.lab import installer, netns, services, site, state
from bmprov.lab.agent import READY
from bmprov.lab.machine import OVMF_CODE, OVMF_VARS, MachineSpec
from bmprov.lab.state import LabState
from bmprov.media import add_media

MAX_NODES = 32
NEEDED = (  # (program or file, Debian package): scripts/bootstrap.sh installs them all
    ("qemu-system-x86_64", "qemu-system-x86"),
    (services.DHCPD, "isc-dhcp-server"),
    (services.TFTPD, "tftpd-hpa"),
    ("dnsmasq", "dnsmasq-base"),
    ("xorriso", "xorriso"),
    ("syslinux", "syslinux"),
    ("mcopy", "mtools"),
    ("mkfs.vfat", "dosfstools"),
    ("grub-mkimage", "grub-common"),
    ("/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"),
    (str(site.PXELINUX), "pxelinux"),
    (str(site.LDLINUX), "syslinux-common"),
    ("/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-qemu"),
    (str(OVMF_CODE), "ovmf"),
    ("depmod", "kmod"),
    ("file", "file"),
)
Progress = Callable[[str], None]


class LabError(BmprovError):
    """A step of ``lab up`` failed (exit 1); what it had started is stopped again."""


def _quiet(_: str) -> None:
    pass


def missing_packages() -> list[str]:
    """Debian packages the lab needs that are not installed."""
    found = [p if p.startswith("/") else shutil.which(p) for p, _ in NEEDED]
    return sorted({pkg for (p, pkg), f in zip(NEEDED, found, strict=True)
                   if not (f and Path(f).exists())})  # fmt: skip


def check_host() -> None:
    """Root and the packages; InputError (exit 2) saying what to do otherwise."""
    if os.geteuid() != 0:
        raise InputError(
            "bmprov lab needs root: it makes a network namespace with tap devices and runs "
            "dhcpd, in.tftpd and QEMU in it (run it as root, e.g. with sudo)"
        )
    missing = missing_packages()
    if missing:
        raise InputError(
            f"bmprov lab needs these Debian packages: {' '.join(missing)} "
            "(scripts/bootstrap.sh installs them)"
        )


def machine_specs(
    directory: Path, ns: str, nodes: int, uefi: int, port_base: int
) -> list[MachineSpec]:
    """BIOS machines first, then ``uefi`` UEFI ones; MACs, serials and BMC ports by index."""
    specs = []
    for i in range(nodes):
        firmware = "uefi" if i >= nodes - uefi else "bios"
        name = f"lab-vm-{i + 1:02d}"
        specs.append(MachineSpec(
            name=name, serial=f"LABVM{i + 1:04d}", mac=f"52:54:00:b3:00:{i + 1:02x}",
            firmware=firmware, dir=str(directory / "machines" / name), tap=netns.tap(i),
            netns=ns, bmc_port=port_base + 1 + i,
        ))  # fmt: skip
    return specs


def up(
    directory: Path, nodes: int, uefi: int, port_base: int, progress: Progress = _quiet
) -> LabState:
    """Start a lab in ``directory``; everything started is torn down again if a step fails."""
    check_host()
    if not 1 <= nodes <= MAX_NODES or not 0 <= uefi <= nodes:
        raise InputError(
            f"--nodes must be 1-{MAX_NODES} and --uefi 0-{nodes} (got {nodes}, {uefi})"
        )
    if not 1024 <= port_base <= 65535 - MAX_NODES - 1:
        raise InputError(f"--port-base {port_base}: must be 1024-{65535 - MAX_NODES - 1}")
    directory = directory.resolve()
    old = state.load(directory)
    if old is not None and (any(state.alive(p) for p in old.procs) or netns.exists(old.netns)):
        raise InputError(
            f"a lab already runs in {directory}: run `bmprov lab down --dir {directory}` first"
        )
    for sub in ("logs", "tftp", "http", "machines"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for stale in ("vbmc.jsonl", READY, "dhcpd.leases", "logs/serve.log"):
        (directory / stale).unlink(missing_ok=True)
    ns = f"bmpL-{os.getpid()}"
    lab = LabState(str(directory), ns, port_base)
    lab.machines = machine_specs(directory, ns, nodes, uefi, port_base)
    lab.save()
    try:
        _up(lab, progress)
    except BaseException as exc:
        progress("failed: stopping everything it started")
        down(directory)
        if isinstance(exc, BmprovError) or not isinstance(exc, Exception):
            raise
        raise LabError(
            f"lab up failed: {exc}\neverything it started is stopped again "
            f"(logs: {directory / 'logs'})"
        ) from exc
    return lab


def _up(lab: LabState, progress: Progress) -> None:
    directory = Path(lab.dir)
    progress("installer stand-in: Debian kernel + busybox initrd, ISO (cached after the first run)")
    image = installer.standin_image()
    iso = installer.build_iso(image, directory / f"{site.OS_NAME}.iso")
    for spec in lab.machines:
        spec.path.mkdir(parents=True, exist_ok=True)
        for old in ("console.log", "qemu.log"):
            (spec.path / old).unlink(missing_ok=True)
        installer.local_disk(image, spec.path / "disk.img")
        if spec.firmware == "uefi":
            shutil.copyfile(OVMF_VARS, spec.path / "OVMF_VARS.fd")
    n = len(lab.machines)
    progress(f"namespace {lab.netns}: {netns.BRIDGE} {netns.SERVER}, {n} tap(s), no uplink")
    netns.create(lab.netns, len(lab.machines))
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    atomic_write(directory / "bmc.password", secrets.token_urlsafe(16) + "\n", mode=0o600)
    progress("dhcpd (OMAPI), in.tftpd, router advertisements")
    lab.track("dnsmasq-ra", services.router_adverts(lab.netns, directory).pid)
    lab.track("dhcpd", services.dhcpd(lab.netns, directory, secret).pid)
    lab.track("in.tftpd", services.tftpd(lab.netns, directory, directory / "tftp").pid)
    services.wait_listening(lab.netns, "tcp", services.OMAPI_PORT)  # dhcpd: any address
    services.wait_listening(lab.netns, "udp", 69)
    ports = f"127.0.0.1:{lab.port_base + 1}-{lab.port_base + n}"
    progress(f"agent: {n} virtual BMC(s) on {ports}, OMAPI forwarder on :{lab.omapi_port}")
    agent = _start_module(lab, "agent", "bmprov.lab.agent")
    _wait_ready(directory, agent)
    progress("site: bmprov.toml, purchases.csv, loaders, `media add` of the stand-in ISO")
    config = site.write_config(lab, secret)
    site.write_sheet(lab)
    site.install_loaders(directory / "tftp", any(m.firmware == "uefi" for m in lab.machines))
    add_media(load_config(config), site.OS_NAME, iso)
    progress(f"bmprov serve on {netns.SERVER}:{services.HTTP_PORT} (inside the namespace)")
    _wait_serving(lab, _start_module(lab, "serve", "bmprov.lab.serving"))


def _start_module(lab: LabState, name: str, module: str) -> subprocess.Popen[bytes]:
    """``python -m MODULE <dir>`` in its own session, output in ``logs/NAME.log``, tracked."""
    with (Path(lab.dir) / "logs" / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, lab.dir],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    lab.track(name, proc.pid)
    return proc


def _wait_serving(lab: LabState, serve: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until serve answers ``GET /api/nodes`` from inside the namespace (as a guest would)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection(netns.SERVER, services.HTTP_PORT, timeout=2)
        try:
            with netns.inside(lab.netns):
                conn.connect()
            conn.request("GET", "/api/nodes")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if serve.poll() is not None or time.monotonic() > deadline:
            tail = (Path(lab.dir) / "logs/serve.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"bmprov serve did not start:\n{tail}")
        time.sleep(0.1)


def _wait_ready(directory: Path, agent: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (directory / READY).exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            tail = (directory / "logs/agent.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the lab agent did not start:\n{tail}")
        time.sleep(0.05)


@dataclass
class DownReport:
    directory: Path
    found: bool
    stopped: list[str] = field(default_factory=list)
    killed_in_netns: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dir": str(self.directory), "found": self.found, "stopped": self.stopped,
                "killed_in_netns": self.killed_in_netns}  # fmt: skip


def down(directory: Path) -> DownReport:
    """Stop every process of the lab in ``directory`` and delete its namespace."""
    directory = directory.resolve()
    lab = state.load(directory)
    report = DownReport(directory, lab is not None)
    if lab is None:
        return report
    for proc in reversed(lab.procs):
        if _stop(proc):
            report.stopped.append(f"{proc.name} ({proc.pid})")
    report.killed_in_netns = netns.delete(lab.netns)
    lab.path.unlink(missing_ok=True)
    (directory / READY).unlink(missing_ok=True)
    return report


def _stop(proc: state.Tracked, timeout: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; False when it was not running."""
    if not state.alive(proc):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while state.alive(proc) and time.monotonic() < deadline:
            _reap(proc.pid)
            time.sleep(0.05)
        if not state.alive(proc):
            return True
    return True


def _reap(pid: int) -> None:
    """Reap it if it is our own child (``lab up`` in the same process, as in tests)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def status(directory: Path) -> dict[str, Any] | None:
    """Processes and machines of the lab in ``directory``; None when there is none."""
    directory = directory.resolve()
    lab = state.load(directory)
    if lab is None:
        return None
    power: dict[str, str] = {}
    for entry in state.read_jsonl(directory / "vbmc.jsonl"):
        if entry.get("event") == "start":
            power[entry["machine"]] = "on"
        elif entry.get("event") == "exit" and not entry.get("restart"):
            power[entry["machine"]] = "off"
    return {
        "dir": str(directory),
        "netns": lab.netns if netns.exists(lab.netns) else None,
        "config": str(directory / "bmprov.toml"),
        "sheet": str(directory / site.SHEET_NAME),
        "processes": [{"name": p.name, "pid": p.pid, "running": state.alive(p)} for p in lab.procs],
        "machines": [
            {
                "name": m.name,
                "serial": m.serial,
                "mac": m.mac,
                "firmware": m.firmware,
                "bmc": f"127.0.0.1:{m.bmc_port}",
                "power": power.get(m.name, "off"),
                "console": str(m.path / "console.log"),
            }
            for m in lab.machines
        ],
    }
