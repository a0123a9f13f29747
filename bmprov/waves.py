"""Waves and the blast-radius guard: how many nodes one command may boot or reinstall at once.

A stock TFTP server (tftpd-hpa) starts losing machines at about 40 simultaneous PXE boots:
retransmits pile up and loaders give up. A power batch that PXE-boots nodes therefore goes in
waves of ``[power] wave_size`` nodes, ``wave_interval`` seconds apart (counted from the end of
one wave's BMC calls), so each wave has fetched its loader, kernel and initrd before the next
one asks. :func:`in_waves` is that pacing, with an injectable clock so tests never sleep.

:func:`check_blast_radius` is the other guard: a command that would power-cycle or reinstall
more than ``[power] max_nodes`` nodes (default 50) is refused — exit 2, nothing done — unless
the operator confirms the count with ``--max-nodes N``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from bmprov.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WAVE_SIZE = 30
"""PXE boots per wave: below the ~40 at which a stock TFTP server starts losing machines."""
DEFAULT_WAVE_INTERVAL = 60.0
"""Seconds between waves: time for a wave's loaders to fetch kernel and initrd (~300 MB over
TFTP/HTTP) before the next wave asks."""


class Clock(Protocol):
    """What waves need of time: sleeping (tests pass a fake that only records)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class RealClock:
    """:func:`time.sleep`."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        time.sleep(seconds)


def in_waves(
    items: Sequence[T],
    size: int,
    interval: float,
    clock: Clock | None = None,
    label: str = "batch",
) -> Iterator[list[T]]:
    """``items`` in consecutive waves of ``size`` (0: one wave), sleeping ``interval`` on
    ``clock`` between two waves (not before the first, not after the last).

    The caller finishes a wave before asking for the next, so the interval runs from the end
    of one wave's work.
    """
    if size <= 0 or len(items) <= size:
        if items:
            yield list(items)
        return
    clock = clock or RealClock()
    count = -(-len(items) // size)
    for index in range(count):
        if index:
            log.info("%s: wave %d of %d in %g s", label, index + 1, count, interval)
            clock.sleep(interval)
        wave = list(items[index * size : (index + 1) * size])
        log.info("%s: wave %d of %d: %d node(s)", label, index + 1, count, len(wave))
        yield wave


def check_blast_radius(count: int, limit: int, allowed: int | None, what: str) -> None:
    """Refuse to ``what`` (``power-cycle``, ``reinstall``) ``count`` nodes above ``limit``
    unless ``allowed`` (``--max-nodes``) covers them.

    :raises InputError: exit 2, naming the count, the limit and the option to pass.
    """
    if allowed is not None:
        if count > allowed:
            raise InputError(
                f"this would {what} {count} node(s), more than --max-nodes {allowed}; "
                "nothing was done"
            )
        return
    if count > limit:
        raise InputError(
            f"this would {what} {count} node(s), more than [power] max_nodes = {limit}; "
            f"nothing was done (pass --max-nodes {count} to confirm, or select fewer nodes)"
        )
