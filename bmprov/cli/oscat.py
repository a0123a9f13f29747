"""``bmprov os list SERIAL``: the OS catalogue as it applies to one node."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt

os_app = typer.Typer(help="The OS catalogue.", no_args_is_help=True)
app.add_typer(os_app, name="os")


@os_app.command("list")
def list_cmd(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The node's serial.")],
    as_json: JsonOpt = False,
) -> None:
    """Every OS profile: whether it applies to the node, and why not (tags, RAM, disk, GPU)."""
    from bmprov.catalogue import fits  # noqa: PLC0415
    from bmprov.cli.output import _cell  # noqa: PLC0415
    from bmprov.cli.tables import Column, print_table  # noqa: PLC0415
    from bmprov.facts import Facts  # noqa: PLC0415
    from bmprov.nodes import get_node  # noqa: PLC0415

    state = obj(ctx)
    node = get_node(state.db(), serial)
    results = fits(state.config(), node)
    facts = Facts.of(node.install_options)
    if as_json:
        output.print_json(
            {"serial": node.serial, "facts": facts.to_dict(), "os": [r.to_dict() for r in results]}
        )
        return
    rows = []
    for r in results:
        tags = ", ".join(r.profile.tags) if r.profile else ""
        why = "; ".join([*r.reasons, *r.notes])
        mark = "[green]yes[/]" if r.applies else "[red]no[/]"
        rows.append([_cell(r.os), mark, _cell(tags), _cell(why)])
    columns = [Column("os", key=True), Column("applies", key=True), Column("tags", key=True)]
    print_table(output.console(), [*columns, Column("why")], rows, f"OS for node {node.serial}")
    known = ", ".join(f"{k} {v}" for k, v in facts.to_dict().items() if v is not None)
    output.console().print(f"facts: {known or 'none known (sheet columns RAM, Disk Size, GPU)'}")
