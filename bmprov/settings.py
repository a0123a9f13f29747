"""The site configuration as typed sections, each parsed once and then shared.

``config.settings`` is the one place a command reads the site's settings from; every section
is built on first use (a command that never touches DHCP never validates ``[dhcp]``) and then
kept, so a batch that needs boot settings three times parses them once. Where each section's
keys are read and checked:

* ``network``: ``[network]``, :class:`NetworkSection` here;
* ``pools``: ``[[pools]]`` or ``[network] subnet``, :func:`bmprov.ipam.load_pools`;
* ``dhcp``: ``[dhcp]`` (+ pools, server address), ``bmprov.dhcp.DhcpSettings.from_config``;
* ``boot``: ``[boot]``, ``[boot.os.*]`` (+ server, domain), ``BootSettings.from_config``;
* ``install``: ``[install]``, ``bmprov.install.options.InstallDefaults.from_config``;
* ``power``: ``[power]``, :func:`bmprov.power.power_settings`;
* ``drivers``: ``[bmc]`` timeouts and driver options, :func:`bmprov.power.driver_settings`
  (BMC credentials: :mod:`bmprov.credentials`, read per node at the moment of use);
* ``importing``: ``[import]``, :class:`ImportSection` here;
* ``post_task``: ``[post_install]`` command, timeout..., ``bmprov.posttask.TaskSettings``;
* ``post_url``: ``[post_install]`` url and retries, ``bmprov.notify.NotifySettings``.

One rule per key: ``[network] server_address`` is read only by :class:`NetworkSection`, and
the sections that need it (the DHCP next-server, the pools' reserved address, the boot files'
URLs) take it from there.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bmprov.boot.settings import BootSettings
    from bmprov.config import Config
    from bmprov.dhcp import DhcpSettings
    from bmprov.drivers import DriverSettings
    from bmprov.install.options import InstallDefaults
    from bmprov.ipam import Pool
    from bmprov.notify import NotifySettings
    from bmprov.posttask import TaskSettings
    from bmprov.power import PowerSettings


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: the provisioning network every service shares."""

    server_address: str | None = None
    """This host on the provisioning network: DHCP next-server, boot and install URLs; never
    handed out by a pool. Checked (IPv4) by the schema; required by the boot files."""
    interface: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()
    domain: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> NetworkSection:
        """Read ``[network]`` (its values are format-checked by the schema)."""
        raw = config.section("network")
        server = raw.get("server_address")
        if server is not None:
            ipaddress.IPv4Address(str(server))  # the schema's format check, restated as a type
        return cls(
            server_address=str(server) if server else None,
            interface=raw.get("interface"),
            subnet=raw.get("subnet"),
            gateway=raw.get("gateway"),
            dns=tuple(str(d) for d in raw.get("dns", ())),
            domain=raw.get("domain"),
        )


@dataclass(frozen=True)
class ImportSection:
    """``[import]``: which rows enter the automation."""

    marker_field: str = "notes"
    marker_pattern: re.Pattern[str] = re.compile("provisioning_auto", re.IGNORECASE)

    @classmethod
    def from_config(cls, config: Config) -> ImportSection:
        """Read ``[import]`` (the pattern was compiled once already when the config loaded)."""
        raw = config.section("import")
        return cls(
            marker_field=str(raw.get("marker_field", "notes")),
            marker_pattern=re.compile(
                str(raw.get("marker_pattern", "provisioning_auto")), re.IGNORECASE
            ),
        )


class Settings:
    """One site's typed settings; see the module docstring for where each key is read."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @cached_property
    def network(self) -> NetworkSection:
        """``[network]``."""
        return NetworkSection.from_config(self.config)

    @cached_property
    def pools(self) -> list[Pool]:
        """The address pools; :class:`~bmprov.ipam.PoolError` names the file."""
        from bmprov.ipam import load_pools  # noqa: PLC0415

        return load_pools(self.config)

    @cached_property
    def dhcp(self) -> DhcpSettings:
        """``[dhcp]`` with the pools and next-server."""
        from bmprov.dhcp import DhcpSettings  # noqa: PLC0415

        return DhcpSettings.from_config(self.config)

    @cached_property
    def boot(self) -> BootSettings:
        """``[boot]`` and the OS profiles."""
        from bmprov.boot.settings import BootSettings  # noqa: PLC0415

        return BootSettings.from_config(self.config)

    @cached_property
    def install(self) -> InstallDefaults:
        """``[install]``: the site's install defaults."""
        from bmprov.install.options import InstallDefaults  # noqa: PLC0415

        return InstallDefaults.from_config(self.config)

    @cached_property
    def power(self) -> PowerSettings:
        """``[power]``: batch concurrency, stagger, automatic power-on."""
        from bmprov.power import power_settings  # noqa: PLC0415

        return power_settings(self.config)

    @cached_property
    def drivers(self) -> DriverSettings:
        """``[bmc]`` timeouts and driver options."""
        from bmprov.power import driver_settings  # noqa: PLC0415

        return driver_settings(self.config)

    @cached_property
    def importing(self) -> ImportSection:
        """``[import]``."""
        return ImportSection.from_config(self.config)

    @cached_property
    def post_task(self) -> TaskSettings:
        """``[post_install]``: the task run for each node entering deployed."""
        from bmprov.posttask import TaskSettings  # noqa: PLC0415

        return TaskSettings.from_config(self.config)

    @cached_property
    def post_url(self) -> NotifySettings:
        """``[post_install]``: the URL told about each deployed node."""
        from bmprov.notify import NotifySettings  # noqa: PLC0415

        return NotifySettings.from_config(self.config)
