"""Whole-column validation: the fast path of the importer.

A 100,000-row sheet cannot afford a Python function call per cell. Each function here checks a
whole column at once with one regular expression over the joined column (in C), and returns the
parsed values — or ``None`` when any cell is not plainly valid, in which case the importer falls
back to the per-cell validators in :mod:`bmprov.validate` to say exactly which cell and why.

The contract, checked by a property test: whenever a bulk function returns values, they are
exactly what the per-cell validator returns for each cell (``None`` for a blank cell).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bmprov.validate import PLACEHOLDER_SERIALS

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HEX2 = "[0-9A-Fa-f]{2}"
_MAC_ANY = (
    rf"{_HEX2}(?::{_HEX2}){{5}}|{_HEX2}(?:-{_HEX2}){{5}}"
    r"|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2}|[0-9A-Fa-f]{12}"
)


def _column(one: str) -> re.Pattern[str]:
    """Matches a newline-joined column whose every line is blank or ``one``.

    Each line must match whole (the lookahead), so the repetition can be possessive (``*+``):
    a plain ``*`` keeps a backtracking point per line, which cost 100 MB and 4× the time on a
    100,000-line column.
    """
    line = rf"(?:{one})?(?=\n|\Z)"
    return re.compile(rf"{line}(?:\n{line})*+")


_SERIALS = _column(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_REPEATED_CHAR = re.compile(r"^(.)\1*$", re.MULTILINE | re.IGNORECASE)
_HOSTS = _column(_HOST)
_LONG_LINE = re.compile(r"^.{254,}$", re.MULTILINE)
_MACS = _column(_MAC_ANY)
_GROUP_BIT = re.compile(r"^.[13579bdf]", re.MULTILINE)
_H = "([0-9a-f]{2})"
_BARE_OR_CISCO = re.compile(rf"^{_H}{_H}\.?{_H}{_H}\.?{_H}{_H}$", re.MULTILINE)
_ZERO_MAC = re.compile(r"^00:00:00:00:00:00$", re.MULTILINE)
_ASSETS = _column(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
_BMC = _column(rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}|{_HOST})(?::{_PORT})?")

BulkCheck = Callable[[list[str]], list[Any] | None]


def _joined(texts: list[str]) -> str | None:
    joined = "\n".join(texts)
    return joined if joined.count("\n") == len(texts) - 1 else None  # a cell holds a newline


def _as_values(lines: list[str]) -> list[Any]:
    return [line or None for line in lines]


def serials(texts: list[str]) -> list[Any] | None:
    """Serials, if every cell is a plain valid serial (no placeholders, no padding)."""
    joined = _joined(texts)
    if joined is None or not _SERIALS.fullmatch(joined) or _REPEATED_CHAR.search(joined):
        return None
    if PLACEHOLDER_SERIALS.intersection(joined.casefold().split("\n")):
        return None
    return _as_values(texts)


def hostnames(texts: list[str]) -> list[Any] | None:
    """Host names, lower-cased, if every cell is a plain RFC 1123 name."""
    joined = _joined(texts)
    if joined is None or not _HOSTS.fullmatch(joined) or _LONG_LINE.search(joined):
        return None
    return _as_values(joined.lower().split("\n"))


def macs(texts: list[str]) -> list[Any] | None:
    """One canonical MAC per cell (as a one-item tuple), if every cell holds one plain NIC MAC."""
    joined = _joined(texts)
    if joined is None or not _MACS.fullmatch(joined):
        return None
    # Every notation becomes canonical in C: dashes → colons, Cisco and bare forms regrouped.
    # (_MACS has already refused a line that mixes separators, such as 5254.00ab12cd.)
    canonical = _BARE_OR_CISCO.sub(r"\1:\2:\3:\4:\5:\6", joined.lower().replace("-", ":"))
    if _GROUP_BIT.search(canonical) or _ZERO_MAC.search(canonical):
        return None
    values: list[Any] = list(zip(canonical.split("\n")))  # one-item tuples, built in C
    if "" in texts:
        values = [v if v[0] else None for v in values]
    return values


def asset_tags(texts: list[str]) -> list[Any] | None:
    """Asset tags, if every cell is plain."""
    joined = _joined(texts)
    if joined is None or not _ASSETS.fullmatch(joined):
        return None
    return _as_values(texts)


def bmc_addresses(texts: list[str]) -> list[Any] | None:
    """BMC addresses (IPv4 or host name, optional port), if every cell is plain."""
    joined = _joined(texts)
    if joined is None or not _BMC.fullmatch(joined) or _LONG_LINE.search(joined):
        return None
    return _as_values(texts)
