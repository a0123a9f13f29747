"""A real in.tftpd (tftpd-hpa) serves the TFTP root bmprov wrote; real TFTP clients fetch from it.

The daemon binds 127.0.0.1 only, on a free port from this feature's range 18000-18099, and is
stopped by its PID in the fixture's teardown even when the test fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bootutil import import_nodes, set_stage
from tests.peers import stop_process

pytestmark = pytest.mark.peer

PORTS = range(18060, 18100)
MAC = "52:54:00:ab:cd:01"
PXE = "pxelinux.cfg/01-52-54-00-ab-cd-01"
GRUB = "grub/grub.cfg-01-52-54-00-ab-cd-01"


def free_udp_port() -> int:
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free UDP port in 18060-18099")


def curl(port: int, name: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "5", f"tftp://127.0.0.1:{port}/{name}"],
        capture_output=True,
        check=False,
        timeout=10,
    )


@pytest.fixture
def tftpd(site) -> Iterator[tuple[int, Path]]:
    """in.tftpd in the foreground (-L), chrooted (-s) to the site's TFTP root."""
    binary = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    root = site.dir / "tftpboot"
    root.mkdir(exist_ok=True)
    (root / "probe").write_text("ok\n")
    port = free_udp_port()
    proc = subprocess.Popen(
        [binary, "-L", "-s", "-a", f"127.0.0.1:{port}", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while curl(port, "probe").stdout != b"ok\n":
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"in.tftpd did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        yield port, root
    finally:
        stop_process(proc)


def test_loaders_fetch_per_mac_entries_over_tftp(site, cli, tftpd, tmp_path) -> None:
    port, root = tftpd
    import_nodes(site, cli, [["SN1", MAC, "rocky9", "web1", "provisioning_auto"]])
    set_stage(site, "os_provisioning")
    assert cli("pxe", "render").exit_code == 0

    fetched = curl(port, PXE)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == (root / PXE).read_bytes()
    assert b"APPEND inst.ks=http://10.20.0.1/ks/SN1.cfg" in fetched.stdout

    out = tmp_path / "grub.cfg"  # the tftp-hpa client, as dhcp.md §5 does
    run = subprocess.run(
        ["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", GRUB, str(out)],
        capture_output=True,
        check=False,
        timeout=10,
    )
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == (root / GRUB).read_bytes()  # tftp exits 0 on errors: compare
    assert b"linux /rocky9/vmlinuz 'inst.ks=http://10.20.0.1/ks/SN1.cfg'" in out.read_bytes()

    assert cli("pxe", "clear", "SN1").exit_code == 0
    assert b"LOCALBOOT 0" in curl(port, PXE).stdout
    assert b"chainloader ($esp)/EFI/BOOT/BOOTX64.EFI" in curl(port, GRUB).stdout
    assert b"LOCALBOOT 0" in curl(port, "pxelinux.cfg/default").stdout
    assert curl(port, "pxelinux.cfg/01-52-54-00-00-00-00").returncode != 0  # unknown: NAK
