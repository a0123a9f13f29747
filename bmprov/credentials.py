"""BMC credentials: where they come from, and a :class:`Secret` that never shows its value.

Passwords come from the ``[bmc]`` config section, layered per site, rack and node::

    [bmc]                      # defaults for every node
    username = "admin"
    password_env = "BMPROV_BMC_PASSWORD"      # or password_file = "...", or password = "..."
    [bmc.sites.dc2]            # nodes whose site is dc2
    password_file = "/etc/bmprov/dc2.pass"
    [bmc.racks.r12]            # nodes in rack r12 (any site)
    username = "root"
    [bmc.nodes.SN123]          # one node, by serial
    password_env = "SN123_BMC_PASSWORD"

Later layers win (node > rack > site > defaults); a layer that names any password source
replaces the password source entirely. The state file never holds a password: it stores only
the node's BMC address and type, and the password is looked up here at the moment it is used.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmprov.errors import ConfigError
from bmprov.secret import Secret

if TYPE_CHECKING:
    from bmprov.config import Config
    from bmprov.nodes import Node


@dataclass(frozen=True)
class BmcCredentials:
    """A user name and its password (masked in every repr)."""

    username: str
    password: Secret[str]


@dataclass(frozen=True)
class PasswordSource:
    """Where a password comes from (kept instead of the password itself)."""

    kind: str  # "env", "file" or "config"
    name: str  # variable name or file path ("" for a password written in the config)
    layer: str  # which config table set it, for messages: "[bmc]", "[bmc.racks.r12]"...
    inline: Secret[str] | None = None  # the password itself, when written in the config

    def describe(self) -> str:
        """``environment variable X``, ``file /path`` or ``password in [bmc...]``."""
        if self.kind == "env":
            return f"environment variable {self.name} (from {self.layer} password_env)"
        if self.kind == "file":
            return f"file {self.name} (from {self.layer} password_file)"
        return f"password in {self.layer}"


@dataclass(frozen=True)
class NodeBmcSettings:
    """The merged ``[bmc]`` layers for one node (no secret resolved yet)."""

    driver: str | None
    username: str
    port: int | None
    password: PasswordSource | None


def layers_for(bmc: dict[str, Any], node: Node) -> list[tuple[str, dict[str, Any]]]:
    """The config tables that apply to ``node``, least specific first."""
    found: list[tuple[str, dict[str, Any]]] = [("[bmc]", bmc)]
    for table, key in (("sites", node.site), ("racks", node.rack), ("nodes", node.serial)):
        entries = bmc.get(table) or {}
        if key is not None and isinstance(entries.get(key), dict):
            found.append((f"[bmc.{table}.{key}]", entries[key]))
    return found


def node_settings(bmc: dict[str, Any], node: Node) -> NodeBmcSettings:
    """Merge the layers that apply to ``node`` (node > rack > site > defaults)."""
    merged: dict[str, Any] = {}
    password: PasswordSource | None = None
    for layer, table in layers_for(bmc, node):
        for key in ("driver", "username", "port"):
            if key in table:
                merged[key] = table[key]
        if "password_env" in table:
            password = PasswordSource("env", str(table["password_env"]), layer)
        elif "password_file" in table:
            password = PasswordSource("file", str(table["password_file"]), layer)
        elif "password" in table:
            password = PasswordSource("config", "", layer, Secret(str(table["password"])))
    return NodeBmcSettings(
        driver=merged.get("driver"),
        username=str(merged.get("username", "admin")),
        port=int(merged["port"]) if "port" in merged else None,
        password=password,
    )


class CredentialStore:
    """Resolves node credentials from a config; each env var or file is read once per run."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._bmc = config.section("bmc")
        self._cache: dict[PasswordSource, Secret[str]] = {}
        self._lock = threading.Lock()

    def settings(self, node: Node) -> NodeBmcSettings:
        """The node's merged BMC settings."""
        return node_settings(self._bmc, node)

    def credentials(self, node: Node) -> BmcCredentials:
        """User name and password for ``node``'s BMC.

        :raises ConfigError: no password is configured, or its variable/file is missing.
        """
        merged = self.settings(node)
        if merged.password is None:
            raise ConfigError(
                f"node {node.serial}: no BMC password configured "
                "(set [bmc] password_env or password_file)"
            )
        return BmcCredentials(merged.username, self._secret(merged.password, node))

    def _secret(self, source: PasswordSource, node: Node) -> Secret[str]:
        with self._lock:
            cached = self._cache.get(source)
            if cached is None:
                cached = self._cache[source] = self._read(source, node)
            return cached

    def _read(self, source: PasswordSource, node: Node) -> Secret[str]:
        where = f"node {node.serial}: BMC password from {source.describe()}"
        if source.kind == "env":
            value = os.environ.get(source.name)
            if not value:
                raise ConfigError(f"{where}: the variable is not set")
            return Secret(value)
        if source.kind == "file":
            path = self._config.resolve(source.name)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
            value = text.rstrip("\r\n")
            if not value:
                raise ConfigError(f"{where}: the file is empty")
            return Secret(value)
        if source.inline is None:  # kind "config" always carries it
            raise ConfigError(f"{where}: empty")
        return source.inline
