"""The site configuration: one TOML file, validated against ``schemas/config.schema.json``.

Found through ``--config``, then ``$BMPROV_CONFIG``, then ``./bmprov.toml``. Relative paths in it
are relative to the file's own directory. This module finds, parses and validates the file
and resolves paths; :attr:`Config.settings` (:mod:`bmprov.settings`) is the file as typed
sections, each parsed once.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bmprov.errors import ConfigError
from bmprov.resources import data_dir

if TYPE_CHECKING:
    from bmprov.settings import Settings
from bmprov.store import DEFAULT_BUSY_TIMEOUT_MS

CONFIG_NAME = "bmprov.toml"
_POSTGRES_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)  # as store.pgconn.is_url
ENV_CONFIG = "BMPROV_CONFIG"


@cache
def config_schema() -> dict[str, Any]:
    """The JSON schema the config must satisfy."""
    schema: dict[str, Any] = json.loads((data_dir("schemas") / "config.schema.json").read_text())
    return schema


@dataclass(frozen=True)
class Config:
    """A loaded, validated configuration."""

    path: Path | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets

    @property
    def base_dir(self) -> Path:
        """The directory relative paths are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, value: str | os.PathLike[str]) -> Path:
        """A config path made absolute against the config file's directory."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    def section(self, name: str) -> dict[str, Any]:
        """One top-level table (empty if absent)."""
        value = self.raw.get(name, {})
        return value if isinstance(value, dict) else {}

    @property
    def state_path(self) -> Path:
        """The SQLite state file (see :attr:`state_url` for a PostgreSQL state)."""
        return self.resolve(self.raw.get("state", "bmprov.sqlite"))

    @property
    def state_url(self) -> str | None:
        """The PostgreSQL URL when ``state`` is one, else None (an SQLite file)."""
        value = str(self.raw.get("state", ""))
        return value if _POSTGRES_URL.match(value) else None

    @property
    def site(self) -> str | None:
        """This host's site: batch commands act on its nodes unless widened."""
        value = self.raw.get("site")
        return str(value) if value else None

    @property
    def busy_timeout_ms(self) -> int:
        """How long a command waits for another bmprov's write lock (``state_timeout``, s)."""
        seconds = self.raw.get("state_timeout", DEFAULT_BUSY_TIMEOUT_MS / 1000)
        return int(float(seconds) * 1000)

    @cached_property
    def settings(self) -> Settings:
        """The site's typed settings, each section parsed on first use (:mod:`bmprov.settings`)."""
        from bmprov.settings import Settings  # noqa: PLC0415

        return Settings(self)


def find_config(explicit: Path | None) -> Path | None:
    """The config file to use: ``--config``, ``$BMPROV_CONFIG``, ``./bmprov.toml``, or None."""
    if explicit is not None:
        _check_file(explicit, f"config file {explicit}")
        return explicit
    env = os.environ.get(ENV_CONFIG)
    if env:
        _check_file(Path(env), f"${ENV_CONFIG} names {env}, which")
        return Path(env)
    local = Path.cwd() / CONFIG_NAME
    return local if local.is_file() else None


def _check_file(path: Path, what: str) -> None:
    """:class:`ConfigError` unless ``path`` is a regular file (``what`` starts the message)."""
    if path.is_file():
        return
    if path.is_dir():
        raise ConfigError(f"{what} is a directory, not a config file")
    if path.exists():
        raise ConfigError(f"{what} is not a regular file")
    raise ConfigError(f"{what} does not exist")


def read_config_text(path: Path) -> str:
    """The file's text; :class:`ConfigError` naming it (and the line) if unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors) is not a TOML error
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None


def load_config(explicit: Path | None = None, *, required: bool = True) -> Config:
    """Find, parse and validate the configuration."""
    path = find_config(explicit)
    if path is None:
        if required:
            raise ConfigError(
                f"no {CONFIG_NAME} here; run `bmprov init`, pass --config or set ${ENV_CONFIG}"
            )
        return Config(path=None, raw={})
    return parse_config(path.resolve(), read_config_text(path))


def parse_config(path: Path, text: str) -> Config:
    """Parse and validate TOML text that came from ``path``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    problems = validate_config(raw)
    if not problems:
        problems = _check_pattern(raw)
    if problems:
        raise ConfigError(f"{path}: " + f"\n{path}: ".join(problems))
    return Config(path=path, raw=raw)


def _check_pattern(raw: dict[str, Any]) -> list[str]:
    """``import.marker_pattern`` must compile (else every import would crash on it)."""
    pattern = raw.get("import", {}).get("marker_pattern")
    if pattern is None:
        return []
    try:
        re.compile(pattern)
    except re.error as exc:
        return [f"import.marker_pattern: not a regular expression ({exc})"]
    return []


def validate_config(raw: dict[str, Any]) -> list[str]:
    """Schema problems as ``key.path: message`` lines (empty when valid)."""
    import jsonschema  # noqa: PLC0415  (keeps `bmprov --help` fast)

    validator = jsonschema.Draft202012Validator(
        config_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    problems = []
    for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{key}: {_plain(error)}")
    return problems


SECRET_KEYS = frozenset({"password", "root_password_hash"})
"""Keys whose values are never echoed in a message, even when they are wrong."""


def _plain(error: Any) -> str:
    """jsonschema's message, without echoing whole sub-documents or secret values."""
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message)
        names = extra or re.findall(r"'([^']+)'", error.message)
        return f"unknown key(s): {', '.join(names)}"
    message, shown = str(error.message), repr(error.instance)
    if error.absolute_path and str(error.absolute_path[-1]) in SECRET_KEYS:
        return message.replace(shown, "(value not shown)")
    if error.validator == "format":  # only ever on addresses: not secret
        return f"{shown} is not a valid {error.validator_value} address"
    rest = message.removeprefix(shown).lstrip()
    if message.startswith(shown) and rest.startswith("is "):
        return rest.removeprefix("is ")  # "not of type 'string'", "less than the minimum of 1"
    return message[:200]
