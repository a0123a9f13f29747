"""Rendered install files checked by installer code (or bmprov's schema) and their scheme.

Per install kind, for each firmware (BIOS and UEFI; the same file serves both):

* kickstart: pykickstart parses the file as anaconda would (``ksvalidator -v VERSION``), once
  per firmware with ``%include /tmp/bmprov-boot.ks`` replaced by what ``%pre`` writes there;
  then the parsed commands must hold root and swap LVs, ``/boot`` (RAID 1 over every boot disk
  when mirrored), a ``biosboot`` partition on every boot disk (BIOS) or the ESP (UEFI; a RAID 1
  over every boot disk when mirrored) and the data array at the scheme's
  level, members and spares.
* autoinstall: the ``autoinstall:`` section against bmprov's own schema
  (``schemas/autoinstall.schema.json``: the subset of subiquity's documented format that the
  templates emit, closed so a misspelt key fails), then the curtin storage config: ``/`` and
  ``/boot`` mounted, swap, an ESP and a ``bios_grub`` partition on every ``grub_device`` disk,
  RAID levels and member counts.
* preseed: :mod:`bmprov.install.partman` (``debconf-set-selections --checkonly`` runs in
  ``ks validate`` and the tests, not at render time: it is a subprocess).

Each check raises :class:`ValueError` naming what is missing; :data:`VALIDATORS` names them.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import cache
from typing import Any

from bmprov.install.checkcache import CheckCache
from bmprov.install.disklayout import FIRMWARES, DiskLayout
from bmprov.install.partman import check_preseed, debconf_checkonly
from bmprov.resources import data_dir

VALIDATORS = {
    "kickstart": "pykickstart {version} + layout check",
    "autoinstall": (
        "bmprov's autoinstall schema (subset of subiquity's documented format)"
        " + storage semantic check"
    ),
    "preseed": "partman recipe check",
}
"""The in-process checks of :func:`check`, by install kind (render time and ks validate)."""
TOOLS = {"preseed": "debconf-set-selections --checkonly + "}
"""Checks that run a program, before :data:`VALIDATORS` (ks validate and the tests only)."""
_VARIANT = re.compile(r"<<'BMPROV_(UEFI|BIOS)'\n(.*?)BMPROV_\1\n", re.DOTALL)
_BIOSBOOT_AGAIN = re.compile(r"mountpoint biosboot has already been defined")
_INCLUDE = "%include /tmp/bmprov-boot.ks\n"


def check(kind: str, text: str, layout: DiskLayout, ks_version: str = "RHEL9") -> None:
    """Check one rendered install file for every firmware; ValueError names the firmware."""
    for firmware in FIRMWARES:
        try:
            if kind == "kickstart":
                check_kickstart(text, layout, firmware, ks_version)
            elif kind == "autoinstall":
                check_autoinstall(text, layout, firmware)
            elif kind == "preseed":
                check_preseed(text, layout, firmware)
        except ValueError as exc:
            raise ValueError(f"{firmware.upper()}: {exc}") from None


def check_with_tools(kind: str, text: str, layout: DiskLayout, ks_version: str = "RHEL9") -> None:
    """:func:`check`, after the checks that run a program (``debconf-set-selections``).

    :raises FileNotFoundError: that program is not installed.
    """
    if kind == "preseed":
        problem = debconf_checkonly(text)
        if problem:
            raise ValueError(f"debconf-set-selections --checkonly: {problem}")
    check(kind, text, layout, ks_version)


class RenderCheck:
    """The render-time check: the first file of each variant a writer renders.

    A variant is (template, install kind, syntax version, layout, callbacks on/off); later
    files of a variant differ only in values the render filters guard (names, keys, hashes).
    Costs ~50-300 ms per variant (pykickstart or jsonschema, both firmwares); with a
    :class:`~bmprov.install.checkcache.CheckCache` a variant is checked once across processes.
    """

    def __init__(self, cache: CheckCache | None = None) -> None:
        self._cache = cache or CheckCache(None, str)

    def check(
        self, profile: Any, layout: DiskLayout, text: str, variant: tuple[object, ...] = ()
    ) -> None:
        """:func:`check` once per variant; ValueError names the validator and firmware."""
        key = self._cache.key((profile.install, profile.ks_version, layout, *variant))
        if self._cache.passed(key):
            return
        with self._cache.locked():  # another process may be checking the same variant
            if self._cache.passed(key, reread=True):
                return
            try:
                check(profile.install, text, layout, profile.ks_version)
            except ValueError as exc:
                name = VALIDATORS[profile.install].format(version=profile.ks_version)
                raise ValueError(f"{name}: {exc}") from None
            self._cache.add(key)


# ---- kickstart --------------------------------------------------------------------------------


def parse_kickstart(text: str, version: str) -> Any:
    """Parse ``text`` like ``ksvalidator -v VERSION``: the pykickstart handler, or ValueError
    naming the line (pykickstart costs 19-45 ms per file, libraries.md §e)."""
    from pykickstart.errors import KickstartError, KickstartParseWarning  # noqa: PLC0415
    from pykickstart.parser import KickstartParser  # noqa: PLC0415
    from pykickstart.version import makeVersion  # noqa: PLC0415

    try:
        handler = makeVersion(version)
    except KickstartError as exc:
        raise ValueError(f"pykickstart does not know syntax version {version!r}: {exc}") from None
    parser = KickstartParser(handler, followIncludes=False, errorsAreFatal=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KickstartParseWarning)
        try:
            parser.readKickstartFromString(text)
        except KickstartError as exc:
            line = getattr(exc, "lineno", None)
            message = getattr(exc, "message", None) or str(exc).strip()
            if line:
                lines = text.splitlines()
                shown = lines[line - 1] if 0 < line <= len(lines) else ""
                raise ValueError(f"line {line} ({shown.strip()!r}): {message}") from None
            raise ValueError(message) from None
    for warning in caught:
        # One biosboot partition per boot disk is what GRUB needs on every BIOS/GPT member of
        # a /boot mirror; pykickstart compares partitions by mount point only and warns. The
        # layout check below asserts each sits on a different disk.
        if issubclass(warning.category, KickstartParseWarning) and not _BIOSBOOT_AGAIN.search(
            str(warning.message)
        ):
            raise ValueError(f"warning: {warning.message}")
    return handler


def kickstart_variant(text: str, firmware: str) -> str:
    """The kickstart anaconda reads on ``firmware``: the %include replaced by its %pre text."""
    variants = {m.group(1).lower(): m.group(2) for m in _VARIANT.finditer(text)}
    if _INCLUDE not in text:
        return text  # a site template without the firmware switch: parsed as it is
    if firmware not in variants:
        raise ValueError(f"%pre writes no {firmware.upper()} part for /tmp/bmprov-boot.ks")
    return text.replace(_INCLUDE, variants[firmware], 1)


def check_kickstart(text: str, layout: DiskLayout, firmware: str, version: str) -> None:
    """pykickstart parse of the ``firmware`` variant, then the layout assertions."""
    handler = parse_kickstart(kickstart_variant(text, firmware), version)
    parts = handler.partition.partitions
    raids = {r.mountpoint: r for r in handler.raid.raidList}
    logvols = {lv.mountpoint for lv in handler.logvol.lvList}
    if "/" not in logvols or "swap" not in logvols:
        raise ValueError("no root (/) and swap logical volumes")
    members = {p.mountpoint: p.disk for p in parts}

    def on_disks(raid: Any) -> list[str]:
        return sorted(members.get(m, "?") for m in raid.members)

    boot_disks = sorted(layout.boot_disks)
    if firmware == "bios":
        bios = sorted(p.disk for p in parts if p.mountpoint == "biosboot")
        if bios != boot_disks:
            raise ValueError(f"biosboot partitions on {bios}, need one on each of {boot_disks}")
    elif layout.mirrored:
        esp = raids.get("/boot/efi")
        if esp is None or esp.level != "RAID1" or on_disks(esp) != boot_disks:
            raise ValueError(f"/boot/efi must be RAID1 over {boot_disks}")
    elif not any(p.mountpoint == "/boot/efi" and p.disk in boot_disks for p in parts):
        raise ValueError("no /boot/efi partition on the boot disk")
    if layout.mirrored:
        boot = raids.get("/boot")
        if boot is None or boot.level != "RAID1" or on_disks(boot) != boot_disks:
            raise ValueError(f"/boot must be RAID1 over {boot_disks}")
        pv = next((r for r in handler.raid.raidList if r.mountpoint.startswith("pv.")), None)
        want = f"RAID{layout.level}"
        if pv is None or pv.level != want or on_disks(pv) != sorted(layout.disks):
            raise ValueError(f"the LVM array must be {want} over {list(layout.disks)}")
        if (pv.spares or 0) != len(layout.spares):
            raise ValueError(f"the LVM array has {pv.spares or 0} spares, not {len(layout.spares)}")
    elif not any(p.mountpoint == "/boot" for p in parts):
        raise ValueError("no /boot partition")


# ---- autoinstall ------------------------------------------------------------------------------


@cache
def autoinstall_schema() -> dict[str, Any]:
    """bmprov's autoinstall schema (``schemas/autoinstall.schema.json``)."""
    path = data_dir("schemas") / "autoinstall.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def check_autoinstall(text: str, layout: DiskLayout, firmware: str) -> None:
    """Schema-validate the autoinstall section, then check its storage config."""
    import jsonschema  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not YAML: {exc}") from None
    section = data.get("autoinstall") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ValueError("no 'autoinstall:' section")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(autoinstall_schema()).iter_errors(section)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "autoinstall"
        raise ValueError(f"autoinstall schema: {where}: {error.message}")
    storage_config(section, layout, firmware)


