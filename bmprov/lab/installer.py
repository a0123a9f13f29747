"""The lab's installer stand-in: a real Debian kernel, a busybox initrd, an ISO, a local disk.

The initrd's ``/init`` (``standin/init.sh``) follows bmprov's installer contract: it reads
``bmprov.url=`` and ``bmprov.token=`` from the kernel command line, fetches the node's install
file from ``{url}{INSTALL_PATH}<serial>?token=<token>`` (serve's path, one constant), posts
stages 1-4 to ``{url}/callback/<serial>``, "installs" by writing a marker past the boot
partition of the local disk and reboots; booted from that disk it posts stage 5 once (the
installed system's first-boot step).

The local disk (:func:`local_disk`) is what a machine has before any install: an MBR with one
FAT partition holding the same kernel and initrd, booted by syslinux on BIOS and by a GRUB
``EFI/BOOT/BOOTX64.EFI`` on UEFI with ``bmprov.disk=1``, so a boot from disk is a Linux boot
that reads the marker. It is made with mkfs.vfat, mtools and syslinux on the image file:
nothing is mounted.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

from bmprov.lab.guestbuild import NIC_MODULES, GuestImage, guest_image, run
from bmprov.serve import INSTALL_PATH

HERE = Path(__file__).resolve().parent / "standin"
MODULES = (*NIC_MODULES, "virtio_blk")
ISO_KERNEL, ISO_INITRD = "install.amd/vmlinuz", "install.amd/initrd.gz"  # Debian's layout

SECTOR = 512
PART_START = 2048  # sectors: the first partition at 1 MiB, as partitioners place it
PART_SECTORS = 24 * 2048  # 24 MiB of FAT: an 8 MiB kernel, a 2 MiB initrd, GRUB
MARK_SKIP = PART_START + PART_SECTORS + 2048  # the install marker, past the partition
DISK_BYTES = (MARK_SKIP + 2048) * SECTOR
# quiet: the kernel does not echo its command line (with the token) on the serial console
DISK_ARGS = "console=ttyS0,115200 panic=-1 quiet bmprov.disk=1"


def standin_image() -> GuestImage:
    """The stand-in's kernel and initrd (built once, cached)."""
    init = (HERE / "init.sh").read_text()
    init = init.replace("@INSTALL_PATH@", INSTALL_PATH).replace("@MARK_SKIP@", str(MARK_SKIP))
    files = {"init": init.encode(), "etc/udhcpc.script": (HERE / "udhcpc.script").read_bytes()}
    return guest_image("standin", files, MODULES)


def build_iso(image: GuestImage, path: Path) -> Path:
    """A small installer ISO 9660 image (Rock Ridge) in Debian's layout, made by xorriso."""
    with tempfile.TemporaryDirectory(prefix="bmprov-iso-") as tmp:
        tree = Path(tmp)
        (tree / "install.amd").mkdir()
        shutil.copyfile(image.kernel, tree / ISO_KERNEL)
        shutil.copyfile(image.initrd, tree / ISO_INITRD)
        (tree / ".disk").mkdir()
        (tree / ".disk/info").write_text("bmprov lab installer stand-in\n")
        run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "BMPROV_LAB",
            "-o", path, tree)  # fmt: skip
    return path


def local_disk(image: GuestImage, path: Path) -> Path:
    """The machine's raw local disk: MBR + FAT partition booting the stand-in from disk."""
    with path.open("wb") as disk:
        disk.truncate(DISK_BYTES)
        mbr = bytearray(
            (Path("/usr/lib/syslinux/mbr/mbr.bin")).read_bytes()[:440].ljust(446, b"\0")
        )
        # one active FAT16 (LBA) partition; CHS fields 0xfe/0xff: "use LBA"
        mbr += struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x0E, b"\xfe\xff\xff",
                           PART_START, PART_SECTORS)  # fmt: skip
        mbr += bytes(48) + b"\x55\xaa"
        disk.write(mbr)
    offset = PART_START * SECTOR
    run("mkfs.vfat", "-F", "16", "-n", "BMPROVLAB", "--offset", str(PART_START),
        "-h", str(PART_START), path, str(PART_SECTORS // 2))  # fmt: skip
    img = f"{path}@@{offset}"
    with tempfile.TemporaryDirectory(prefix="bmprov-disk-") as tmp:
        work = Path(tmp)
        cfg = work / "syslinux.cfg"
        cfg.write_text(
            "SERIAL 0 115200\nDEFAULT disk\nPROMPT 0\nTIMEOUT 0\nLABEL disk\n"
            f"  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND {DISK_ARGS}\n"
        )
        embedded = work / "grub.cfg"
        embedded.write_text(
            "search --no-floppy --file /vmlinuz --set=root\n"
            f"linux /vmlinuz {DISK_ARGS}\ninitrd /initrd.gz\nboot\n"
        )
        efi = work / "BOOTX64.EFI"
        run("grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c", embedded, "-o", efi,
            "part_msdos", "fat", "search", "search_fs_file", "linux", "echo")  # fmt: skip
        env = {"MTOOLS_SKIP_CHECK": "1"}
        for args in (
            ("mmd", "-i", img, "::/EFI", "::/EFI/BOOT"),
            ("mcopy", "-i", img, image.kernel, "::/vmlinuz"),
            ("mcopy", "-i", img, image.initrd, "::/initrd.gz"),
            ("mcopy", "-i", img, cfg, "::/syslinux.cfg"),
            ("mcopy", "-i", img, efi, "::/EFI/BOOT/BOOTX64.EFI"),
        ):
            _run_env(env, *args)
    run("syslinux", "--offset", str(offset), "--install", path)
    return path


def _run_env(env: dict[str, str], *args: str | Path) -> None:
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {proc.stderr.strip()}")
