"""``[serve]`` settings: where serve listens, the URL nodes reach it at, caps and timeouts."""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from datetime import timedelta

from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.secret import Secret

DEFAULT_PORT = 8081
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
MAX_BODY = 65536
"""A callback is a stage and a log tail: 64 KiB is plenty, and caps what a stranger can send."""
MAX_LOG = 8192
"""The log tail kept per callback (its *last* bytes: the end of a log says what failed)."""
TIMEOUT_MINUTES = {"os_provisioning": 60.0, "installing": 120.0}
"""Minutes a node may wait for its next install stage (0: never times out)."""


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``bmprov serve`` reads from ``[serve]`` (no secret values: those are loaded
    on use)."""

    listen: str
    url: str
    workers: int
    callbacks_from_reserved_ip: bool
    install_from_reserved_ip: bool
    protect_reads: bool
    max_body: int
    max_log: int
    timeouts: dict[str, timedelta]
    check_every: float

    @classmethod
    def from_config(cls, config: Config, listen: str | None = None) -> ServeSettings:
        """:class:`ConfigError` for a listen address that is not ADDR:PORT."""
        section = config.section("serve")
        listen = listen or str(section.get("listen", DEFAULT_LISTEN))
        host, port = split_listen(listen)
        url = str(section.get("url", "")) or default_url(config, port)
        minutes = {**TIMEOUT_MINUTES, **section.get("timeouts", {})}
        return cls(
            listen=f"{host}:{port}",
            url=url.rstrip("/"),
            workers=int(section.get("workers", 1)),
            callbacks_from_reserved_ip=bool(section.get("callbacks_from_reserved_ip", True)),
            install_from_reserved_ip=bool(section.get("install_from_reserved_ip", True)),
            protect_reads=bool(section.get("protect_reads", False)),
            max_body=int(section.get("max_body_bytes", MAX_BODY)),
            max_log=int(section.get("max_log_bytes", MAX_LOG)),
            timeouts={k: timedelta(minutes=float(v)) for k, v in minutes.items() if v},
            check_every=float(section.get("timeout_check_seconds", 60)),
        )


def split_listen(listen: str) -> tuple[str, int]:
    """``ADDR:PORT`` → (addr, port); :class:`ConfigError` otherwise."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"serve listen address {listen!r} is not ADDR:PORT")
    return host, int(port)


def serve_url(config: Config) -> str:
    """The base URL nodes call back to: ``[serve] url``, else ``http://<server_address>:<port
    of [serve] listen>``."""
    return config.settings.serve.url


def default_url(config: Config, port: int) -> str:
    """``http://<network.server_address>:<port>`` (an address: installers may not resolve)."""
    server = config.settings.network.server_address or "127.0.0.1"
    return f"http://{server}:{port}"


def load_admin_token(config: Config) -> Secret[str] | None:
    """The admin token from ``admin_token_env`` or ``admin_token_file`` (None: none set, and
    the write API answers 403 to everyone).

    :raises ConfigError: naming the file or variable (never the value).
    """
    section = config.section("serve")
    if section.get("admin_token_env"):
        name = str(section["admin_token_env"])
        value = os.environ.get(name, "").strip()
        if len(value) < 16:
            raise ConfigError(f"serve.admin_token_env ${name} is unset or shorter than 16 bytes")
        return Secret(value)
    if section.get("admin_token_file"):
        path = config.resolve(str(section["admin_token_file"]))
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"serve.admin_token_file {path}: {exc.strerror or exc}") from None
        if len(value) < 16:
            raise ConfigError(f"serve.admin_token_file {path} holds fewer than 16 bytes")
        return Secret(value)
    return None


def admin_ok(expected: Secret[str] | None, given: str | None) -> bool:
    """Constant-time comparison of a presented admin token."""
    if expected is None or not given:
        return False
    return hmac.compare_digest(expected.reveal().encode(), given.encode())
