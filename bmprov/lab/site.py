"""The bmprov site that matches a lab: ``bmprov.toml``, the purchases sheet, the loaders.

The site is bmprov's starter config (``bmprov init``) with the lab's network filled in and
these changes: reservations over OMAPI (the agent forwards host 127.0.0.1:<port_base> to the
lab's dhcpd), no per-host boot file (dhcpd picks pxelinux or GRUB by client architecture),
the lab's TFTP/HTTP roots, a serial console on the installer's kernel command line, the
installer stand-in as OS ``labinst`` (its kernel and initrd added with ``media add``), power
control on entering *os_provisioning* (in waves), ``bmprov serve`` on SERVER:HTTP_PORT, and
each machine's virtual BMC in the sheet's ``bmc_address`` column.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from pathlib import Path

from bmprov.config import load_config
from bmprov.fsutil import atomic_write
from bmprov.lab import netns, services
from bmprov.lab.state import LabState
from bmprov.netdetect import NetworkSettings
from bmprov.setup_site import init_site

OS_NAME = "labinst"
POOL = ("10.239.0.10", "10.239.0.99")
PXELINUX = Path("/usr/lib/PXELINUX/pxelinux.0")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
SHEET_NAME = "purchases.csv"
WAVE_SIZE, WAVE_INTERVAL = 1, 2.0  # PXE boots per wave, seconds between waves


def write_config(lab: LabState, omapi_secret: str) -> Path:
    """``<dir>/bmprov.toml`` for the lab (replaces any earlier one)."""
    directory = Path(lab.dir)
    net = NetworkSettings(netns.BRIDGE, netns.SERVER, netns.SUBNET, netns.SERVER)
    (directory / "bmprov.toml").unlink(missing_ok=True)
    config = init_site(directory, net).config_path
    key = directory / "omapi.key"
    atomic_write(key, omapi_secret + "\n", mode=0o600)
    text = config.read_text()
    for old, new in (
        ('backend = "file"', 'backend = "omapi"'),
        ('boot_filename = "pxelinux.0"', 'boot_filename = ""'),
        ('tftp_root = "tftpboot"', 'tftp_root = "tftp"'),
        ("http_port = 80", f"http_port = {services.HTTP_PORT}"),
        ('default_os = "rocky9"', f'default_os = "{OS_NAME}"'),
        # quiet: the kernel does not print its command line (bmprov.token=) on the console log
        ("kernel_args = []", 'kernel_args = ["console=ttyS0,115200", "panic=-1", "quiet"]'),
        ('password_env = "BMPROV_BMC_PASSWORD"', 'password_file = "bmc.password"'),
        # entering os_provisioning sets PXE and power-cycles through the virtual BMCs, in
        # waves of one machine 2 s apart (real sites: 30 per minute); completion sets disk
        ("auto_on_provisioning = false", "auto_on_provisioning = true"),
        ("wave_size = 30 ", f"wave_size = {WAVE_SIZE} "),
        ("wave_interval = 60 ", f"wave_interval = {WAVE_INTERVAL:g} "),
    ):
        if old not in text:
            raise RuntimeError(f"the starter config has no {old!r} to change")
        text = text.replace(old, new, 1)
    text += (
        "\n# bmprov lab\n"
        f'[dhcp.omapi]\nhost = "127.0.0.1"\nport = {lab.omapi_port}\nkey_file = "omapi.key"\n'
        f'\n[boot.os.{OS_NAME}]\ninstall = "kickstart"\n'
        f'\n[[pools]]\nname = "lab"\nsubnet = "{netns.SUBNET}"\ngateway = "{netns.SERVER}"\n'
        f'range = ["{POOL[0]}", "{POOL[1]}"]\n'
        # bmprov serve listens inside the namespace (bmprov.lab.serving, docs/lab.md)
        f'\n[serve]\nlisten = "{netns.SERVER}:{services.HTTP_PORT}"\n'
        f'url = "http://{netns.SERVER}:{services.HTTP_PORT}"\n'
    )
    atomic_write(config, text)
    load_config(config)  # what lab up wrote must itself be a valid site
    return config


def write_sheet(lab: LabState) -> Path:
    """The purchases sheet of the lab's machines (CSV, marked for automation)."""
    out = io.StringIO()
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow(["Serial Number", "MAC Address", "Hostname", "Model", "OS", "Rack", "U",
                   "BMC Address", "BMC Type", "Notes"])  # fmt: skip
    for i, m in enumerate(lab.machines):
        rows.writerow([m.serial, m.mac, m.name, f"QEMU {m.firmware.upper()}", OS_NAME, "LAB1",
                       i + 1, f"127.0.0.1:{m.bmc_port}", "ipmi", "provisioning_auto"])  # fmt: skip
    path = Path(lab.dir) / SHEET_NAME
    atomic_write(path, out.getvalue())
    return path


def install_loaders(tftp_root: Path, uefi: bool) -> None:
    """pxelinux for BIOS machines; GRUB's EFI netboot directory when there are UEFI ones."""
    tftp_root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PXELINUX, tftp_root / "pxelinux.0")
    shutil.copyfile(LDLINUX, tftp_root / "ldlinux.c32")
    if uefi and not (tftp_root / services.UEFI_LOADER).exists():
        subprocess.run(
            ["grub-mknetdir", f"--net-directory={tftp_root}", "--subdir=grub",
             "-d", "/usr/lib/grub/x86_64-efi", "--locales=", "--fonts=", "--themes="],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
