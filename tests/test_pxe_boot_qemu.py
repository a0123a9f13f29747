"""A real PXE boot of a QEMU machine from the files and the DHCP reservation bmprov made.

The site's provisioning network is a bridge in a throw-away namespace (tests/qemu/lab.py) with
ISC dhcpd (bmprov adds the host over OMAPI), in.tftpd and an HTTP server on the site's TFTP and
HTTP roots. The node's OS profile points at a Debian kernel and a tiny initrd
(tests/qemu/guest.py) that DHCPs, fetches the install file named by ``inst.ks=`` and calls back
with its MAC, its address and its kernel command line, then powers off. The sheet is imported
and the node advanced through the CLI; then the machine boots:

* install: the callback must come from the address bmprov allocated, carrying the kernel
  command line of the per-MAC entry bmprov wrote (``inst.ks=`` of this node's kickstart,
  ``BOOTIF`` of its MAC), and the kickstart must have been served;
* after ``bmprov pxe clear``: the same machine boots its local disk (QEMU exits 67), no callback.

Three loaders, each picked by the site's ``[dhcp] boot_filename`` (bmprov sends it per host):

* BIOS: SeaBIOS + the NIC's iPXE ROM → ``pxelinux.0`` → ``pxelinux.cfg/01-<mac>``;
* UEFI: OVMF's own PXE → GRUB netboot → ``grub/grub.cfg-01-<mac>``, whose cleared entry must
  chainload the ESP's loader (``exit`` would take minutes, pxe-boot.md §9.11);
* iPXE: the NIC's iPXE ROM → bmprov's ``boot.ipxe`` → ``ipxe/mac-<mac>.ipxe`` (cleared:
  ``sanboot`` of the first disk).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bmprov.config import load_config
from bmprov.netdetect import NetworkSettings
from bmprov.nodes import get_node
from bmprov.setup_site import init_site
from bmprov.store import StateDB
from tests import peers
from tests.conftest import write_csv
from tests.qemu import guest, lab

pytestmark = [
    pytest.mark.peer,
    pytest.mark.slow,
    pytest.mark.skipif(not lab.can_run(), reason="needs root, qemu, pxelinux and the peers"),
]

INSTALL_TIMEOUT = 120.0  # TCG: ~10-15 s expected (pxe-boot.md §7)
LOCAL_TIMEOUT = 60.0
OS_NAME = "bmptest"


@dataclass(frozen=True)
class Machine:
    """One node of the sheet and how its QEMU boots."""

    serial: str
    mac: str
    firmware: str  # bios | uefi | uefi-ipxe (the NIC's EFI iPXE ROM)
    boot_filename: str  # [dhcp] boot_filename, relative to the TFTP root
    pool: tuple[str, str]  # the addresses this site may hand out (the sites share the lab)
    loader_mark: str  # in /proc/cmdline only if the expected loader booted the kernel


BIOS = Machine(
    "QEMUBIOS01",
    "52:54:00:34:00:01",
    "bios",
    "pxelinux.0",
    ("10.234.0.10", "10.234.0.19"),
    f"BOOT_IMAGE={OS_NAME}/vmlinuz",  # pxelinux
)
UEFI = Machine(
    "QEMUUEFI01",
    "52:54:00:34:00:02",
    "uefi",
    "grub/x86_64-efi/core.efi",
    ("10.234.0.20", "10.234.0.29"),
    f"BOOT_IMAGE=/{OS_NAME}/vmlinuz",  # GRUB
)
IPXE = Machine(
    "QEMUIPXE01",
    "52:54:00:34:00:03",
    "bios",
    "http/boot.ipxe",  # bmprov's boot.ipxe: the lab's HTTP root is inside its TFTP root
    ("10.234.0.30", "10.234.0.39"),
    "initrd=initrd.img",  # iPXE
)

UEFI_IPXE = Machine(
    "QEMUEIPX01",
    "52:54:00:34:00:04",
    "uefi-ipxe",
    "http/boot.ipxe",
    ("10.234.0.40", "10.234.0.49"),
    "initrd=initrd.img",  # iPXE
)


@pytest.fixture(scope="module")
def pxe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.PxeLab]:
    image = guest.guest_image()
    with lab.pxe_lab(tmp_path_factory.mktemp("pxe")) as the_lab:
        root = the_lab.tftp_root
        shutil.copy(Path("/usr/lib/PXELINUX/pxelinux.0"), root)
        shutil.copy(Path("/usr/lib/syslinux/modules/bios/ldlinux.c32"), root)
        (root / OS_NAME).mkdir(mode=0o755)
        shutil.copy(image.kernel, root / OS_NAME / "vmlinuz")
        shutil.copy(image.initrd, root / OS_NAME / "initrd.gz")
        yield the_lab


def make_site(tmp: Path, pxe: lab.PxeLab, machine: Machine) -> Path:
    """A site on the lab's bridge: OMAPI to the lab's dhcpd, the lab's roots, the test OS."""
    net = NetworkSettings(lab.BRIDGE, lab.SERVER, lab.SUBNET, lab.SERVER)
    config = init_site(tmp / "site", net).config_path
    (tmp / "omapi.key").write_text(pxe.secret + "\n")
    text = config.read_text()
    for old, new in (
        ('backend = "file"', 'backend = "omapi"'),
        ('boot_filename = "pxelinux.0"', f'boot_filename = "{machine.boot_filename}"'),
        ('tftp_root = "tftpboot"', f'tftp_root = "{pxe.tftp_root}"'),
        ('http_root = "http"', f'http_root = "{pxe.http_root}"'),
        ("http_port = 80", f"http_port = {lab.HTTP_PORT}"),
        ("kernel_args = []", 'kernel_args = ["console=ttyS0,115200", "panic=-1"]'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    text += (
        f'\n[dhcp.omapi]\nport = {lab.OMAPI_PORT}\nkey_file = "{tmp / "omapi.key"}"\n'
        f'\n[boot.os.{OS_NAME}]\nkernel = "{OS_NAME}/vmlinuz"\ninitrd = "{OS_NAME}/initrd.gz"\n'
        f'\n[[pools]]\nname = "lab"\nsubnet = "{lab.SUBNET}"\ngateway = "{lab.SERVER}"\n'
        f'range = ["{machine.pool[0]}", "{machine.pool[1]}"]\n'
    )
    config.write_text(text)
    return config


def provision(cli, tmp: Path, pxe: lab.PxeLab, machine: Machine) -> tuple[Path, str]:
    """Import the one-node sheet, advance it to networking; returns (config, allocated IP)."""
    config = make_site(tmp, pxe, machine)
    sheet = write_csv(
        tmp / "sheet.csv",
        [
            ["serial", "mac", "hostname", "os", "notes"],
            [machine.serial, machine.mac, "qemu-node", OS_NAME, "provisioning_auto"],
        ],
    )
    for args in (("import", sheet), ("advance", "--stage", "mounting", "--all")):
        run = cli("--config", config, *args)
        assert run.exit_code == 0, run.stdout + run.stderr
    with peers.netns(pxe.ns):  # OMAPI listens on 127.0.0.1 inside the lab namespace
        run = cli("--config", config, "advance", "--stage", "networking", "--all")
    assert run.exit_code == 0, run.stdout + run.stderr
    # networking wrote the node's entries and the loaders' defaults (boot.ipxe...): the
    # operator's render writes nothing, so what boots below is the networking stage's own
    run = cli("--config", config, "pxe", "render", "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    written = {Path(p).name for p in json.loads(run.stdout)["written"]}
    assert not written, written
    with StateDB(load_config(config).state_path) as db:
        node = get_node(db, machine.serial)
    assert node.stage == "os_provisioning" and node.ip
    return config, node.ip


def qemu_args(tmp: Path, machine: Machine) -> list[str]:
    if machine.firmware == "bios":
        return lab.bios_args(machine.mac, guest.bios_disk(tmp / "disk.img"))
    esp = tmp / "esp"
    if not esp.exists():
        guest.uefi_esp(esp)
    nic = "e1000" if machine.firmware == "uefi-ipxe" else "virtio-net-pci,romfile="
    return lab.uefi_args(machine.mac, esp, tmp / "OVMF_VARS.fd", nic)


def explain(pxe: lab.PxeLab, boot: lab.Boot) -> str:
    logs = "".join(
        f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted(pxe.dir.glob("*.log"))
        if "serial" not in p.name
    )
    return f"{boot}\n--- serial\n{boot.serial[-4000:]}{logs}\n--- http {pxe.requests[-20:]}"


def grub_netdir(pxe: lab.PxeLab) -> None:
    """GRUB's EFI netboot image and modules under <tftp>/grub (what the operator installs)."""
    if not (pxe.tftp_root / "grub/x86_64-efi/core.efi").exists():
        subprocess.run(
            ["grub-mknetdir", f"--net-directory={pxe.tftp_root}", "--subdir=grub",
             "-d", "/usr/lib/grub/x86_64-efi", "--locales=", "--fonts=", "--themes="],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


def check_pxe_boot(cli, tmp: Path, pxe: lab.PxeLab, machine: Machine) -> None:
    config, ip = provision(cli, tmp, pxe, machine)
    args = qemu_args(tmp, machine)

    install = pxe.boot(f"{machine.serial}-install", args, INSTALL_TIMEOUT, until_callback=True)
    assert len(install.callbacks) == 1, explain(pxe, install)
    callback = install.callbacks[0]
    assert callback.client == ip, explain(pxe, install)
    assert callback.query["mac"] == machine.mac and callback.query["ip"] == ip
    cmdline = callback.cmdline
    ks_url = f"http://{lab.SERVER}:{lab.HTTP_PORT}/ks/{machine.serial}.cfg"
    assert f"inst.ks={ks_url}" in cmdline, cmdline  # this node's entry, not some other file
    assert f"BOOTIF=01-{machine.mac.replace(':', '-')}" in cmdline, cmdline
    assert "console=ttyS0,115200" in cmdline  # [boot] kernel_args reached the kernel
    assert machine.loader_mark in cmdline, cmdline
    ks = (pxe.http_root / "ks" / f"{machine.serial}.cfg").read_bytes()
    assert callback.query["ks_bytes"] == str(len(ks))  # the kickstart was served to the node
    assert install.exit_code == 0, explain(pxe, install)  # the initrd powered off

    run = cli("--config", config, "pxe", "clear", machine.serial)
    assert run.exit_code == 0, run.stdout + run.stderr
    local = pxe.boot(f"{machine.serial}-local", args, LOCAL_TIMEOUT, until_callback=False)
    assert local.exit_code == guest.LOCAL_DISK_EXIT, explain(pxe, local)
    assert guest.LOCAL_DISK_MARKER in local.serial
    assert local.callbacks == []
    print(f"{machine.serial}: callback {install.seconds:.1f} s, local disk {local.seconds:.1f} s")


def test_bios_pxelinux_install_then_local_disk(cli, tmp_path: Path, pxe: lab.PxeLab) -> None:
    check_pxe_boot(cli, tmp_path, pxe, BIOS)


@pytest.mark.skipif(not lab.can_run_uefi(), reason="needs ovmf and grub-efi-amd64-bin")
def test_uefi_grub_install_then_esp_chainload(cli, tmp_path: Path, pxe: lab.PxeLab) -> None:
    grub_netdir(pxe)
    check_pxe_boot(cli, tmp_path, pxe, UEFI)


def test_bios_ipxe_script_install_then_local_disk(cli, tmp_path: Path, pxe: lab.PxeLab) -> None:
    check_pxe_boot(cli, tmp_path, pxe, IPXE)


@pytest.mark.skipif(not lab.can_run_uefi(), reason="needs ovmf and grub-efi-amd64-bin")
def test_uefi_ipxe_rom_install_then_grub_esp(cli, tmp_path: Path, pxe: lab.PxeLab) -> None:
    grub_netdir(pxe)
    check_pxe_boot(cli, tmp_path, pxe, UEFI_IPXE)
