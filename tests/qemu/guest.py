"""The test guest: a Debian kernel, a tiny busybox initrd, and a local disk that proves a boot.

Built by :mod:`bmprov.lab.guestbuild` (cached per kernel, busybox and script version).

Local disks (pxe-boot.md §4 "Local-disk proof"): a BIOS MBR that prints a marker on COM1 and
exits QEMU through ``isa-debug-exit`` with status 67, and for UEFI a FAT directory whose
``EFI/BOOT/BOOTX64.EFI`` (grub-mkimage) does the same.
"""

from __future__ import annotations

from pathlib import Path

from bmprov.lab.guestbuild import GuestImage, cache_dir, cpio_newc, run
from bmprov.lab.guestbuild import guest_image as _guest_image

HERE = Path(__file__).resolve().parent
LOCAL_DISK_EXIT = 67  # (0x21 << 1) | 1 from isa-debug-exit
LOCAL_DISK_MARKER = "BMPQ-LOCALDISK-BOOTED"
__all__ = ["GuestImage", "cache_dir", "cpio_newc", "guest_image", "run"]


def guest_image() -> GuestImage:
    """Kernel + initrd, built once per kernel/busybox/script version."""
    files = {
        name: (HERE / script).read_bytes()
        for name, script in (
            ("init", "init.sh"),
            ("etc/udhcpc.script", "../../bmprov/lab/standin/udhcpc.script"),
        )
    }
    return _guest_image("guest", files)


def bios_disk(path: Path) -> Path:
    """A 1 MiB raw disk whose MBR prints the marker on COM1 and exits QEMU with status 67."""
    msg = f"\r\n{LOCAL_DISK_MARKER} (MBR)\r\n\0".encode()
    code = bytes.fromhex(
        "fa"  # cli
        "31c0 8ed8"  # xor ax,ax; mov ds,ax
        "be1a7c"  # mov si,0x7c1a (msg)
        "baf803"  # mov dx,0x3f8 (COM1)
        "ac 84c0 7403 ee ebf8"  # lodsb; test al,al; jz done; out dx,al; jmp lodsb
        "b021 e6f4"  # done: mov al,0x21; out 0xf4,al (isa-debug-exit)
        "f4 ebfd"  # hlt; jmp hlt
    )
    assert len(code) == 0x1A
    mbr = bytearray(512)
    mbr[: len(code) + len(msg)] = code + msg
    mbr[510:] = b"\x55\xaa"
    path.write_bytes(bytes(mbr) + bytes(1024 * 1024 - 512))
    return path


def uefi_esp(directory: Path) -> Path:
    """A directory (served as a vvfat ESP) whose EFI/BOOT/BOOTX64.EFI prints and exits 67."""
    boot = directory / "EFI" / "BOOT"
    boot.mkdir(parents=True, exist_ok=True)
    embedded = directory.parent / "esp-embedded.cfg"
    embedded.write_text(f'echo "{LOCAL_DISK_MARKER} (ESP)"\noutb 0xf4 0x21\nhalt\n')
    run(
        "grub-mkimage", "-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c", embedded,
        "-o", boot / "BOOTX64.EFI", "echo", "iorw", "halt",
    )  # fmt: skip
    return directory
