"""Real DHCP/TFTP peers in throw-away network namespaces (reusable by tests and bench).

Every name starts with ``bmpA-`` and carries the pid; both veth ends are created directly
inside the namespaces, so nothing ever appears in the host netns. Daemons are started as direct
children (``ip netns exec`` execs them: Popen.pid is the daemon) and killed by PID; whatever is
left in ``ip netns pids`` of our own namespaces is killed too before ``ip netns del``.
Subnets are 10.231.N.0/24; OMAPI stays on 127.0.0.1 inside the server namespace.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bmprov.lab.netns import inside

PREFIX = "bmpA-"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count(1)
SRV_IF, CLI_IF = "bmpA-s0", "bmpA-c0"
DHCPD = "/usr/sbin/dhcpd"


def can_run_peers() -> bool:
    """Root and the peer programs are present."""
    return os.geteuid() == 0 and Path(DHCPD).exists() and shutil.which("ip") is not None


def netns(name: str) -> contextlib.AbstractContextManager[None]:
    """Run this thread inside ``name``: sockets created here live in that namespace."""
    return inside(name)


def sh(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout)


def delete_netns(ns: str) -> None:
    """Kill whatever still runs inside one of our own namespaces, then delete it."""
    left = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in left:  # only processes inside this namespace
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate a child we started, by its PID; kill it if it lingers, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Topology:
    """A server and a client namespace joined by a veth pair."""

    srv: str
    cli: str
    net: int  # the N of 10.231.N.0/plen
    client_mac: str
    plen: int = 24
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def subnet(self) -> str:
        return f"10.231.{self.net}.0/{self.plen}"

    @property
    def netmask(self) -> str:
        return socket.inet_ntoa(((0xFFFFFFFF << (32 - self.plen)) & 0xFFFFFFFF).to_bytes(4, "big"))

    @property
    def server_ip(self) -> str:
        return f"10.231.{self.net}.1"

    def start(
        self, args: list[str], log: Path, env: dict[str, str] | None = None, ns: str | None = None
    ) -> subprocess.Popen[bytes]:
        """A daemon inside the server namespace (or ``ns``), as our direct child."""
        out = log.open("wb")
        cmd = ["ip", "netns", "exec", ns or self.srv, *args]
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        out.close()
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        if proc in self.procs:
            self.procs.remove(proc)


@contextlib.contextmanager
def topology(client_mac: str, net: int, plen: int = 24) -> Iterator[Topology]:
    """``bmpA-s<pid>-<n>`` / ``bmpA-c<pid>-<n>`` with 10.231.net.1 on the server end."""
    n = next(_counter)
    srv, cli = f"{PREFIX}s{os.getpid()}-{n}", f"{PREFIX}c{os.getpid()}-{n}"
    topo = Topology(srv, cli, net, client_mac, plen=plen)
    try:
        sh("ip", "netns", "add", topo.srv)
        sh("ip", "netns", "add", topo.cli)
        sh(
            "ip",
            "link",
            "add",
            SRV_IF,
            "netns",
            topo.srv,
            "type",
            "veth",
            "peer",
            "name",
            CLI_IF,
            "netns",
            topo.cli,
        )
        for ns in (topo.srv, topo.cli):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", topo.srv, "addr", "add", f"{topo.server_ip}/{plen}", "dev", SRV_IF)
        sh("ip", "-n", topo.cli, "link", "set", CLI_IF, "address", client_mac)
        sh("ip", "-n", topo.srv, "link", "set", SRV_IF, "up")
        sh("ip", "-n", topo.cli, "link", "set", CLI_IF, "up")
        yield topo
    finally:
        for proc in list(topo.procs):
            topo.stop(proc)
        for ns in (topo.srv, topo.cli):
            delete_netns(ns)


def wait_port(ns: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with netns(ns):
            sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", port))
            return
        except OSError:
            time.sleep(0.02)
        finally:
            sock.close()
    raise TimeoutError(f"nothing listens on {port} in {ns}")


def wait_path(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.02)


def new_secret() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def start_dhcpd(
    topo: Topology, d: Path, secret: str, port: int = 7911, leases: Path | None = None
) -> subprocess.Popen[bytes]:
    """ISC dhcpd with OMAPI on 127.0.0.1:port in the server namespace; reservations only."""
    (d / "dhcpd.conf").write_text(
        f"authoritative; ddns-update-style none; omapi-port {port};\n"
        f'key omapi_key {{ algorithm hmac-md5; secret "{secret}"; }};\nomapi-key omapi_key;\n'
        f"subnet 10.231.{topo.net}.0 netmask {topo.netmask} {{\n"
        f"  option routers {topo.server_ip}; option subnet-mask {topo.netmask};\n}}\n"
    )
    leases = leases or d / "dhcpd.leases"
    leases.write_text("")
    proc = topo.start(
        [
            DHCPD,
            "-4",
            "-f",
            "-d",
            "-cf",
            str(d / "dhcpd.conf"),
            "-lf",
            str(leases),
            "-pf",
            str(d / "dhcpd.pid"),
            SRV_IF,
        ],
        d / "dhcpd.log",
    )
    wait_port(topo.srv, port)
    return proc


def start_dnsmasq(
    topo: Topology, d: Path, hostsdir: Path, tftproot: Path, boot_file: str
) -> subprocess.Popen[bytes]:
    """dnsmasq: reservations only (``static``), hostsdir, built-in TFTP, no DNS."""
    hostsdir.mkdir(parents=True, exist_ok=True)
    conf = d / "dnsmasq.conf"
    conf.write_text(
        f"port=0\ninterface={SRV_IF}\nbind-interfaces\ndhcp-authoritative\nuser=root\n"
        f"dhcp-range=10.231.{topo.net}.0,static,255.255.255.0,10m\n"
        f"dhcp-hostsdir={hostsdir}\ndhcp-boot={boot_file},,{topo.server_ip}\n"
        f"dhcp-leasefile={d / 'dnsmasq.leases'}\npid-file={d / 'dnsmasq.pid'}\n"
        f"enable-tftp\ntftp-root={tftproot}\nlog-dhcp\nlog-facility=-\n"
    )
    proc = topo.start(["dnsmasq", "--keep-in-foreground", "-C", str(conf)], d / "dnsmasq.log")
    wait_path(d / "dnsmasq.pid")
    return proc


def start_kea(topo: Topology, d: Path) -> subprocess.Popen[bytes]:
    """kea-dhcp4 with an empty reservation list and a unix control socket in ``d``."""
    conf = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [SRV_IF], "dhcp-socket-type": "raw"},
            "control-socket": {"socket-type": "unix", "socket-name": str(d / "kea.sock")},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(d / "kea-leases4.csv"),
                "lfc-interval": 0,
            },
            "valid-lifetime": 600,
            "authoritative": True,
            "host-reservation-identifiers": ["hw-address"],
            "subnet4": [
                {
                    "id": 1,
                    "subnet": topo.subnet,
                    "pools": [],
                    "option-data": [{"name": "routers", "data": topo.server_ip}],
                    "reservations": [],
                }
            ],
            "loggers": [
                {"name": "kea-dhcp4", "severity": "INFO", "output_options": [{"output": "stdout"}]}
            ],
        }
    }
    (d / "kea-dhcp4.conf").write_text(json.dumps(conf, indent=2))
    env = {"KEA_PIDFILE_DIR": str(d), "KEA_LOCKFILE_DIR": str(d)}
    proc = topo.start(["kea-dhcp4", "-c", str(d / "kea-dhcp4.conf")], d / "kea.log", env)
    wait_path(d / "kea.sock")
    return proc


def start_tftpd(topo: Topology, root: Path, d: Path) -> subprocess.Popen[bytes]:
    """in.tftpd serving ``root`` on the server address."""
    proc = topo.start(
        [
            "/usr/sbin/in.tftpd",
            "--foreground",
            "--listen",
            "--address",
            f"{topo.server_ip}:69",
            "--secure",
            "--user",
            "nobody",
            str(root),
        ],
        d / "tftpd.log",
    )
    time.sleep(0.1)
    return proc


UDHCPC_HOOK = """#!/bin/sh
{ echo "event=$1"; env | grep -E '^(ip|siaddr|boot_file|hostname|router|dns|serverid)=' | sort; } \
  >> "$HOOK_OUT"
