"""OS profiles: how each OS installs, and a node's OS name → its profile, never by guessing.

The sheet's OS column is the operator's choice of what to install. Only an *empty* cell falls
back to ``[boot] default_os``; a name with no profile is an error wherever it matters (a
warning at import, where the sheet arrives long before networking; a failed node at
networking and ``pxe render``; a listed node in ``bmprov check``), never another OS.

A site maps its own OS names in the config. ``[boot.os.NAME]`` with ``base = "B"`` starts
from profile ``B`` as this site has it (``B``'s own ``[boot.os.B]`` table applied first; a base
may itself have a base, a loop is refused) and inherits every field: PXE template family,
install file kind, kernel, initrd, repository and kickstart version. The table's other keys
override. The new profile so installs from ``B``'s media (its default repository stays
``/repo/B``); its install file template is looked up as ``NAME.j2``, then ``B.j2`` (and the
bases' bases), then the kind's own (``kickstart.j2``...). A ``[boot.os.NAME]`` of a shipped
name overrides fields of that profile; a new name without ``base`` starts from a generic
kickstart profile (``NAME/vmlinuz``, ``NAME/initrd.img``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import ConfigError, Problem
from bmprov.install.options import http_url

INSTALL_KINDS = ("kickstart", "preseed", "autoinstall")
_REL_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class OsProfile:
    """How one OS installs: its PXE template family, install file kind, kernel, initrd, repo."""

    name: str
    template: str
    install: str
    kernel: str
    initrd: str
    repo: str | None = None  # default: http://SERVER[:PORT]/repo/<media>
    ks_version: str = "RHEL9"  # pykickstart syntax version for `ks validate`
    bases: tuple[str, ...] = ()  # the profiles it extends, nearest first (``base = ...``)
    tags: tuple[str, ...] = ()  # catalogue: bm, vm, gpu, vgpu (bmprov.catalogue); () = any node
    min_ram_gb: int | None = None  # catalogue: the least RAM a node needs for it
    min_disk_gb: int | None = None  # catalogue: the smallest install disk it fits on

    @property
    def media(self) -> str:
        """The profile whose installer media it uses (the last base, or itself)."""
        return self.bases[-1] if self.bases else self.name


def _profile(name: str, template: str, install: str, kernel: str, initrd: str) -> OsProfile:
    return OsProfile(name, template, install, f"{name}/{kernel}", f"{name}/{initrd}")


BUILTIN_OS: dict[str, OsProfile] = {
    p.name: p
    for p in (
        _profile("rocky9", "anaconda", "kickstart", "vmlinuz", "initrd.img"),
        _profile("rhel9", "anaconda", "kickstart", "vmlinuz", "initrd.img"),
        _profile("alma9", "anaconda", "kickstart", "vmlinuz", "initrd.img"),
        _profile("debian12", "debian-installer", "preseed", "linux", "initrd.gz"),
        _profile("ubuntu-22.04", "subiquity", "autoinstall", "vmlinuz", "initrd"),
        _profile("ubuntu-24.04", "subiquity", "autoinstall", "vmlinuz", "initrd"),
    )
}
"""Shipped OS profiles; ``[boot.os.NAME]`` tables override fields or add OSes."""


def rel_path(value: Any, key: str) -> str:
    """A relative path below a served root (no ``..``), or ValueError naming ``key``."""
    text = str(value).strip("/")
    if not _REL_PATH.fullmatch(text) or ".." in text.split("/"):
        raise ValueError(f"{key} {value!r} must be a relative path (letters, digits, ._/-)")
    return text


def build_profiles(raw: Mapping[str, Any]) -> dict[str, OsProfile]:
    """The shipped profiles with the ``[boot.os.NAME]`` tables merged in, each checked.

    :raises ValueError: a bad field, an unknown ``base`` or a loop of bases (naming the key).
    """
    done: dict[str, OsProfile] = {}
    path: list[str] = []

    def resolve(name: str) -> OsProfile:
        if name in done:
            return done[name]
        if name in path:
            raise ValueError(f"os.{name}.base: a loop ({' → '.join([*path, name])})")
        path.append(name)
        table = dict(raw[name])
        base = table.pop("base", None)
        if base is not None:
            base = str(base)
            if base == name and name in BUILTIN_OS:  # the shipped profile of that name
                start = BUILTIN_OS[name]
            else:
                if base in raw and base != name:
                    start = resolve(base)
                elif base in BUILTIN_OS:
                    start = BUILTIN_OS[base]
                elif base == name:
                    raise ValueError(f"os.{name}.base: a loop ({name} → {name})")
                else:
                    known = ", ".join(sorted({*BUILTIN_OS, *raw}))
                    raise ValueError(
                        f"os.{name}.base {base!r} is not an OS profile (known: {known})"
                    )
                start = replace(start, name=name, bases=(start.name, *start.bases))
        elif name in BUILTIN_OS:
            start = BUILTIN_OS[name]
        else:
            start = OsProfile(
                name, "anaconda", "kickstart", f"{name}/vmlinuz", f"{name}/initrd.img"
            )
        fields: dict[str, Any] = {k: str(v) for k, v in table.items() if k not in _CATALOGUE}
        fields.update(_catalogue_fields(name, table))
        done[name] = _checked(replace(start, **fields))
        path.pop()
        return done[name]

    for name in raw:
        validate.token(name, "OS name")
        resolve(name)
    return {**BUILTIN_OS, **done}


_CATALOGUE = ("tags", "min_ram_gb", "min_disk_gb")
TAGS = ("bm", "gpu", "vgpu", "vm")


def _catalogue_fields(name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue keys of a ``[boot.os.NAME]`` table, typed and checked."""
    out: dict[str, Any] = {}
    if "tags" in table:
        tags = table["tags"]
        if not isinstance(tags, list) or any(t not in TAGS for t in tags):
            raise ValueError(f"os.{name}.tags must be a list of {', '.join(TAGS)}")
        out["tags"] = tuple(dict.fromkeys(str(t) for t in tags))
    for key in ("min_ram_gb", "min_disk_gb"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"os.{name}.{key} must be a whole number of GB, at least 1")
            out[key] = value
    return out


