"""An isolated PXE network with real servers, and QEMU machines that boot from it.

One namespace ``bmpQ-<pid>-<n>`` holds everything (pxe-boot.md §3, step B):

    bmpQ-br0 10.234.0.1/24 (+ fd34:234::1/64)  <-- bmpQ-tap0 <-- QEMU (TCG)
      ISC dhcpd      reservations only, OMAPI on 127.0.0.1:7911 (bmprov adds the hosts)
      in.tftpd       the sites' TFTP root <dir>/tftp
      HTTP (thread)  the sites' HTTP root <dir>/tftp/http on :8080 (inside the TFTP root, so
                     iPXE can also fetch boot.ipxe by TFTP), plus GET /callback from the guest
      dnsmasq        IPv6 router advertisements only: without them iPXE waits ~15 s (§9.7)

The namespace has no uplink. Every daemon is our direct child (``ip netns exec`` execs it) and
is stopped by PID; whatever is still in ``ip netns pids`` of our namespace is killed before
``ip netns del``, even when the test fails.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import itertools
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bmprov.lab import services
from tests import peers
from tests.peers import stop_process

PREFIX = "bmpQ-"
BRIDGE, TAP = "bmpQ-br0", "bmpQ-tap0"
SUBNET, SERVER, NETMASK = "10.234.0.0/24", "10.234.0.1", "255.255.255.0"
HTTP_PORT, OMAPI_PORT = 8080, 7911
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
_counter = itertools.count(1)


@dataclass(frozen=True)
class Callback:
    """One ``GET /callback`` from the test initrd."""

    t: float
    client: str
    query: dict[str, str]

    @property
    def cmdline(self) -> list[str]:
        return base64.urlsafe_b64decode(self.query.get("cmdline", "")).decode().split()


@dataclass
class Boot:
    """How one QEMU run ended."""

    exit_code: int | None  # None: killed at the timeout
    seconds: float
    callbacks: list[Callback]
    serial: str


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    lab: PxeLab

    def log_message(self, format: str, *args: object) -> None:
        self.lab.requests.append((time.time(), self.client_address[0], format % args))

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/callback":
            super().do_GET()
            return
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        self.lab.callbacks.append(Callback(time.time(), self.client_address[0], query))
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"OK\n")


@dataclass
class PxeLab:
    ns: str
    dir: Path
    tftp_root: Path
    http_root: Path
    secret: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    requests: list[tuple[float, str, str]] = field(default_factory=list)  # time, client, line

    def start(self, name: str, *args: str | Path, pipe: bool = False) -> subprocess.Popen[bytes]:
        """A daemon inside the namespace, our direct child, output in ``<dir>/<name>.log``.

        ``pipe``: stdout is a pipe for the caller to read (stderr still goes to the log).
        """
        with (self.dir / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *map(str, args)],
                stdout=subprocess.PIPE if pipe else out,
                stderr=out if pipe else subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append(proc)
        return proc

    def boot(self, name: str, qemu_args: list[str], timeout: float, until_callback: bool) -> Boot:
        """Run QEMU on the tap until it exits (or, with ``until_callback``, calls back).

        The serial console is kept in ``<dir>/<name>.serial.log``, each line prefixed with the
        seconds since QEMU started (firmware and loaders print no time of their own).
        """
        seen = len(self.callbacks)
        started = time.monotonic()
        self.requests.append((time.time(), "-", f"===== {name}: qemu starts"))
        proc = self.start(
            f"{name}.qemu",
            "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-smp", "1", "-nodefaults",
            "-display", "none", "-no-reboot",
            "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
            *qemu_args,
            pipe=True,
        )  # fmt: skip
        console: list[bytes] = []
        reader = threading.Thread(
            target=_timestamp, args=(proc, started, self.dir / f"{name}.serial.log", console)
        )
        reader.start()
        code: int | None = None
        deadline = started + timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None or (until_callback and len(self.callbacks) > seen):
                break
            time.sleep(0.05)
        if code is None and until_callback and len(self.callbacks) > seen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(20)  # the initrd powers off right after calling back
        elapsed = time.monotonic() - started
        self.stop(proc)
        reader.join(10)
        text = b"".join(console).decode(errors="replace")
        return Boot(code, elapsed, self.callbacks[seen:], text)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        if proc in self.procs:
            self.procs.remove(proc)


def _timestamp(
    proc: subprocess.Popen[bytes], started: float, path: Path, console: list[bytes]
) -> None:
    """Copy QEMU's serial console (its stdout) to ``path``, each line with +seconds."""
    assert proc.stdout is not None
    with path.open("wb") as out:
        for line in proc.stdout:
            console.append(line)
            out.write(b"%7.2f " % (time.monotonic() - started) + line)


def can_run() -> bool:
    """Root, the peers and the firmware the test boots."""
    needed = ("qemu-system-x86_64", "in.tftpd", "dnsmasq", "dpkg", "apt-get", "depmod")
    return (
        peers.can_run_peers()
        and all(shutil.which(p) or Path("/usr/sbin", p).exists() for p in needed)
        and Path("/usr/lib/PXELINUX/pxelinux.0").exists()
        and Path("/usr/lib/ipxe/qemu/efi-virtio.rom").exists()
    )


