"""A reader of Debian preseed partitioning, and the check that a recipe installs a bootable node.

``debconf-set-selections --checkonly`` (:func:`debconf_checkonly`) proves the file is well-formed
debconf; it does not read recipes. :func:`check_preseed` parses ``partman-auto/expert_recipe``
(partman-auto-recipe.txt: ``<min> <priority> <max> <fs> <specifiers> .``) and
``partman-auto-raid/recipe`` (``<level> <devcount> <sparecount> <fstype> <mountpoint> <devices>
[<spares>] .``) and asserts what an unattended install needs: a root LV mounted at ``/``, swap,
``/boot`` (on RAID 1 when mirrored), an ESP and a BIOS boot partition on every boot disk, GPT,
GRUB on every boot disk, and the data array at the scheme's level with its members and spares.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bmprov.install.disklayout import DiskLayout

_SPEC = re.compile(r"(\$?[A-Za-z_/]+)\{\s*([^}]*?)\s*\}")


@dataclass
class RecipePart:
    """One ``<limits> <specifiers> .`` entry of an expert recipe."""

    fs: str
    specs: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """``method{ X }``."""
        return self.specs.get("method", "")


@dataclass
class RaidArray:
    """One entry of ``partman-auto-raid/recipe``."""

    level: str
    count: int
    spare_count: int
    fstype: str
    mountpoint: str
    devices: list[str]
    spares: list[str]


def selections(text: str) -> dict[str, str]:
    """``owner question type value`` lines → question → value (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) >= 3:
            values[parts[1]] = parts[3] if len(parts) == 4 else ""
    return values


def parse_expert_recipe(value: str) -> tuple[str, list[RecipePart]]:
    """The recipe name and its entries; ValueError if it is not recipe syntax."""
    name, sep, body = value.partition("::")
    if not sep:
        name, sep, body = value.partition(":")
    if not sep:
        raise ValueError("expert_recipe has no '<name> ::' header")
    parts: list[RecipePart] = []
    for entry in body.split(" ."):
        chunk = entry.strip()
        if not chunk:
            continue
        words = chunk.split()
        if len(words) < 4:
            raise ValueError(f"recipe entry {chunk!r} lacks '<min> <priority> <max> <fs>'")
        specs_text = " ".join(words[4:])
        specs = dict(_SPEC.findall(specs_text))
        if _SPEC.sub("", specs_text).strip():
            raise ValueError(f"recipe entry {chunk!r}: not 'name{{ value }}' specifiers")
        parts.append(RecipePart(words[3], specs))
    return name.strip(), parts


def parse_raid_recipe(value: str) -> list[RaidArray]:
    """The arrays of ``partman-auto-raid/recipe``; ValueError if malformed."""
    arrays = []
    for chunk in value.split(" ."):
        words = chunk.split()
        if not words:
            continue
        if len(words) not in (6, 7) or not (words[1].isdigit() and words[2].isdigit()):
            raise ValueError(
                f"raid recipe entry {chunk.strip()!r} is not 'L N S fs mnt devs [spares]'"
            )
        spares = words[6].split("#") if len(words) == 7 else []
        arrays.append(
            RaidArray(
                words[0],
                int(words[1]),
                int(words[2]),
                words[3],
                words[4],
                words[5].split("#"),
                spares,
            )
        )
    return arrays


def check_preseed(text: str, layout: DiskLayout, firmware: str) -> None:
    """Assert the partitioning in ``text`` installs ``layout`` on ``firmware``; ValueError."""
    values = selections(text)
    if values.get("partman-auto/disk", "").split() != [f"/dev/{d}" for d in layout.disks]:
        raise ValueError(f"partman-auto/disk is not every disk of the scheme ({layout.disks})")
    name, parts = parse_expert_recipe(values.get("partman-auto/expert_recipe", ""))
    if values.get("partman-auto/choose_recipe") != name:
        raise ValueError(f"partman-auto/choose_recipe does not select the expert recipe {name!r}")
    lvs, on_disk = _split(parts, values.get("partman-auto/method", ""))
    if not any(p.specs.get("mountpoint") == "/" for p in lvs):
        raise ValueError("no logical volume is mounted at / (mountpoint{ / } with $lvmok{ })")
    if not any(p.method == "swap" for p in lvs):
        raise ValueError("no swap logical volume")
    _boot_entries(values, on_disk, layout, firmware)
    if layout.mirrored:
        _check_raid(values, on_disk, layout)
    elif values.get("partman-auto/method") != "lvm":
        raise ValueError("LVM_HBA needs partman-auto/method lvm")
    elif not any(p.specs.get("mountpoint") == "/boot" for p in on_disk):
        raise ValueError("no /boot partition")


