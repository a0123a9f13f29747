"""``bmprov import FILE``: procurement sheet → state file, all or nothing."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import DryRunOpt, JsonOpt

log = logging.getLogger(__name__)


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The procurement sheet (.xlsx or .csv).")],
    sheet: Annotated[
        str | None,
        typer.Option("--sheet", help="Worksheet name (default: the first).", show_default=False),
    ] = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a procurement sheet: new serials enter [bold]purchasing[/], changed cells update.

    Every problem is printed as FILE:ROW:COLUMN: message and nothing is written (exit 2).
    Re-importing the same sheet changes nothing.
    """
    from bmprov.importing import import_sheet  # noqa: PLC0415

    state = obj(ctx)
    log.info("import %s: reading and checking every row", file)
    plan = import_sheet(state.db(), state.config(), file, sheet=sheet, dry_run=dry_run)
    log.info(
        "import %s: %d new, %d changed, %d unchanged%s",
        file,
        len(plan.new),
        len(plan.changed),
        len(plan.unchanged),
        " (dry run: nothing written)" if dry_run else "",
    )
    if as_json:
        output.print_json(plan.to_dict(dry_run))
        return
    out = output.console()
    for warning in plan.warnings:  # imported anyway; networking fails these nodes until fixed
        typer.echo(str(warning), err=True)  # FILE:ROW:COLUMN: message, like problems
    for column in plan.unknown_columns:
        output.console(stderr=True).print(
            f"[yellow]note[/]: {output._cell(file)}: column {output._cell(column)!r} is not "
            "known to bmprov; ignored"
        )
    for change in plan.changed:
        diffs = "; ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in change.changes.items())
        out.print(
            f"changed {output._cell(change.row.serial)} (row {change.row.row}): "
            f"{output._cell(diffs)}"
        )
    verb = "would import" if dry_run else "imported"
    out.print(
        f"{verb} {output._cell(file)}: {len(plan.new)} new, {len(plan.changed)} changed, "
        f"{len(plan.unchanged)} unchanged"
    )
