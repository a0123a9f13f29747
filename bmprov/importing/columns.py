"""The procurement sheet's columns: names, aliases, which node field each fills, and its cell
validator; and :class:`SheetRow`, one valid row."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bmprov import facts, validate
from bmprov.importing import bulkcheck
from bmprov.install import options as install_options
from bmprov.nodes import NODE_FIELDS

Target = Literal["node", "macs", "install"]


@dataclass(frozen=True)
class Column:
    """A sheet column bmprov understands: its field, header aliases, parser and destination."""

    field: str
    aliases: tuple[str, ...]
    parse: Callable[[str], Any]
    target: Target = "node"
    cached: bool = False  # values repeat a lot (model, OS, rack): validate each distinct one once
    numeric_ok: bool = True  # False: a number cell means the spreadsheet mangled the value
    bulk: bulkcheck.BulkCheck | None = None  # whole-column fast path


def install_column(
    field: str, aliases: tuple[str, ...], parse: Callable[[str], Any], *, cached: bool = True
) -> Column:
    """A column kept with the node's install options (most values repeat per rack or model:
    ``cached`` validates each distinct cell once)."""
    return Column(field, aliases, parse, target="install", cached=cached)


COLUMNS: list[Column] = [
    Column(
        "serial",
        (
            "serial",
            "serialnumber",
            "serialno",
            "sn",
            "servicetag",
            "s/n",
            "chassisserial",
            "systemserial",
        ),
        validate.serial,
        bulk=bulkcheck.serials,
    ),
    Column(
        "macs",
        (
            "mac",
            "macaddress",
            "macs",
            "macaddresses",
            "bootmac",
            "pxemac",
            "hwaddress",
            "hardwareaddress",
            "nicmac",
            "ethernetaddress",
        ),
        lambda v: tuple(validate.macs(v)) or None,
        target="macs",
        numeric_ok=False,
        bulk=bulkcheck.macs,
    ),
    Column(
        "model",
        (
            "model",
            "hardwaremodel",
            "servermodel",
            "modelname",
            "product",
            "productname",
            "devicetype",  # NetBox
        ),
        validate.model,
        cached=True,
    ),
    Column(
        "os",
        ("os", "operatingsystem", "osversion", "osimage", "image", "osprofile", "platform"),
        lambda v: validate.token(v, "OS name"),
        cached=True,
    ),
    Column(
        "hostname",
        ("hostname", "host", "fqdn", "servername", "nodename", "name"),  # name: NetBox
        validate.hostname,
        bulk=bulkcheck.hostnames,
    ),
    Column(
        "site",
        ("site", "datacenter", "datacentre", "dc", "location"),
        lambda v: validate.token(v, "site"),
        cached=True,
    ),
    Column(
        "rack",
        ("rack", "rackname", "rackid", "cabinet"),
        lambda v: validate.token(v, "rack"),
        cached=True,
    ),
    Column(
        "unit",
        ("unit", "u", "rackunit", "ru", "rackposition", "position", "slot"),
        validate.unit,
        cached=True,
    ),
    Column(
        "notes", ("notes", "note", "comment", "comments", "remarks"), validate.notes, cached=True
    ),
    Column(
        "asset_tag",
        ("assettag", "asset", "assetnumber", "assetid", "inventorynumber"),
        validate.asset_tag,
        bulk=bulkcheck.asset_tags,
    ),
    Column(
        "bmc_address",
        (
            "bmc",
            "bmcaddress",
            "bmcip",
            "ipmi",
            "ipmiaddress",
            "ipmiip",
            "idrac",
            "ilo",
            "oob",
            "oobaddress",
            "oobip",
        ),
        validate.bmc_address,
        bulk=bulkcheck.bmc_addresses,
    ),
    Column(
        "bmc_type",
        ("bmctype", "bmcdriver", "powerdriver", "oobtype"),
        validate.bmc_type,
        cached=True,
    ),
    # OS install options (bmprov.install.options); a plain root password is hashed here
    # (each distinct cell once: SHA-512 crypt is slow on purpose).
    install_column(
        "root_password_hash",
        ("rootpassword", "rootpw", "rootpass", "rootpasswordhash", "rootpwhash"),
        install_options.root_password,
    ),
    install_column(
        "ssh_key",
        ("sshkey", "sshpublickey", "publickey", "authorizedkey", "rootsshkey"),
        install_options.ssh_key,
        cached=False,
    ),
    install_column(
        "partition_scheme",
        ("partitionscheme", "partitioning", "partitionlayout", "diskscheme", "raid", "storage"),
        install_options.partition_scheme,
    ),
    install_column(
        "disks",
        ("diskcount", "numdisks", "disknumber", "drives", "drivecount"),
        install_options.disk_count,
    ),
    install_column(
        "post_script",
        ("postscript", "postinstall", "postinstallscript"),
        install_options.post_script,
    ),
    # Hardware facts for the OS catalogue (bmprov.facts), kept with the install options.
    install_column(
        "ram_gb",
        ("ram", "ramgb", "memory", "memorygb", "mem", "memgb", "ramsize", "memorysize"),
        facts.ram_gb,
    ),
    install_column(
        "disk_gb",
        ("disk", "diskgb", "disksize", "disksizegb", "diskcapacity", "osdisk", "bootdisk"),
        facts.disk_gb,
    ),
    install_column("gpus", ("gpu", "gpucount", "numgpus", "gpunumber"), facts.gpus),
    install_column(
        "post_install_url",
        ("postinstallurl", "completionurl", "deployedurl", "webhook", "webhookurl"),
        install_options.post_install_url,
    ),
    install_column(
        "callback_url",
        ("callbackurl", "callback", "postinstallcallback", "postinstallcallbackurl", "notifyurl"),
        install_options.callback_url,
    ),
]
"""Known columns. Features add their own (install options) by appending here."""

ROW_CHECKS: list[Callable[[dict[str, Any]], tuple[str, str] | None]] = [
    install_options.row_check,
]
"""Checks across the cells of one row → ``(field, message)`` for a problem, or None.

