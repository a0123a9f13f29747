"""``bmprov reconcile``: the state file against every real system bmprov manages.

One module per plane, each a list of checks (:data:`PLANES`); a check yields
:class:`Finding`\\ s and, with ``fix``/``prune``, repairs what is safe as it goes. Without
``fix`` and ``prune`` nothing is written anywhere: not the state file, the DHCP server, the
boot tree or a BMC. With them every repair of a node is one history row (``reconcile --fix:
…``), written when its plane is done. A run holds the site lock (:mod:`bmprov.runlock`) like
``advance``, so it never interleaves with an advance or another reconcile (safe under cron).

Extension point: a new check appends itself to its plane's list. The ``state`` plane
(:mod:`.state`) finds nodes stuck in a stage longer than its timeout (``--fix``: failed, as
``bmprov timeouts`` does) and install tokens that expired while their node waits.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from bmprov.config import Config
from bmprov.errors import InputError
from bmprov.nodes import Selection
from bmprov.reconcile.bmc import check_bmcs
from bmprov.reconcile.bootfiles import check_boot_files
from bmprov.reconcile.dhcp import check_reservations, read_server
from bmprov.reconcile.findings import Check, Context, Finding, Report
from bmprov.reconcile.state import check_timeouts, check_tokens
from bmprov.runlock import site_lock
from bmprov.store import Store

log = logging.getLogger(__name__)

PLANES: dict[str, list[Check]] = {
    "state": [check_timeouts, check_tokens],
    "boot": [check_boot_files],
    "dhcp": [check_reservations],
    "bmc": [check_bmcs],
}
"""Plane → its checks, run in this order (the BMC plane last: it is the slowest)."""

READ_ONLY = frozenset({"bmc"})
"""Planes that only report (never repair): run after the site lock is released."""

PREFETCH: dict[str, Callable[[Context], Any]] = {"dhcp": read_server}
"""Plane → a read of its peer that needs no state-file access, started in a thread before the
first plane runs: 10,000 OMAPI lookups mostly wait for dhcpd (~3,000/s, dhcpd-bound), and the
boot plane's rendering fills that wait (measured in bench/reconcile_bench.py)."""

COMMAND = "reconcile"


def reconcile(
    config: Config,
    db: Store,
    *,
    fix: bool = False,
    prune: bool = False,
    site: str | None = None,
    bmc: bool = True,
) -> Report:
    """Check every plane (``bmc=False``: all but the BMCs); repair with ``fix``/``prune``."""
    report = Report(fix=fix, prune=prune)
    planes = [p for p in PLANES if bmc or p != "bmc"]
    with site_lock(db, config.busy_timeout_ms / 1000, site=site or config.site):
        all_nodes = db.load_nodes()
        nodes = db.load_nodes(Selection(site=site)) if site else all_nodes
        if site and not nodes:
            sites = sorted({n.site for n in all_nodes if n.site})
            raise InputError(f"--site {site}: no node there (sites: {', '.join(sites) or 'none'})")
        base = Context(config, db, nodes, all_nodes, fix=fix, prune=prune)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile") as pool:
            base.prefetch = {p: pool.submit(PREFETCH[p], base) for p in planes if p in PREFETCH}
            try:
                for plane in planes:
                    if plane not in READ_ONLY:
                        _run_plane(replace(base, events=[], notes=[]), plane, report)
            finally:
                _drop(base.prefetch)
    # Planes that never write run after the lock is released: a dead BMC costs its timeout,
    # and an advance need not wait for it.
    for plane in planes:
        if plane in READ_ONLY:
            _run_plane(replace(base, events=[], notes=[]), plane, report)
    return report


def _run_plane(ctx: Context, plane: str, report: Report) -> None:
    """Run one plane's checks; its repairs go to history as soon as the plane is done."""
    report.planes.append(plane)
    for check in PLANES[plane]:
        for finding in check(ctx):
            log.info("reconcile: %s", finding.line())
            report.findings.append(finding)
    ctx.db.record_events(ctx.events, COMMAND + (" --fix" if ctx.fix else ""))
    report.notes += ctx.notes


def _drop(prefetch: dict[str, Future[Any]]) -> None:
    """Close what an unused prefetch opened (a plane before it failed)."""
    for future in prefetch.values():
        with contextlib.suppress(Exception):
            backend = getattr(future.result(), "backend", None)
            if backend is not None:
                backend.close()


__all__ = ["PLANES", "Check", "Context", "Finding", "Report", "reconcile"]
