"""Hardware facts of a node: RAM, install-disk size and GPUs, as the OS catalogue reads them.

They come from optional sheet columns today (``RAM``, ``Disk Size``, ``GPU``...; stored with
the node's install options, so a blank cell keeps the stored value and a re-import changes
nothing) and from discovery later, under the same keys:

=============  ===========================================  ==============================
key            value                                        cell examples
=============  ===========================================  ==============================
``ram_gb``     RAM, whole GB                                ``512``, ``512 GB``, ``1 TB``
``disk_gb``    size of the disk the OS installs on, GB      ``960``, ``1.92TB``
``gpus``       how many GPUs (0: none)                      ``2``, ``yes``, ``none``
=============  ===========================================  ==============================

Disk *count* is the install option ``disks`` (:mod:`bmprov.install.options`). Every parser is
an allow-list raising :class:`ValueError` with a message that can stand after
``FILE:ROW:COLUMN:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bmprov import validate

FACT_KEYS = ("ram_gb", "disk_gb", "gpus")
MAX_GB = 10 * 1024 * 1024  # 10 PB: a typo guard, not a hardware limit
MAX_GPUS = 64
_SIZE = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,3})?)\s*(gb|gib|g|tb|tib|t)?", re.IGNORECASE)
_YES = frozenset({"yes", "y", "true"})
_NO = frozenset({"no", "n", "false", "none", "-"})


def size_gb(value: str, what: str = "size") -> int:
    """A size in whole GB: ``512``, ``512 GB``, ``1.5 TB`` (1 TB = 1024 GB; rounded down)."""
    validate.reject_control(value)
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value.strip()!r} is not a {what} (e.g. 512, 512 GB, 1.5 TB)")
    number = float(match[1])
    if (match[2] or "g").lower().startswith("t"):
        number *= 1024
    if not 1 <= number <= MAX_GB:
        raise ValueError(f"{value.strip()!r} is not a {what} (1 GB to {MAX_GB // 1024**2} PB)")
    return int(number)


def ram_gb(value: str) -> int:
    """The RAM cell."""
    return size_gb(value, "RAM size")


def disk_gb(value: str) -> int:
    """The install-disk size cell."""
    return size_gb(value, "disk size")


def gpus(value: str) -> int:
    """The GPU cell: a count, or yes (1) / no (0)."""
    validate.reject_control(value)
    text = value.strip().lower().removesuffix(".0")
    if text in _YES:
        return 1
    if text in _NO:
        return 0
    if not text.isdigit() or int(text) > MAX_GPUS:
        raise ValueError(f"{value.strip()!r} is not a GPU count (0-{MAX_GPUS}, yes or no)")
    return int(text)


PARSERS = {"ram_gb": ram_gb, "disk_gb": disk_gb, "gpus": gpus}


@dataclass(frozen=True)
class Facts:
    """What is known of a node's hardware (None: not known)."""

    ram_gb: int | None = None
    disk_gb: int | None = None
    disks: int | None = None
    gpus: int | None = None

    @classmethod
    def of(cls, options: dict[str, Any]) -> Facts:
        """From a node's stored install options, each re-validated (a bad stored value counts
        as unknown: the state file is not trusted)."""
        known: dict[str, int | None] = {}
        for key, parse in {**PARSERS, "disks": _disks}.items():
            value = options.get(key)
            try:
                known[key] = None if value in (None, "") else parse(str(value))
            except ValueError:
                known[key] = None
        return cls(**known)

    def to_dict(self) -> dict[str, int | None]:
        """The JSON form."""
        return {
            "ram_gb": self.ram_gb,
            "disk_gb": self.disk_gb,
            "disks": self.disks,
            "gpus": self.gpus,
        }


def _disks(value: str) -> int:
    from bmprov.install.options import disk_count  # noqa: PLC0415

    return disk_count(value)
