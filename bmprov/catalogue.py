"""The OS catalogue: which OS profiles a node can take, and why not the others.

Each ``[boot.os.NAME]`` profile may say what it is for (:class:`~bmprov.boot.osprofiles.OsProfile`
``tags``, ``min_ram_gb``, ``min_disk_gb``); a node's hardware facts come from
:mod:`bmprov.facts`. The rules, each giving a reason when it refuses:

* ``tags`` naming a platform (``bm``, ``vm``) must name ``bm``: every node bmprov manages is a
  bare-metal machine (``vm``-only images are for the hypervisors' guests, not for PXE);
* ``tags`` naming ``gpu`` or ``vgpu`` (an image with GPU drivers, or a vGPU host) need a node
  with at least one GPU — a node whose GPU count is not known is refused too (a GPU image on a
  machine without one fails at its first driver load);
* ``min_ram_gb`` / ``min_disk_gb`` need that much RAM / install disk. A node whose size is
  **not known** is *not* refused: the check is reported as not made (``notes``), since most
  sheets carry no sizes yet;
* a profile without tags or minimums applies to every node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bmprov.boot.osprofiles import OsProfile, site_profiles, unknown_os
from bmprov.config import Config
from bmprov.errors import InputError
from bmprov.facts import Facts
from bmprov.nodes import Node

GPU_TAGS = frozenset({"gpu", "vgpu"})
PLATFORM_TAGS = frozenset({"bm", "vm"})


@dataclass(frozen=True)
class Fit:
    """Whether one OS applies to one node, and why (not)."""

    os: str
    applies: bool
    reasons: tuple[str, ...] = ()  # why it does not apply
    notes: tuple[str, ...] = ()  # checks that could not be made (facts not known)
    profile: OsProfile | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``bmprov os list --json``)."""
        profile = self.profile
        return {
            "os": self.os,
            "applies": self.applies,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "tags": list(profile.tags) if profile else [],
            "min_ram_gb": profile.min_ram_gb if profile else None,
            "min_disk_gb": profile.min_disk_gb if profile else None,
        }


def fit(profile: OsProfile, facts: Facts) -> Fit:
    """Apply the module's rules to one profile and one node's facts."""
    reasons: list[str] = []
    notes: list[str] = []
    tags = set(profile.tags)
    if tags & PLATFORM_TAGS and "bm" not in tags:
        reasons.append(f"for {', '.join(sorted(tags & PLATFORM_TAGS))} only, not bare metal")
    if tags & GPU_TAGS:
        kind = "/".join(sorted(tags & GPU_TAGS))
        if facts.gpus is None:
            reasons.append(f"a {kind} image needs a GPU; the node's GPUs are not known")
        elif facts.gpus < 1:
            reasons.append(f"a {kind} image needs a GPU; the node has none")
    _minimum(profile.min_ram_gb, facts.ram_gb, "RAM", reasons, notes)
    _minimum(profile.min_disk_gb, facts.disk_gb, "install disk", reasons, notes)
    return Fit(profile.name, not reasons, tuple(reasons), tuple(notes), profile)


def _minimum(
    need: int | None, have: int | None, what: str, reasons: list[str], notes: list[str]
) -> None:
    if need is None:
        return
    if have is None:
        notes.append(f"needs {need} GB {what}; the node's {what} is not known (not checked)")
    elif have < need:
        reasons.append(f"needs {need} GB {what}; the node has {have} GB")


def fits(config: Config, node: Node) -> list[Fit]:
    """Every OS profile of the site against ``node``, by name."""
    profiles, _ = site_profiles(config)
    facts = Facts.of(node.install_options)
    return [fit(profiles[name], facts) for name in sorted(profiles)]


def check_applies(config: Config, nodes: list[Node], os_name: str) -> None:
    """Refuse an OS that has no profile or does not apply to one of ``nodes``.

    :raises InputError: naming every node it does not apply to and why (exit 2).
    """
    profiles, _ = site_profiles(config)
    if os_name not in profiles:
        raise InputError(f"--os: {unknown_os(os_name, profiles)}")
    problems = []
    for node in nodes:
        result = fit(profiles[os_name], Facts.of(node.install_options))
        if not result.applies:
            problems.append(f"node {node.serial}: {'; '.join(result.reasons)}")
    if problems:
        raise InputError(
            f"OS {os_name} does not apply to {len(problems)} node(s) (see `bmprov os list "
            "SERIAL`):\n  " + "\n  ".join(problems)
        )
