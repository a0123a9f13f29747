"""The only place raw strings become MACs, serials, hostnames and other node fields.

Every function takes the raw cell value and returns the canonical value or raises
:class:`ValueError` with a message that can stand after ``FILE:ROW:COLUMN:``. Values validated
here are later placed into boot-loader entries, kickstarts and DHCP statements, so the rules are
allow-lists, never deny-lists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# MAC notations accepted, each written out in full (netaddr alone also takes 11 digits,
# a trailing newline, integers and EUI-64, which a spreadsheet must never turn into a MAC).
_MAC_FORMS = (
    re.compile(r"(?P<h>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})"),  # aa:bb:cc:dd:ee:ff
    re.compile(r"(?P<h>[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5})"),  # aa-bb-cc-dd-ee-ff (Windows)
    re.compile(r"(?P<h>[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2})"),  # aabb.ccdd.eeff (Cisco)
    re.compile(r"(?P<h>[0-9A-Fa-f]{12})"),  # aabbccddeeff (bare)
)

PLACEHOLDER_SERIALS = frozenset(
    s.casefold()
    for s in (
        "To Be Filled By O.E.M.",
        "To Be Filled By OEM",
        "Default string",
        "Default",
        "0123456789",
        "123456789",
        "1234567890",
        "System Serial Number",
        "Chassis Serial Number",
        "Base Board Serial Number",
        "Not Specified",
        "Not Applicable",
        "Not Available",
        "None",
        "Null",
        "N/A",
        "NA",
        "TBD",
        "Unknown",
        "Empty",
        "Serial",
        "SN",
    )
)
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")

BMC_TYPES = ("ipmi", "redfish", "wol", "none")


def reject_control(value: str) -> str:
    """Refuse control characters anywhere (newlines become kickstart commands downstream)."""
    match = _CONTROL.search(value)
    if match:
        raise ValueError(f"contains a control character ({match.group()!r}); retype the cell")
    return value


def mac(value: str) -> str:
    """Canonical MAC (``aa:bb:cc:dd:ee:ff``) from any accepted notation; unicast, non-zero."""
    if not isinstance(value, str):
        raise ValueError(
            "MAC must be text (the spreadsheet stored it as a number; format the column as text)"
        )
    reject_control(value)
    text = value.strip()
    for form in _MAC_FORMS:
        if form.fullmatch(text):
            digits = re.sub(r"[^0-9A-Fa-f]", "", text).lower()
            break
    else:
        raise ValueError(
            f"{text!r} is not a MAC address "
            "(use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff)"
        )
    canonical = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    if digits == "0" * 12:
        raise ValueError(f"{canonical} is the all-zero MAC")
    if int(digits[:2], 16) & 1:
        kind = "broadcast" if digits == "f" * 12 else "multicast"
        raise ValueError(f"{canonical} is a {kind} MAC, not a NIC address")
    return canonical


def macs(value: str) -> list[str]:
    """One or more MACs in a cell, separated by commas, semicolons or spaces."""
    reject_control(value)
    parts = [p for p in re.split(r"[,;\s]+", value.strip()) if p]
    return [mac(p) for p in parts]


def pxe_mac_name(canonical_mac: str) -> str:
    """``01-aa-bb-cc-dd-ee-ff``: the per-MAC name pxelinux and GRUB request (lower case)."""
    return "01-" + canonical_mac.replace(":", "-")


def serial(value: str) -> str:
    """A node's serial: its identity. Rejects blanks and vendor placeholders."""
    reject_control(value)
    text = value.strip()
    if not text:
        raise ValueError("serial is blank")
    if text.casefold() in PLACEHOLDER_SERIALS or len(set(text.casefold())) == 1:
        raise ValueError(f"{text!r} is a placeholder serial, not the machine's own")
    if not _SERIAL.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a valid serial (letters, digits, '.', '_', '-'; at most 64)"
        )
    return text


