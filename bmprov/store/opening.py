"""Open the state a config names: a plain path is an SQLite file, ``postgresql://…`` a shared
PostgreSQL database (password from ``state_password_file`` / ``state_password_env``, else
libpq's ``PGPASSFILE`` / ``~/.pgpass``; never from the URL)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from bmprov.errors import ConfigError
from bmprov.secret import Secret
from bmprov.store.sqlite import open_state

if TYPE_CHECKING:
    from bmprov.config import Config
    from bmprov.store.base import Store


def open_store(config: Config) -> Store:
    """The state named by ``state`` in the config, opened and migrated."""
    url = config.state_url
    if url is None:
        return open_state(config.state_path, config.busy_timeout_ms)
    from bmprov.store.postgres import PostgresStore  # noqa: PLC0415  (psycopg only when used)

    password = state_password(config)
    return PostgresStore(url, password.reveal() if password else None, config.busy_timeout_ms)


def open_url(url: str, password: Secret[str] | None = None, timeout_ms: int = 10_000) -> Store:
    """A state by location alone (``bmprov state copy``): a URL or an SQLite path."""
    if re.match(r"^postgres(ql)?://", url, re.IGNORECASE):
        from bmprov.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(url, password.reveal() if password else None, timeout_ms)
    from pathlib import Path  # noqa: PLC0415

    return open_state(Path(url), timeout_ms)


def state_password(config: Config) -> Secret[str] | None:
    """The PostgreSQL password the config points to, or None (libpq then looks in PGPASSFILE)."""
    name = config.raw.get("state_password_file")
    if name:
        path = config.resolve(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"state_password_file {path}: cannot read it ({exc})") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise ConfigError(f"state_password_file {path} is empty")
        return Secret(lines[0])
    env = config.raw.get("state_password_env")
    if env:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"state_password_env names ${env}, which is not set")
        return Secret(value)
    return None