def _checked(profile: OsProfile) -> OsProfile:
    name = profile.name
    if profile.install not in INSTALL_KINDS:
        raise ValueError(f"os.{name}.install must be one of {', '.join(INSTALL_KINDS)}")
    validate.token(profile.template, f"os.{name}.template")
    rel_path(profile.kernel, f"os.{name}.kernel")
    rel_path(profile.initrd, f"os.{name}.initrd")
    if profile.repo is not None:
        try:
            http_url(profile.repo)  # the same allow-list as every URL placed in a file
        except ValueError:
            raise ValueError(
                f"os.{name}.repo {profile.repo!r} is not an allowed URL "
                "(http(s)://host[:port]/path; letters, digits and ._~/-=& only)"
            ) from None
    return profile


def unknown_os(name: str, known: Iterable[str]) -> str:
    """Why an OS name is refused: the names there are, a close one, and how to map it."""
    names = sorted(known)
    try:
        validate.token(name, "OS name")
    except ValueError:  # not a name a sheet could carry: quote it (escaped), suggest nothing
        return f"OS {name!r} is not a valid OS name (known: {', '.join(names)})"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    key = name if _BARE_KEY.fullmatch(name) else f'"{name}"'  # TOML: a dot needs quotes
    return (
        f"unknown OS {name!r} (known: {', '.join(names)}{hint}); to install it as one of "
        f'them, map it in the config: [boot.os.{key}] base = "<known name>"'
    )


def site_profiles(config: Config) -> tuple[dict[str, OsProfile], str]:
    """This site's profiles and ``default_os``, read without the rest of ``[boot]``.

    :raises ConfigError: a bad ``[boot.os]`` table, naming the key.
    """
    boot = config.section("boot")
    try:
        profiles = build_profiles(boot.get("os", {}))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{config.path or 'config'}: boot: {exc}") from None
    return profiles, str(boot.get("default_os", "rocky9"))


def sheet_warnings(
    config: Config, file: str, column: str | None, cells: Iterable[tuple[int, str]]
) -> list[Problem]:
    """``FILE:ROW:COLUMN: unknown OS …`` for each (row, OS cell) naming no profile.

    The import still imports such rows (the sheet arrives long before networking, and the
    profile may be added to the config meanwhile); networking fails them until it is.
    """
    try:
        profiles, _ = site_profiles(config)
    except ConfigError as exc:
        return [Problem(file, None, column, f"OS names not checked: {exc}")]
    messages: dict[str, str] = {}  # one message per distinct name (100,000 rows repeat a few)
    out = []
    for row, name in cells:
        if name not in profiles:
            message = messages.get(name) or messages.setdefault(name, unknown_os(name, profiles))
            out.append(Problem(file, row, column, message))
    return out
