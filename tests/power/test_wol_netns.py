"""Wake-on-LAN as a real broadcast, confined to two private network namespaces.

``bmpC-<pid>-a`` (the provisioner, 192.0.2.1) and ``bmpC-<pid>-b`` (the sleeping NIC,
192.0.2.2) are joined by a veth pair whose ends are created directly inside them; the
broadcast never touches a real interface. ``bmprov power on`` runs inside namespace a with the
starter's default target (255.255.255.255) and ``[bmc.wol] interface = "192.0.2.1"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.sims.fixtures import WOL_PORT, add_nodes

pytestmark = pytest.mark.peer
LISTENER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.settimeout(5)
print("ready", flush=True)
data, peer = s.recvfrom(2048)
print(data.hex(), peer[0], flush=True)
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def kill_namespace(name: str) -> None:
    pids = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        subprocess.run(["kill", "-9", pid], check=False)
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2")
    a, b = f"bmpC-{os.getpid()}-a", f"bmpC-{os.getpid()}-b"
    try:
        ip("netns", "add", a)
    except subprocess.CalledProcessError:
        pytest.skip("cannot create network namespaces here")
    try:
        ip("netns", "add", b)
        veth_a, veth_b = f"bmpC{os.getpid()}a"[:15], f"bmpC{os.getpid()}b"[:15]
        ip("-n", a, "link", "add", veth_a, "type", "veth", "peer", "name", veth_b, "netns", b)
        ip("-n", a, "addr", "add", "192.0.2.1/24", "brd", "+", "dev", veth_a)
        ip("-n", b, "addr", "add", "192.0.2.2/24", "brd", "+", "dev", veth_b)
        for ns, dev in ((a, veth_a), (b, veth_b)):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        kill_namespace(a)
        kill_namespace(b)


def test_broadcast_wake_inside_namespaces(namespaces, site) -> None:
    a, b = namespaces
    text = site.config_path.read_text().replace(
        '# interface = "10.20.0.1"', 'interface = "192.0.2.1"'
    )
    text = text.replace("port = 9\n", f"port = {WOL_PORT}\n")
    site.config_path.write_text(text)
    with site.db() as db:
        add_nodes(db, [{"serial": "w1", "bmc_type": "wol", "mac": "52:54:00:aa:bb:03"}])
    listener = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, "-c", LISTENER.format(port=WOL_PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        run = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                a,
                sys.executable,
                "-m",
                "bmprov",
                "-c",
                str(site.config_path),
                "power",
                "on",
                "-s",
                "w1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Wake-on-LAN sent to 52:54:00:aa:bb:03" in run.stdout
        payload, sender = listener.stdout.readline().split()
        listener.wait(timeout=5)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert bytes.fromhex(payload) == b"\xff" * 6 + bytes.fromhex("525400aabb03") * 16
    assert sender == "192.0.2.1"