def _split(parts: list[RecipePart], method: str) -> tuple[list[RecipePart], list[RecipePart]]:
    """(logical volumes, partitions of each disk) as partman-auto-lvm/-raid read the recipe.

    Method ``lvm``: ``$lvmok`` entries become LVs, ``$lvmignore`` ones are dropped, the rest are
    partitions. Method ``raid`` (LVM on md): ``$defaultignore`` entries are skipped on the disks
    and made as LVs if ``$lvmok``; the others are partitions of every disk.
    """
    if method == "raid":
        lvs = [p for p in parts if "$defaultignore" in p.specs and "$lvmok" in p.specs]
        return lvs, [p for p in parts if "$defaultignore" not in p.specs]
    lvs = [p for p in parts if "$lvmok" in p.specs]
    return lvs, [p for p in parts if "$lvmok" not in p.specs and "$lvmignore" not in p.specs]


def _boot_entries(
    values: dict[str, str], on_disk: list[RecipePart], layout: DiskLayout, firmware: str
) -> None:
    if firmware == "uefi":
        if not any(p.method == "efi" for p in on_disk):
            raise ValueError("no EFI system partition (method{ efi }) for UEFI")
        if layout.mirrored and values.get("grub-installer/force-efi-extra-removable") != "true":
            raise ValueError("mirrored ESPs need grub-installer/force-efi-extra-removable true")
        return
    if not any(p.method == "biosgrub" for p in on_disk):
        raise ValueError("no BIOS boot partition (method{ biosgrub }) for BIOS on GPT")
    if values.get("partman-partitioning/default_label") != "gpt":
        raise ValueError("biosgrub needs a GPT label (partman-partitioning/default_label gpt)")
    bootdev = values.get("grub-installer/bootdev", "").split()
    if bootdev != [f"/dev/{d}" for d in layout.boot_disks]:
        raise ValueError(f"grub-installer/bootdev {bootdev} is not every boot disk")


def _check_raid(values: dict[str, str], on_disk: list[RecipePart], layout: DiskLayout) -> None:
    if values.get("partman-auto/method") != "raid":
        raise ValueError(f"{layout.scheme} needs partman-auto/method raid")
    arrays = parse_raid_recipe(values.get("partman-auto-raid/recipe", ""))
    raid_numbers = {i + 1 for i, p in enumerate(on_disk) if p.method == "raid"}
    for array in arrays:
        if len(array.devices) != array.count or len(array.spares) != array.spare_count:
            raise ValueError(f"RAID {array.level} {array.mountpoint}: device counts disagree")
        for dev in array.devices + array.spares:
            number = int(re.sub(r"^.*?(\d+)$", r"\1", dev))
            if number not in raid_numbers:
                raise ValueError(f"{dev} is not a method{{ raid }} partition of the recipe")
    boot = [a for a in arrays if a.mountpoint == "/boot"]
    data = [a for a in arrays if a.fstype == "lvm"]
    if len(boot) != 1 or boot[0].level != "1":
        raise ValueError("/boot must be one RAID 1 array")
    if len(data) != 1:
        raise ValueError("no RAID array carries LVM (fstype lvm)")
    want = (layout.level, len(layout.active), len(layout.spares))
    for array in (data[0],):
        if (array.level, array.count, array.spare_count) != want:
            raise ValueError(
                f"data array is RAID {array.level} of {array.count} + {array.spare_count} "
                f"spares; {layout.scheme} needs RAID {want[0]} of {want[1]} + {want[2]}"
            )
    if boot[0].count + boot[0].spare_count != len(layout.boot_disks):
        raise ValueError("/boot is not mirrored over every boot disk")


_DEBCONF_CONF = """Config: configdb
Templates: templatedb

Name: configdb
Driver: File
Filename: {dir}/config.dat

Name: templatedb
Driver: File
Filename: {dir}/templates.dat
"""
"""A debconf.conf whose two databases live in a private directory (debconf.conf(5))."""


def debconf_checkonly(text: str) -> str | None:
    """Run ``debconf-set-selections --checkonly`` on ``text``: None if it passes, else why.

    Against a private, empty debconf database (``DEBCONF_SYSTEMRC`` naming a throw-away
    ``debconf.conf``): the system's ``/var/cache/debconf`` is locked by any other debconf
    program, and a locked database made ``--checkonly`` exit 1 without a word (seen when
    several ``ks validate`` or test runs overlap). The check only parses lines; it needs no
    templates or answers.

    :raises FileNotFoundError: debconf-set-selections is not installed.
    """
    program = shutil.which("debconf-set-selections")
    if program is None:
        raise FileNotFoundError("debconf-set-selections (Debian package debconf) is not installed")
    with tempfile.TemporaryDirectory(prefix="bmprov-debconf-") as tmp:
        private = Path(tmp)
        (private / "debconf.conf").write_text(_DEBCONF_CONF.format(dir=private), encoding="utf-8")
        (private / "file.preseed").write_text(text, encoding="utf-8")
        env = {**os.environ, "DEBCONF_SYSTEMRC": str(private / "debconf.conf")}
        result = subprocess.run(  # fixed program, files we wrote
            [program, "--checkonly", str(private / "file.preseed")],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    if result.returncode == 0 and not result.stderr.strip():
        return None
    return (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