def storage_config(section: dict[str, Any], layout: DiskLayout, firmware: str) -> None:
    """The curtin storage config holds what ``layout`` needs on ``firmware``."""
    items = section.get("storage", {}).get("config")
    if not isinstance(items, list):
        raise ValueError("storage has no curtin 'config' list")
    by_id: dict[Any, dict[str, Any]] = {i.get("id"): i for i in items}
    mounts = {i.get("path"): i for i in items if i.get("type") == "mount"}

    def volume_of(path: str) -> dict[str, Any]:
        mount = mounts.get(path)
        fmt = by_id.get(mount.get("device")) if mount else None
        if fmt is None:
            raise ValueError(f"nothing is mounted at {path}")
        return by_id.get(fmt.get("volume"), {})

    if volume_of("/").get("type") != "lvm_partition":
        raise ValueError("/ is not a logical volume")
    if not any(i.get("type") == "format" and i.get("fstype") == "swap" for i in items):
        raise ValueError("no swap")
    disks = {i["id"]: i for i in items if i.get("type") == "disk"}
    boot_ids = [k for k, d in disks.items() if d.get("grub_device")]
    boot_paths = [disks[k].get("path") for k in boot_ids]
    if boot_paths != [f"/dev/{d}" for d in layout.boot_disks]:
        raise ValueError(f"grub_device disks {boot_paths} are not the boot disks")
    flag = "bios_grub" if firmware == "bios" else "boot"
    for disk_id in boot_ids:
        if disks[disk_id].get("ptable") != "gpt":
            raise ValueError(f"{disk_id} is not GPT")
        if not any(i.get("device") == disk_id and i.get("flag") == flag for i in items):
            raise ValueError(f"{disk_id} has no {flag} partition")
    if firmware == "uefi" and volume_of("/boot/efi").get("flag") != "boot":
        raise ValueError("/boot/efi is not an ESP")
    boot = volume_of("/boot")
    if layout.mirrored:
        _raid_item(boot, "1", len(layout.active), len(layout.spares), "/boot")
        vg: dict[str, Any] = next((i for i in items if i.get("type") == "lvm_volgroup"), {})
        data = by_id.get((vg.get("devices") or [None])[0], {})
        _raid_item(data, layout.level or "", len(layout.active), len(layout.spares), "the VG")


def _raid_item(item: dict[str, Any], level: str, count: int, spares: int, what: str) -> None:
    got = (
        str(item.get("raidlevel")),
        len(item.get("devices", [])),
        len(item.get("spare_devices", [])),
    )
    if item.get("type") != "raid" or got != (level, count, spares):
        kind = item.get("type")
        raise ValueError(
            f"{what} must be on RAID {level} of {count} + {spares} spares: {kind} {got}"
        )
