"""Power/boot drivers, and how one is chosen for a node.

Each node's driver comes from its sheet's ``bmc_type`` column (ipmi, redfish, wol, none), else
from the ``[bmc] driver`` config (per site/rack/node layers), else ``ipmi``. Its address comes
from the sheet's ``bmc_address`` (``host`` or ``host:port``); the port otherwise from the config
layers, else the driver's default. A node whose type is ``none``, or that has neither a type
nor an address, has no BMC: :func:`target_for` returns None and callers report it as waiting
for a manual power-on.

Drivers are imported lazily (pyghmi and requests are not needed for ``bmprov --help``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bmprov.drivers.base import (
    BmcTarget,
    BootDevice,
    BootReadback,
    BootResult,
    DriverSettings,
    PowerAction,
    PowerDriver,
    PowerState,
)
from bmprov.errors import ConfigError, DriverError

if TYPE_CHECKING:
    from bmprov.credentials import CredentialStore
    from bmprov.nodes import Node

DRIVERS: dict[str, str] = {
    "ipmi": "bmprov.drivers.ipmi:IpmiDriver",
    "redfish": "bmprov.drivers.redfish:RedfishDriver",
    "wol": "bmprov.drivers.wol:WolDriver",
    "fake": "bmprov.drivers.fake:FakeDriver",
}
"""Driver name → ``module:Class``. Add one with :func:`register_driver`."""

NO_BMC = "none"


def register_driver(name: str, path: str) -> None:
    """Make ``path`` (``module:Class``, a :class:`PowerDriver`) available as ``name``."""
    DRIVERS[name] = path


def driver_class(name: str) -> type[PowerDriver]:
    """The driver class registered as ``name``.

    :raises ConfigError: no such driver.
    """
    try:
        module_name, _, class_name = DRIVERS[name].partition(":")
    except KeyError:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigError(f"unknown BMC driver {name!r} (known: {known}, none)") from None
    cls: type[PowerDriver] = getattr(importlib.import_module(module_name), class_name)
    return cls


def split_address(address: str) -> tuple[str, int | None]:
    """``host:port`` → (host, port); a bare host or IPv6 address → (host, None)."""
    text = address.strip()
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text.strip("[]"), None


def driver_name(node: Node, store: CredentialStore) -> str:
    """The driver for ``node``: sheet ``bmc_type``, else config layers, else ``ipmi``."""
    if node.bmc_type:
        return node.bmc_type
    configured = store.settings(node).driver
    return str(configured) if configured else "ipmi"


def target_for(
    node: Node, store: CredentialStore, section: dict[str, Any], *, secrets: bool = True
) -> BmcTarget | None:
    """Where and how to reach ``node``'s BMC; None if it has none (manual power-on).

    ``secrets=False`` (a dry run) leaves the password unread: planning needs no secret.

    :raises DriverError: the node names a driver but lacks what it needs (address, MAC).
    :raises ConfigError: unknown driver, or its credentials are not configured.
    """
    name = driver_name(node, store)
    if name == NO_BMC or (not node.bmc_type and not node.bmc_address and name != "wol"):
        return None
    cls = driver_class(name)
    if name == "wol":
        return _wol_target(node, section)
    if not node.bmc_address:
        raise DriverError(f"node {node.serial}: BMC type {name} but no BMC address in the sheet")
    host, port = split_address(node.bmc_address)
    merged = store.settings(node)
    port = port or merged.port or cls.default_port
    credentials = store.credentials(node) if cls.needs_credentials and secrets else None
    return BmcTarget(node.serial, name, host, port, credentials, node.mac)


def _wol_target(node: Node, section: dict[str, Any]) -> BmcTarget:
    if not node.mac:
        raise DriverError(f"node {node.serial}: Wake-on-LAN needs the node's MAC (none known)")
    wol = section.get("wol") or {}
    host, port = split_address(node.bmc_address) if node.bmc_address else (None, None)
    return BmcTarget(
        node.serial,
        "wol",
        host or str(wol.get("host", "255.255.255.255")),
        port or int(wol.get("port", 9)),
        None,
        node.mac,
    )


def make_driver(
    target: BmcTarget, settings: DriverSettings, *, dry_run: bool = False
) -> PowerDriver:
    """An instance of the target's driver (the fake driver when ``dry_run``)."""
    cls = driver_class("fake" if dry_run else target.driver)
    return cls(target, settings)


__all__ = [
    "DRIVERS",
    "BmcTarget",
    "BootDevice",
    "BootReadback",
    "BootResult",
    "DriverSettings",
    "PowerAction",
    "PowerDriver",
    "PowerState",
    "driver_class",
    "make_driver",
    "register_driver",
    "split_address",
    "target_for",
]
