"""Install tokens: a fresh secret per node per install, never stored in clear.

A node's installer proves which install it belongs to with a bearer token that bmprov places in
its boot entry and install file. The token is ``<install id>.<HMAC-SHA256(site secret, install
id, serial, issued time)>``: it is derived, not stored, so the state holds only the install row
(:class:`~bmprov.store.Install`), and a re-render writes the same token again. A new install of
the node (networking again, a reinstall) supersedes the old one, and completing or revoking
the install ends it; a token whose install is ended, expired, or another node's is refused.

What a token does **not** protect against: anyone who can read the node's boot entry over TFTP
(or its install file over HTTP) can read the token. That is why a callback must also come from
the node's reserved IP by default (``[serve] callbacks_from_reserved_ip``); docs/callbacks.md
says this plainly.

The site secret comes from ``[serve] secret_file`` (default ``serve.secret`` beside the config,
created 0600 on first use) or ``secret_env``; every host sharing one state must share it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.secret import Secret
from bmprov.store import Install, Store

log = logging.getLogger(__name__)

DEFAULT_SECRET_FILE = "serve.secret"  # noqa: S105  (a file name, not a secret)
DEFAULT_TTL_HOURS = 24.0
"""How long an install token is valid after it is issued (``[serve] token_ttl_hours``)."""
SECRET_BYTES = 32


def load_secret(config: Config, *, create: bool = True) -> Secret[bytes]:
    """The site secret: ``secret_env``, else ``secret_file`` (made 0600 if missing and
    ``create``).

    :raises ConfigError: naming the file or variable (never the value): unreadable, too short.
    """
    section = config.section("serve")
    if section.get("secret_env"):
        name = str(section["secret_env"])
        value = os.environ.get(name, "").strip().encode()
        if len(value) < 16:
            raise ConfigError(f"serve.secret_env ${name} is unset or shorter than 16 bytes")
        return Secret(value)
    path = config.resolve(str(section.get("secret_file", DEFAULT_SECRET_FILE)))
    try:
        value = path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"serve.secret_file {path} does not exist") from None
        value = _create_secret(path)
    except OSError as exc:
        raise ConfigError(f"serve.secret_file {path}: {exc.strerror or exc}") from None
    if len(value) < 16:
        raise ConfigError(f"serve.secret_file {path} holds fewer than 16 bytes")
    return Secret(value)


def _create_secret(path: Path) -> bytes:
    """A new random secret, written once (O_EXCL: two processes never make two secrets)."""
    value = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()  # another process made it first: use theirs
    except OSError as exc:
        raise ConfigError(f"cannot create serve.secret_file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    log.info("created the site's install-token secret %s (copy it to every bmprov host)", path)
    return value


def ttl(config: Config) -> timedelta:
    """How long a new token lives (``[serve] token_ttl_hours``)."""
    hours = float(config.section("serve").get("token_ttl_hours", DEFAULT_TTL_HOURS))
    return timedelta(hours=hours)


def expiry(config: Config, now: datetime | None = None) -> str:
    """The ``expires_at`` of an install issued ``now``."""
    start = now or datetime.now(UTC)
    return (start + ttl(config)).isoformat(timespec="seconds")


def token_for(secret: Secret[bytes], install: Install) -> Secret[str]:
    """The install's token (the same every time it is derived)."""
    message = f"bmprov-install\x1f{install.id}\x1f{install.serial}\x1f{install.issued_at}"
    digest = hmac.new(secret.reveal(), message.encode(), hashlib.sha256).digest()
    mac = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return Secret(f"{install.id}.{mac}")


@dataclass(frozen=True)
class Refused(Exception):
    """A token that does not authorise the request: ``status`` (401/403) and a short reason
    that names no secret."""

    status: int
    reason: str

    def __str__(self) -> str:
        return f"{self.status}: {self.reason}"


def verify(
    store: Store, secret: Secret[bytes], serial: str, token: str | None, now: datetime | None = None
) -> Install:
    """The open install ``token`` authorises for ``serial``.

    :raises Refused: 401 missing or malformed; 403 wrong, another node's, ended (completed,
        superseded, revoked) or expired.
    """
    if not token:
        raise Refused(401, "missing install token")
    head, _, _ = token.partition(".")
    if not head.isdigit() or len(token) > 128:
        raise Refused(401, "malformed install token")
    install = store.install(int(head))
    if install is None:
        raise Refused(403, "unknown install token")
    expected = token_for(secret, install).reveal()
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise Refused(403, "wrong install token")
    if install.serial != serial:
        raise Refused(403, "install token of another node")
    if install.ended_at is not None:
        raise Refused(403, f"install token no longer valid ({install.end_reason})")
    moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    if moment >= install.expires_at:
        raise Refused(403, "install token expired")
    return install
