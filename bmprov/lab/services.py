"""The lab's servers inside its namespace: dhcpd (OMAPI), in.tftpd, router advertisements.

Each is started with ``ip netns exec`` (which execs it, so the PID recorded is the daemon's),
in a session of its own so it outlives ``bmprov lab up``, with its output in ``logs/``. The
HTTP side (install files, installer callbacks) is ``bmprov serve`` (:mod:`bmprov.lab.serving`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bmprov.lab import netns

DHCPD = "/usr/sbin/dhcpd"
TFTPD = "/usr/sbin/in.tftpd"
OMAPI_PORT = 7911  # inside the namespace; the agent forwards a host loopback port to it
HTTP_PORT = 8080
UEFI_LOADER = "grub/x86_64-efi/core.efi"
BIOS_LOADER = "pxelinux.0"

DHCPD_CONF = """\
# bmprov lab: reservations only (bmprov adds each host over OMAPI); no dynamic range, so a
# machine bmprov does not know gets no address.
authoritative; ddns-update-style none; default-lease-time 600; max-lease-time 600;
omapi-port {omapi_port};
key omapi_key {{ algorithm hmac-md5; secret "{secret}"; }};
omapi-key omapi_key;
# iPXE (the BIOS machines' NIC ROM) otherwise waits ~3 s for ProxyDHCP offers (pxe-boot.md §9.8)
option space ipxe;
option ipxe-encap-opts code 175 = encapsulate ipxe;
option ipxe.no-pxedhcp code 176 = unsigned integer 8;
option ipxe.no-pxedhcp 1;
option arch code 93 = unsigned integer 16;
subnet {subnet} netmask {netmask} {{
  option routers {server}; option subnet-mask {netmask}; next-server {server};
  if option arch = 00:07 or option arch = 00:09 {{ filename "{uefi}"; }}
  else {{ filename "{bios}"; }}
}}
"""


def dhcpd_conf(
    secret: str, subnet: str = netns.SUBNET, netmask: str = netns.NETMASK,
    server: str = netns.SERVER, omapi_port: int = OMAPI_PORT,
) -> str:  # fmt: skip
    """dhcpd.conf of a lab network (a host's own ``filename`` from OMAPI wins over these)."""
    return DHCPD_CONF.format(
        omapi_port=omapi_port, secret=secret, subnet=subnet.split("/", maxsplit=1)[0],
        netmask=netmask,
        server=server, uefi=UEFI_LOADER, bios=BIOS_LOADER,
    )  # fmt: skip


def start(ns: str, log: Path, *args: str | Path) -> subprocess.Popen[bytes]:
    """A daemon inside ``ns``, in its own session, output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *map(str, args)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def dhcpd(ns: str, directory: Path, secret: str) -> subprocess.Popen[bytes]:
    conf = directory / "dhcpd.conf"
    conf.write_text(dhcpd_conf(secret))
    conf.chmod(0o600)  # holds the OMAPI key
    leases = directory / "dhcpd.leases"
    leases.touch()
    return start(
        ns, directory / "logs/dhcpd.log", DHCPD, "-4", "-f", "-d", "-cf", conf, "-lf", leases,
        "-pf", directory / "dhcpd.pid", netns.BRIDGE,
    )  # fmt: skip


def tftpd(ns: str, directory: Path, root: Path) -> subprocess.Popen[bytes]:
    return start(
        ns, directory / "logs/tftpd.log", TFTPD, "--foreground", "--listen",
        "--address", f"{netns.SERVER}:69", "--secure", "--user", "nobody", root,
    )  # fmt: skip


def router_adverts(ns: str, directory: Path) -> subprocess.Popen[bytes]:
    """IPv6 RAs only (no DNS, no DHCP): without them iPXE waits ~15 s (pxe-boot.md §9.7)."""
    prefix = netns.SERVER6.split("::")[0] + "::"
    return start(
        ns, directory / "logs/dnsmasq-ra.log", "dnsmasq", "--keep-in-foreground", "--port=0",
        f"--interface={netns.BRIDGE}", "--bind-interfaces", "--enable-ra",
        f"--dhcp-range={prefix},ra-only,64,600", f"--ra-param={netns.BRIDGE},5", "--no-resolv",
        "--no-hosts", "--user=root", "--group=root", f"--pid-file={directory / 'dnsmasq-ra.pid'}",
        "--log-facility=-",
    )  # fmt: skip


def wait_listening(ns: str, proto: str, port: int, timeout: float = 15.0) -> None:
    """Wait until something in ``ns`` listens on ``port`` (``ss -ln``, any address)."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["ip", "netns", "exec", ns, "ss", f"-ln{proto[0]}"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        if any(line.split()[3].endswith(f":{port}") for line in out.splitlines()[1:]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {proto} port {port} in {ns}")
        time.sleep(0.05)
