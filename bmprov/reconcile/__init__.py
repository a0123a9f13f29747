"""``bmprov reconcile``: the state file against every real system bmprov manages.

One module per plane, each a list of checks (:data:`PLANES`); a check yields
:class:`Finding`\\ s and, with ``fix``/``prune``, repairs what is safe as it goes. Without
``fix`` and ``prune`` nothing is written anywhere: not the state file, the DHCP server, the
boot tree or a BMC. With them every repair of a node is one history row (``reconcile --fix:
…``), written when its plane is done. A run holds the site lock (:mod:`bmprov.runlock`) like
``advance``, so it never interleaves with an advance or another reconcile (safe under cron).

Extension point: a new check appends itself to its plane's list. The ``state`` plane (nodes
stuck in a stage longer than its timeout, expired install tokens) is empty until the serve
issue adds those checks; they get the same :class:`Context` (``ctx.fix``: mark failed).
"""

from __future__ import annotations

import logging

from bmprov.config import Config
from bmprov.errors import InputError
from bmprov.nodes import Selection
from bmprov.reconcile.bmc import check_bmcs
from bmprov.reconcile.bootfiles import check_boot_files
from bmprov.reconcile.dhcp import check_reservations
from bmprov.reconcile.findings import Check, Context, Finding, Report
from bmprov.runlock import site_lock
from bmprov.store import Store

log = logging.getLogger(__name__)

PLANES: dict[str, list[Check]] = {
    "state": [],  # stage timeouts, install tokens: added with `bmprov serve`
    "dhcp": [check_reservations],
    "boot": [check_boot_files],
    "bmc": [check_bmcs],
}
"""Plane → its checks, run in this order (the BMC plane last: it is the slowest)."""

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
    with site_lock(db.path, config.busy_timeout_ms / 1000):
        all_nodes = db.load_nodes()
        nodes = db.load_nodes(Selection(site=site)) if site else all_nodes
        if site and not nodes:
            sites = sorted({n.site for n in all_nodes if n.site})
            raise InputError(f"--site {site}: no node there (sites: {', '.join(sites) or 'none'})")
        for plane, checks in PLANES.items():
            if plane == "bmc" and not bmc:
                continue
            report.planes.append(plane)
            ctx = Context(config, db, nodes, all_nodes, fix=fix, prune=prune)
            for check in checks:
                for finding in check(ctx):
                    log.info("reconcile: %s", finding.line())
                    report.findings.append(finding)
            db.record_events(ctx.events, COMMAND + (" --fix" if fix else ""))
            report.notes += ctx.notes
    return report


__all__ = ["PLANES", "Check", "Context", "Finding", "Report", "reconcile"]
