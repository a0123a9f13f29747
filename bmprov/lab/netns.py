"""The lab's network: one namespace with a bridge and one tap per machine, and no uplink.

    <ns>:  br0 SERVER/24 (+ fd00:b3b5::1/64 for router advertisements)
             ├── tap0 ← QEMU machine 1
             └── tap1 ← QEMU machine 2 ...

Only ``lo``, ``br0`` and the taps exist in it; nothing is added to the host's namespace, so no
real interface is touched. :func:`inside` runs the calling thread in the namespace, so a
listening socket made there (the HTTP server, the OMAPI forwarder's outgoing connections)
lives in the lab network while the process stays in the host's.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLONE_NEWNET = 0x40000000
BRIDGE = "br0"
SERVER, PREFIX_LEN = "10.239.0.1", 24
SUBNET, NETMASK = "10.239.0.0/24", "255.255.255.0"
SERVER6 = "fd00:b3b5::1/64"
_libc = ctypes.CDLL(None, use_errno=True)


def tap(index: int) -> str:
    return f"tap{index}"


def ip(*args: str) -> None:
    """``ip ARGS``; RuntimeError with ip's message when it fails."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def create(ns: str, taps: int) -> None:
    """The namespace, its bridge and ``taps`` tap devices attached to it."""
    ip("netns", "add", ns)
    ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0")
    ip("-n", ns, "addr", "add", f"{SERVER}/{PREFIX_LEN}", "dev", BRIDGE)
    ip("-n", ns, "addr", "add", SERVER6, "dev", BRIDGE, "nodad")
    ip("-n", ns, "link", "set", BRIDGE, "up")
    for i in range(taps):
        ip("-n", ns, "tuntap", "add", "dev", tap(i), "mode", "tap")
        ip("-n", ns, "link", "set", tap(i), "master", BRIDGE, "up")


def exists(ns: str) -> bool:
    return Path(f"/run/netns/{ns}").exists()


def delete(ns: str) -> list[int]:
    """Kill whatever still runs inside the namespace, then delete it; the PIDs killed."""
    if not exists(ns):
        return []
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
    killed = [int(p) for p in out.stdout.split()]
    for pid in killed:  # only processes inside this namespace, which the lab made
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    return killed


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run this thread inside ``ns``: sockets created here live in that namespace."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        yield
    finally:
        _libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)