case "$1" in bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" ;; esac
exit 0
"""


def dhcp_client(topo: Topology, d: Path, tries: int = 4) -> dict[str, str]:
    """busybox udhcpc in the client namespace; the bound lease's fields (empty: no lease)."""
    hook = d / "udhcpc-hook.sh"
    hook.write_text(UDHCPC_HOOK)
    hook.chmod(0o755)
    out = d / "udhcpc.env"
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            topo.cli,
            "busybox",
            "udhcpc",
            "-i",
            CLI_IF,
            "-f",
            "-n",
            "-q",
            "-t",
            "4",
            "-T",
            "1",
            "-s",
            str(hook),
        ],
        env={**os.environ, "HOOK_OUT": str(out)},
        capture_output=True,
        timeout=30,
        check=False,
    )
    lease: dict[str, str] = {}
    bound = False
    for line in out.read_text().splitlines() if out.exists() else []:
        key, _, value = line.partition("=")
        if key == "event":
            bound = value == "bound"
        elif bound:
            lease[key] = value
    return lease


def tftp_get(topo: Topology, path: str) -> bytes:
    """Fetch a file over TFTP from the client namespace (curl fails on a missing file)."""
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            topo.cli,
            "curl",
            "-sS",
            "--max-time",
            "10",
            f"tftp://{topo.server_ip}/{path}",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
