"""``[boot]`` (plus ``[network] server_address/domain``) as typed, validated settings."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bmprov import validate
from bmprov.boot.names import grub_name, ipxe_name, pxelinux_name
from bmprov.boot.osprofiles import BUILTIN_OS, OsProfile, build_profiles, unknown_os
from bmprov.boot.osprofiles import rel_path as _rel
from bmprov.config import Config
from bmprov.errors import ConfigError, StepFailed
from bmprov.nodes import Node

CMDLINE_ARG = re.compile(r"[A-Za-z0-9._:/@+=,;~-]+")
"""What one kernel command-line argument may contain."""


@dataclass(frozen=True)
class BootSettings:
    """The ``[boot]`` section (plus ``[network] server_address/domain``), validated."""

    tftp_root: Path
    http_root: Path
    server: str
    http_port: int = 80
    install_dir: str = "ks"
    grub_prefix: str = "grub"
    ipxe_dir: str = "ipxe"
    default_os: str = "rocky9"
    kernel_args: tuple[str, ...] = ()
    domain: str | None = None
    os: dict[str, OsProfile] = field(default_factory=lambda: dict(BUILTIN_OS))

    @classmethod
    def from_config(cls, config: Config) -> BootSettings:
        """Validate ``[boot]``; :class:`ConfigError` names the key."""
        raw = config.section("boot")
        network = config.settings.network
        where = f"{config.path or 'config'}"
        server = network.server_address or ""
        try:
            ipaddress.IPv4Address(server)
        except ValueError:
            raise ConfigError(
                f"{where}: network.server_address must be set to an IPv4 address"
            ) from None
        try:
            settings = cls(
                tftp_root=config.resolve(raw.get("tftp_root", "tftpboot")),
                http_root=config.resolve(raw.get("http_root", "http")),
                server=server,
                http_port=int(raw.get("http_port", 80)),
                install_dir=_rel(raw.get("install_dir", "ks"), "install_dir"),
                grub_prefix=_rel(raw.get("grub_prefix", "grub"), "grub_prefix"),
                ipxe_dir=_rel(raw.get("ipxe_dir", "ipxe"), "ipxe_dir"),
                default_os=validate.token(str(raw.get("default_os", "rocky9")), "OS name"),
                kernel_args=tuple(_arg(a) for a in raw.get("kernel_args", [])),
                domain=validate.hostname(network.domain) if network.domain else None,
                os=build_profiles(raw.get("os", {})),
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: boot: {exc}") from None
        if settings.default_os not in settings.os:
            raise ConfigError(f"{where}: boot.default_os {settings.default_os!r} is not an OS")
        return settings

    @property
    def http_url(self) -> str:
        """``http://SERVER`` or ``http://SERVER:PORT``."""
        port = "" if self.http_port == 80 else f":{self.http_port}"
        return f"http://{self.server}{port}"

    def profile(self, os_name: str | None) -> OsProfile:
        """The node's OS profile: an empty OS is ``default_os``, an unknown one is never guessed.

        :raises StepFailed: (step ``"os"``) no profile of that name (see bmprov.boot.osprofiles).
        """
        if not os_name:
            return self.os[self.default_os]
        found = self.os.get(os_name)
        if found is None:
            raise StepFailed("os", unknown_os(os_name, self.os))
        return found

    def repo(self, profile: OsProfile) -> str:
        """The profile's repository (or ISO) URL."""
        if profile.repo:
            return profile.repo
        if profile.install == "autoinstall":
            return f"{self.http_url}/repo/{profile.media}/{profile.media}.iso"
        return f"{self.http_url}/repo/{profile.media}"

    def entry_paths(self, mac: str) -> dict[str, Path]:
        """Loader → absolute path of the per-MAC entry for ``mac``."""
        return {
            "pxelinux": self.tftp_root / pxelinux_name(mac),
            "grub": self.tftp_root / grub_name(mac, self.grub_prefix),
            "ipxe": self.http_root / ipxe_name(mac, self.ipxe_dir),
        }

    def install_paths(self, node: Node, profile: OsProfile) -> list[Path]:
        """The node's install file(s) under the HTTP root."""
        base = self.http_root / self.install_dir
        if profile.install == "autoinstall":
            return [base / node.serial / "user-data", base / node.serial / "meta-data"]
        return [base / f"{node.serial}.cfg"]

    def install_url(self, node: Node, profile: OsProfile) -> str:
        """What the boot entry hands the installer (a directory URL for cloud-init)."""
        base = f"{self.http_url}/{self.install_dir}"
        if profile.install == "autoinstall":
            return f"{base}/{node.serial}/"
        return f"{base}/{node.serial}.cfg"

    def default_paths(self) -> dict[str, Path]:
        """Loader → the loader's fallback file (local boot for every unknown machine)."""
        return {
            "pxelinux": self.tftp_root / "pxelinux.cfg" / "default",
            "grub": self.tftp_root / self.grub_prefix / "grub.cfg",
            "ipxe": self.http_root / "boot.ipxe",
        }

    def digest(self) -> str:
        """A digest of every setting (part of each node's fingerprint)."""
        data = asdict(self)
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _arg(value: Any) -> str:
    text = str(value)
    if not CMDLINE_ARG.fullmatch(text) or ";" in text:
        raise ValueError(f"kernel_args entry {text!r} is not a safe kernel argument")
    return text
