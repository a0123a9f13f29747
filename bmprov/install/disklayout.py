"""What each partition scheme creates on which disks, for every installer family.

One plan per node, shared by the kickstart, preseed and autoinstall templates and by the checks
in :mod:`bmprov.install.check`, so a template and its check cannot disagree on what a scheme
means. The same install file is served whichever loader (pxelinux = BIOS, GRUB/iPXE = UEFI)
the node boots, so every plan carries what *both* firmwares need: a BIOS boot partition
(GPT + GRUB on BIOS) and an EFI system partition on every boot disk.

* ``LVM_HBA``: disk 1 holds the BIOS boot partition, the ESP and ``/boot``; every disk holds one
  LVM physical volume of ``vg_root`` (swap + ``/``). Any disk lost loses the volume group.
* ``LVM_RAID0/1/10/10S``: every disk is partitioned alike (BIOS boot, ESP, ``/boot`` member, data
  member), so any surviving member can boot: ``/boot`` is an md RAID 1 over the active disks
  and the data md (RAID level of the scheme) carries ``vg_root``. ``LVM_RAID10S`` keeps its
  last disk as a hot spare of both arrays, partitioned like the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from bmprov.install.options import InstallOptions

LEVELS = {"LVM_RAID0": "0", "LVM_RAID1": "1", "LVM_RAID10": "10", "LVM_RAID10S": "10"}
"""md RAID level of the data array per scheme (``LVM_HBA``: none)."""

FIRMWARES = ("bios", "uefi")

BIOS_BOOT_MIB = 1
ESP_MIB = 512
BOOT_MIB = 1024
SWAP_MIB = 4096
VG = "vg_root"
SIZES = {
    "bios_boot_mib": BIOS_BOOT_MIB,
    "esp_mib": ESP_MIB,
    "boot_mib": BOOT_MIB,
    "swap_mib": SWAP_MIB,
    "vg": VG,
}
"""What every install template sees of the sizes (MiB) and the volume group name."""


@dataclass(frozen=True)
class DiskLayout:
    """The disks of one node and what the scheme puts on them."""

    scheme: str
    disks: tuple[str, ...]
    level: str | None  # md level of the data array; None for plain LVM
    active: tuple[str, ...]  # active members of the data array (every disk for LVM_HBA)
    spares: tuple[str, ...]
    boot_disks: tuple[str, ...]  # disks with a BIOS boot partition, an ESP and /boot (member)

    @property
    def mirrored(self) -> bool:
        """True when ``/boot`` and the data live on md arrays over every disk."""
        return self.level is not None

    def parts(self, number: int, disks: tuple[str, ...] | None = None) -> list[str]:
        """``/dev`` paths of partition ``number`` on ``disks`` (default: every disk)."""
        return [partition_path(d, number) for d in (self.disks if disks is None else disks)]

    # Jinja-friendly views (a template should not compute device names itself).
    @property
    def raid_boot_parts(self) -> list[str]:
        """Partition 1 (``/boot`` member) of each active disk."""
        return self.parts(1, self.active)

    @property
    def raid_boot_spares(self) -> list[str]:
        """Partition 1 of each spare disk."""
        return self.parts(1, self.spares)

    @property
    def raid_data_parts(self) -> list[str]:
        """Partition 2 (data member) of each active disk."""
        return self.parts(2, self.active)

    @property
    def raid_data_spares(self) -> list[str]:
        """Partition 2 of each spare disk."""
        return self.parts(2, self.spares)


def plan(install: InstallOptions) -> DiskLayout:
    """The layout of ``install``'s scheme over its disks."""
    disks = tuple(install.disks)
    scheme = install.partition_scheme
    level = LEVELS.get(scheme)
    if level is None:
        return DiskLayout(scheme, disks, None, disks, (), disks[:1])
    spares = disks[-1:] if scheme == "LVM_RAID10S" else ()
    active = disks[: len(disks) - len(spares)]
    return DiskLayout(scheme, disks, level, active, spares, disks)


def partition_path(disk: str, number: int) -> str:
    """The kernel's name of partition ``number`` of ``disk``.

    ``sda`` → ``/dev/sda1``; a name ending in a digit (``nvme0n1``, ``mmcblk0``) takes a ``p``;
    a udev link (``disk/by-path/…``, ``disk/by-id/…``) takes ``-partN`` as udev names them.
    """
    if disk.startswith("disk/"):
        return f"/dev/{disk}-part{number}"
    separator = "p" if disk[-1:].isdigit() else ""
    return f"/dev/{disk}{separator}{number}"
