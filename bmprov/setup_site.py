"""``bmprov init``: write a commented starter config and an empty state file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from bmprov.config import CONFIG_NAME, parse_config, read_config_text
from bmprov.errors import InputError
from bmprov.fsutil import atomic_write
from bmprov.install.sitekey import site_public_key
from bmprov.netdetect import NetworkSettings
from bmprov.store import StateDB

DEFAULT_NETWORK = NetworkSettings("eth1", "10.20.0.1", "10.20.0.0/24", "10.20.0.1")

STARTER_SECTIONS: list[str] = [
    "starter.toml",
    "starter_dhcp.toml",
    "starter_boot.toml",
    "starter_power.toml",
]
"""Starter-config fragments (package files), concatenated in order; features append theirs."""


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    config_path: Path
    state_path: Path
    created_config: bool


def starter_config(
    network: NetworkSettings,
    site: str = "dc1",
    domain: str = "example.net",
    site_key: str = "ssh-ed25519 AAAA... (bmprov init writes the site key here)",
) -> str:
    """The starter ``bmprov.toml`` text for a provisioning network."""
    here = Path(__file__).parent
    text = "\n".join((here / name).read_text(encoding="utf-8") for name in STARTER_SECTIONS)
    return Template(text).substitute(
        interface=network.interface,
        server_address=network.server_address,
        subnet=network.subnet,
        gateway=network.gateway,
        site=site,
        domain=domain,
        site_key=site_key,
    )


def refuse_overwrite(directory: Path, *, detect: bool, force: bool) -> None:
    """:class:`InputError` when ``--detect`` would overwrite an existing config without --force
    (checked before the interface is read: the first thing to tell the operator)."""
    config_path = directory / CONFIG_NAME
    if config_path.exists() and not force and detect:
        raise InputError(f"{config_path} exists; pass --force to overwrite it with --detect")


def init_site(
    directory: Path, network: NetworkSettings | None = None, *, force: bool = False
) -> InitResult:
    """Write ``DIR/bmprov.toml`` (unless present) and create its state file.

    :raises InputError: ``directory`` is a file or cannot be created or written to.
    """
    _make_dir(directory)
    config_path = directory / CONFIG_NAME
    created = False
    refuse_overwrite(directory, detect=network is not None, force=force)
    if not config_path.exists() or force:
        try:
            key = site_public_key(directory)
        except OSError as exc:
            raise InputError(f"cannot write {directory / 'ssh'}: {exc.strerror or exc}") from None
        text = starter_config(network or DEFAULT_NETWORK, site_key=key)
        parse_config(config_path.resolve(), text)  # the starter must itself be valid
        try:
            atomic_write(config_path, text)
        except OSError as exc:
            raise InputError(f"cannot write {config_path}: {exc.strerror or exc}") from None
        created = True
    config = parse_config(config_path.resolve(), read_config_text(config_path))
    with StateDB(config.state_path):
        pass
    return InitResult(config_path, config.state_path, created)


def _make_dir(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory {directory}: {exc.strerror or exc}") from None
