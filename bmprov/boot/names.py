"""The per-MAC file names, exactly as each boot loader requests them (pxe-boot.md §6)."""

from __future__ import annotations

from bmprov import validate

LOADERS = ("pxelinux", "grub", "ipxe")
EFI_LOADER = "/EFI/BOOT/BOOTX64.EFI"


def pxelinux_name(mac: str) -> str:
    """``pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`` (relative to the TFTP root)."""
    return f"pxelinux.cfg/{validate.pxe_mac_name(mac)}"


def grub_name(mac: str, prefix: str = "grub") -> str:
    """``<prefix>/grub.cfg-01-aa-bb-cc-dd-ee-ff`` (relative to the TFTP root)."""
    return f"{prefix}/grub.cfg-{validate.pxe_mac_name(mac)}"


def ipxe_name(mac: str, directory: str = "ipxe") -> str:
    """``<dir>/mac-aa-bb-cc-dd-ee-ff.ipxe``: what ``mac-${net0/mac:hexhyp}.ipxe`` expands to."""
    return f"{directory}/mac-{mac.replace(':', '-')}.ipxe"
