"""``bmprov nodes list|show`` and ``bmprov history``: read-only views of the state file."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt

nodes_app = typer.Typer(help="Inspect nodes.", no_args_is_help=True)
app.add_typer(nodes_app, name="nodes")


@nodes_app.command("list")
def list_cmd(
    ctx: typer.Context,
    stage: Annotated[
        str | None, typer.Option("--stage", help="Only nodes in this stage.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List nodes with their stage, MAC, IP and placement."""
    from bmprov.nodes import list_nodes  # noqa: PLC0415

    nodes = list_nodes(obj(ctx).db(), stage)
    if as_json:
        output.print_json([n.to_dict() for n in nodes])
        return
    output.nodes_table(nodes)
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n.stage] = counts.get(n.stage, 0) + 1
    summary = ", ".join(f"{c} {s}" for s, c in sorted(counts.items()))
    output.console().print(f"{len(nodes)} node(s){': ' + summary if summary else ''}")


@nodes_app.command("show")
def show_cmd(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The node's serial.")],
    as_json: JsonOpt = False,
) -> None:
    """Everything the state file knows about one node."""
    from bmprov.nodes import get_node  # noqa: PLC0415

    node = get_node(obj(ctx).db(), serial)
    data = node.to_dict()
    if as_json:
        output.print_json(data)
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(show_header=False, title=f"node {node.serial}")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        table.add_row(key, output._cell(shown) if shown not in (None, "", {}) else "[dim]—[/]")
    output.console().print(table)


@app.command("history")
def history_cmd(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The node's serial.")],
    as_json: JsonOpt = False,
) -> None:
    """Every stage change of one node: from, to, when, why, by which command."""
    from bmprov.nodes import history  # noqa: PLC0415

    rows = history(obj(ctx).db(), serial)
    if as_json:
        output.print_json(rows)
        return
    from bmprov.cli.tables import Column, print_table  # noqa: PLC0415

    columns = [Column(c, key=True) for c in ("at", "from", "to")]
    columns += [Column("reason"), Column("command", drop=1)]
    cells = [
        [
            output._cell(r["at"]),
            output._cell(r["from_stage"]) or "—",
            output._cell(r["to_stage"]),
            output._cell(r["reason"]),
            output._cell(r["command"]),
        ]
        for r in rows
    ]
    print_table(output.console(), columns, cells, f"history of {output._cell(serial)}")