def hostname(value: str) -> str:
    """An RFC 1123 host name (or FQDN), lower-cased."""
    reject_control(value)
    text = value.strip().rstrip(".")
    if not text or len(text) > 253:
        raise ValueError(f"{value.strip()!r} is not a valid host name (1-253 characters)")
    for label in text.split("."):
        if not _HOST_LABEL.fullmatch(label):
            raise ValueError(
                f"{value.strip()!r} is not a valid host name (RFC 1123: labels of letters, "
                "digits and inner hyphens, at most 63 each)"
            )
    return text.lower()


def token(value: str, what: str = "value") -> str:
    """A short identifier (OS, site, rack, model...): letters, digits, '.', '_', '-'."""
    reject_control(value)
    text = value.strip()
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"{text!r} is not a valid {what} (letters, digits, '.', '_', '-')")
    return text


def model(value: str) -> str:
    """A hardware model name: printable, may contain spaces, at most 128 characters."""
    reject_control(value)
    text = " ".join(value.split())
    if len(text) > 128 or not re.fullmatch(r"[A-Za-z0-9 ._()+/-]*", text):
        raise ValueError(f"{text!r} is not a valid model name (letters, digits, spaces, ._()+/-)")
    return text


def asset_tag(value: str) -> str:
    """An asset tag: letters, digits and ._/- (at most 64)."""
    reject_control(value)
    text = value.strip()
    if not _ASSET.fullmatch(text):
        raise ValueError(f"{text!r} is not a valid asset tag (letters, digits, '.', '_', '/', '-')")
    return text


def notes(value: str) -> str:
    """Free text: anything printable, at most 1000 characters."""
    reject_control(value)
    text = value.strip()
    if len(text) > 1000:
        raise ValueError("notes are longer than 1000 characters")
    return text


def unit(value: str) -> int:
    """A rack unit: a whole number from 1 to 60."""
    reject_control(value)
    text = value.strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit() or not 1 <= int(text) <= 60:
        raise ValueError(f"{value.strip()!r} is not a rack unit (a whole number from 1 to 60)")
    return int(text)


def bmc_address(value: str) -> str:
    """A BMC address: an IPv4/IPv6 address or a host name, optionally with ``:port``."""
    reject_control(value)
    text = value.strip()
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: port must be 1-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            hostname(host)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or host name") from None
    return text


def bmc_type(value: str) -> str:
    """The BMC driver: ipmi, redfish, wol or none."""
    reject_control(value)
    text = value.strip().lower()
    if text not in BMC_TYPES:
        raise ValueError(f"{text!r} is not a BMC type (one of: {', '.join(BMC_TYPES)})")
    return text


Validator = Callable[[str], object]


WIDEST_PROVISIONING_PREFIX = 9
"""A /8 (16.7 M addresses) or wider is a mistake for one provisioning network (a /16 holds
65,534 machines), the usual sign of a loopback or ``10.0.0.0/8`` copied from somewhere."""


def provisioning_network_problem(subnet: str) -> str | None:
    """Why ``subnet`` (IPv4 CIDR) cannot be a provisioning network, or None when it can."""
    net = ipaddress.ip_network(subnet, strict=False)
    if not isinstance(net, ipaddress.IPv4Network):
        return "is not IPv4"
    if net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        return (
            "is loopback: no other machine can reach it (use the interface on the servers' network)"
        )
    if net.subnet_of(ipaddress.IPv4Network("169.254.0.0/16")):
        return "is link-local (169.254/16): addresses a host gives itself, never a DHCP pool"
    if net.is_multicast or net.is_reserved or net.subnet_of(ipaddress.IPv4Network("0.0.0.0/8")):
        return "is not a unicast network (multicast, reserved or 0.0.0.0/8)"
    if net.prefixlen < WIDEST_PROVISIONING_PREFIX:
        return (
            f"is /{net.prefixlen}, {net.num_addresses:,} addresses: far too wide for one "
            "provisioning network (give its real subnet, e.g. a /24 or /16)"
        )
    return None
