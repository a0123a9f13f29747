"""``bmprov reconcile``: the state file against the DHCP server, the boot tree and the BMCs."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import AllSitesOpt, JsonOpt, SiteOpt

if TYPE_CHECKING:
    from bmprov.reconcile import Report

SYSLOG_SOCKET = "/dev/log"


@app.command("reconcile")
def reconcile_cmd(
    ctx: typer.Context,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Repair what is safe: re-add missing reservations, rewrite missing or stale "
            "files, local boot for deployed nodes, delete install files of leaving nodes.",
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Remove orphans: reservations and files no node owns."),
    ] = False,
    site: SiteOpt = None,
    all_sites: AllSitesOpt = False,
    no_bmc: Annotated[
        bool, typer.Option("--no-bmc", help="Skip the BMCs (power state, boot device).")
    ] = False,
    syslog: Annotated[
        bool, typer.Option("--syslog", help="Also log each finding to syslog (for cron).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare the state file with the DHCP server, the boot files and the BMCs.

    Without --fix or --prune nothing is written anywhere. Unreachable BMCs, wrong power
    states and reservations bmprov did not make are only reported. Exit 0: clean (or every
    finding repaired); 1: drift remains; 2: bad input. Holds the same lock as advance, so it
    is safe to run from cron next to other bmprov commands.

    When the config names this host's `site`, only that site's nodes are compared (its DHCP
    server, boot tree and BMCs are this host's); --all-sites and --site OTHER are refused.
    """
    from bmprov.reconcile import reconcile  # noqa: PLC0415
    from bmprov.sites import host_scope  # noqa: PLC0415

    state = obj(ctx)
    config = state.config()
    why = "compares nodes with this host's DHCP server, boot tree and BMCs"
    scope = host_scope(config.site, site, all_sites, "reconcile", why)
    report = reconcile(config, state.db(), fix=fix, prune=prune, site=scope, bmc=not no_bmc)
    if syslog:
        _to_syslog(report)
    if as_json:
        output.print_json(report.to_dict())
    elif sys.stdout.isatty():
        _tables(report)
    else:
        _plain(report)
    raise typer.Exit(report.exit_code)


def _summary(report: Report) -> str:
    fixed = sum(f.fixed for f in report.findings)
    return (
        f"reconcile ({', '.join(report.planes)}): {len(report.findings)} finding(s), "
        f"{fixed} repaired, {len(report.open)} open"
    )


def _plain(report: Report) -> None:
    """Plain lines for cron and pipes: no colour, no table, one finding a line."""
    for finding in report.findings:
        sys.stdout.write(finding.line() + "\n")
    for note in report.notes:
        sys.stdout.write(f"note: {note}\n")
    sys.stdout.write(_summary(report) + "\n")


def _tables(report: Report) -> None:
    """One table per kind of drift."""
    from rich.table import Table  # noqa: PLC0415

    out = output.console()
    for (plane, kind), findings in report.by_kind().items():
        table = Table(title=f"{plane}: {kind} ({len(findings)})", title_justify="left")
        for column in ("node", "expected", "found", "fixed", "note"):
            table.add_column(column)
        for f in findings:
            table.add_row(
                *(output._cell(v) for v in (f.node, f.expected, f.actual)),
                "[green]yes[/]" if f.fixed else "[red]no[/]",
                output._cell(f.note),
            )
        out.print(table)
    for note in report.notes:
        out.print(f"[yellow]note:[/] {output._cell(note)}")
    out.print(_summary(report))


def _to_syslog(report: Report) -> None:
    """Each finding and the summary to the local syslog (ident ``bmprov``)."""
    if not Path(SYSLOG_SOCKET).exists():
        typer.echo(f"warning: --syslog: no {SYSLOG_SOCKET} on this machine", err=True)
        return
    handler = logging.handlers.SysLogHandler(address=SYSLOG_SOCKET)
    handler.ident = "bmprov: "
    logger = logging.getLogger("bmprov.reconcile.syslog")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for finding in report.findings:
            logger.warning("%s", finding.line())
        logger.warning("%s", _summary(report))
    finally:
        logger.removeHandler(handler)
        handler.close()