They see the row's install options and node fields, and run for sheets with install columns."""

NODE_COLUMNS = tuple(f for f in NODE_FIELDS if f != "serial")
"""Node fields a sheet row carries besides its serial, in the order SheetRow.node keeps them."""
NODE_INDEX = {name: i for i, name in enumerate(NODE_COLUMNS)}
OS_AT = NODE_INDEX["os"]
NO_INSTALL: dict[str, Any] = {}


def header_key(text: str) -> str:
    """Header text reduced for alias matching: case, spaces and punctuation ignored."""
    return re.sub(r"[^a-z0-9/]", "", text.lower())


def export_only() -> frozenset[str]:
    """Header keys of the columns ``bmprov export`` adds (stage, IP, dates; NetBox's status,
    role...): ignored on import without the "unknown column" warning, so that an exported
    sheet imports back cleanly."""
    from bmprov.exporting import EXPORT_ONLY  # noqa: PLC0415

    return frozenset(header_key(h) for h in EXPORT_ONLY)


def alias_index() -> dict[str, Column]:
    return {header_key(alias): col for col in COLUMNS for alias in (col.field, *col.aliases)}


@dataclass(slots=True)
class SheetRow:
    """One valid sheet row. ``node`` follows NODE_COLUMNS; None = blank (keeps stored value)."""

    row: int
    serial: str
    node: tuple[Any, ...]
    macs: tuple[str, ...] | None = None
    install: dict[str, Any] = field(default_factory=dict)
    automated: bool = False

    def value(self, name: str) -> Any:
        """A node field's value from the sheet (None when the cell was blank)."""
        return self.node[NODE_INDEX[name]]

    @property
    def values(self) -> dict[str, Any]:
        """The non-blank node fields, by name."""
        return {k: v for k, v in zip(NODE_COLUMNS, self.node, strict=True) if v is not None}
