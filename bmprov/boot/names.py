"""The per-MAC file names, exactly as each boot loader requests them (pxe-boot.md §6), and the
re-checks of the stored values that become file names (MACs, serials)."""

from __future__ import annotations

import re

from bmprov import validate
from bmprov.errors import StepFailed
from bmprov.nodes import Node

LOADERS = ("pxelinux", "grub", "ipxe")
EFI_LOADER = "/EFI/BOOT/BOOTX64.EFI"
_CANONICAL_MAC = re.compile(r"[0-9a-f][02468ace](?::[0-9a-f]{2}){5}")  # unicast, lower case
_ZERO_MAC = "00:00:00:00:00:00"


def pxelinux_name(mac: str) -> str:
    """``pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`` (relative to the TFTP root)."""
    return f"pxelinux.cfg/{validate.pxe_mac_name(mac)}"


def grub_name(mac: str, prefix: str = "grub") -> str:
    """``<prefix>/grub.cfg-01-aa-bb-cc-dd-ee-ff`` (relative to the TFTP root)."""
    return f"{prefix}/grub.cfg-{validate.pxe_mac_name(mac)}"


def ipxe_name(mac: str, directory: str = "ipxe") -> str:
    """``<dir>/mac-aa-bb-cc-dd-ee-ff.ipxe``: what ``mac-${net0/mac:hexhyp}.ipxe`` expands to."""
    return f"{directory}/mac-{mac.replace(':', '-')}.ipxe"


def node_macs(node: Node) -> tuple[str, ...]:
    """The node's MACs, re-checked: they become file names (a stored value is not trusted).

    :raises StepFailed: no MAC, or one that is not a canonical unicast MAC.
    """
    check_serial(node)
    if not node.macs:
        raise StepFailed("boot files", f"node {node.serial} has no MAC address")
    for mac in node.macs:
        if _CANONICAL_MAC.fullmatch(mac) and mac != _ZERO_MAC:
            continue  # the common case, without validate.mac's notation search
        try:
            canonical = validate.mac(mac)
        except ValueError as exc:
            raise StepFailed("boot files", f"node {node.serial}: {exc}") from None
        if canonical != mac:
            raise StepFailed("boot files", f"node {node.serial}: MAC {mac!r} is not canonical")
    return node.macs


def check_serial(node: Node) -> None:
    """The serial names the install file: it must still be a valid serial."""
    try:
        canonical = validate.serial(node.serial)
    except ValueError as exc:
        raise StepFailed("install file", f"serial {node.serial!r}: {exc}") from None
    if canonical != node.serial:
        raise StepFailed("install file", f"serial {node.serial!r} has surrounding spaces")