def can_run_uefi() -> bool:
    return OVMF_CODE.exists() and shutil.which("grub-mknetdir") is not None


def bios_args(mac: str, disk: Path) -> list[str]:
    """SeaBIOS + the virtio-net iPXE ROM first, then the local disk."""
    return [
        "-machine", "pc",
        "-device", f"virtio-net-pci,netdev=n0,mac={mac},bootindex=1",
        "-drive", f"file={disk},format=raw,if=none,id=d0,snapshot=on",
        "-device", "ide-hd,drive=d0,bootindex=2",
    ]  # fmt: skip


def uefi_args(mac: str, esp: Path, nvram: Path, nic: str = "virtio-net-pci,romfile=") -> list[str]:
    """OVMF's own PXE client (virtio-net without ROM, §9.10), then the local ESP.

    ``nic="e1000"``: the NIC's EFI iPXE ROM boots instead of OVMF's PXE.
    """
    if not nvram.exists():
        shutil.copyfile(OVMF_VARS, nvram)
    return [
        "-machine", "q35",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={nvram}",
        "-device", f"{nic},netdev=n0,mac={mac},bootindex=1",
        "-drive", f"file=fat:{esp},format=raw,if=none,id=d0,readonly=on",
        "-device", "virtio-blk-pci,drive=d0,bootindex=2",
    ]  # fmt: skip


def _ns_up(ns: str) -> None:
    peers.sh("ip", "netns", "add", ns)
    peers.sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    peers.sh("ip", "-n", ns, "link", "set", "lo", "up")
    peers.sh("ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
    peers.sh("ip", "-n", ns, "addr", "add", f"{SERVER}/24", "dev", BRIDGE)
    peers.sh("ip", "-n", ns, "addr", "add", "fd34:234::1/64", "dev", BRIDGE, "nodad")
    peers.sh("ip", "-n", ns, "link", "set", BRIDGE, "up")
    peers.sh("ip", "-n", ns, "tuntap", "add", "dev", TAP, "mode", "tap")
    peers.sh("ip", "-n", ns, "link", "set", TAP, "master", BRIDGE, "up")


_ns_down = peers.delete_netns


def _servers(lab: PxeLab) -> None:
    d = lab.dir
    lab.start(
        "dnsmasq-ra", "dnsmasq", "--keep-in-foreground", "--port=0", f"--interface={BRIDGE}",
        "--bind-interfaces", "--enable-ra", "--dhcp-range=fd34:234::,ra-only,64,600",
        f"--ra-param={BRIDGE},5", "--no-resolv", "--no-hosts", "--user=root", "--group=root",
        f"--pid-file={d / 'dnsmasq-ra.pid'}", "--log-facility=-",
    )  # fmt: skip
    conf = services.dhcpd_conf(lab.secret, SUBNET, NETMASK, SERVER, OMAPI_PORT)
    (d / "dhcpd.conf").write_text(conf)
    (d / "dhcpd.leases").write_text("")
    lab.start(
        "dhcpd", peers.DHCPD, "-4", "-f", "-d", "-cf", d / "dhcpd.conf",
        "-lf", d / "dhcpd.leases", "-pf", d / "dhcpd.pid", BRIDGE,
    )  # fmt: skip
    lab.start(
        "tftpd", "/usr/sbin/in.tftpd", "--foreground", "--listen", "--address", f"{SERVER}:69",
        "--secure", "--user", "nobody", lab.tftp_root,
    )  # fmt: skip
    peers.wait_port(lab.ns, OMAPI_PORT)
    _wait_udp(lab.ns, f"{SERVER}:69")


def _wait_udp(ns: str, address: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while address not in peers.sh("ip", "netns", "exec", ns, "ss", "-lnu").stdout:
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on udp {address} in {ns}")
        time.sleep(0.05)


@contextlib.contextmanager
def _http(lab: PxeLab) -> Iterator[None]:
    handler = type("Handler", (_Handler,), {"lab": lab})
    factory = functools.partial(handler, directory=str(lab.http_root))
    with peers.netns(lab.ns):  # the listening socket lives in the namespace
        server = http.server.ThreadingHTTPServer((SERVER, HTTP_PORT), factory)
    thread = threading.Thread(target=server.serve_forever, name="bmpQ-http", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def pxe_lab(directory: Path) -> Iterator[PxeLab]:
    """The namespace, its servers and an empty TFTP/HTTP root; all torn down on exit."""
    ns = f"{PREFIX}{os.getpid()}-{next(_counter)}"
    tftp = directory / "tftp"
    web = tftp / "http"  # inside the TFTP root too: iPXE can fetch http/boot.ipxe by TFTP
    for root in (directory, tftp, web):
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
    lab = PxeLab(ns, directory, tftp, web, peers.new_secret())
    try:
        _ns_up(ns)
        _servers(lab)
        with _http(lab):
            yield lab
    finally:
        for proc in reversed(lab.procs):
            lab.stop(proc)
        _ns_down(ns)
