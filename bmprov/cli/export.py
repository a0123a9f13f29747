"""``bmprov export FILE``: the inventory back as a spreadsheet (or NetBox device CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt, SiteOpt


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write: FILE.xlsx or FILE.csv.")],
    site: SiteOpt = None,
    stage: Annotated[
        str | None, typer.Option("--stage", help="Only nodes in this stage.", show_default=False)
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="bmprov (re-importable sheet) or netbox (NetBox device CSV)."
        ),
    ] = "bmprov",
    as_json: JsonOpt = False,
) -> None:
    """Write one row per node: the imported columns under the same headers, then stage, IP,
    the date each stage was entered and the last event. `bmprov import` reads it back as is
    (nothing changes); --format netbox maps stages onto NetBox device statuses."""
    from bmprov.exporting import export  # noqa: PLC0415

    state = obj(ctx)
    count = export(state.db(), file, site=site, stage=stage, fmt=fmt)
    if as_json:
        output.print_json({"ok": True, "file": str(file), "format": fmt, "rows": count})
    else:
        output.console().print(f"{count} node(s) written to {output._cell(file)}")
