"""Node-selection options shared by every batch command (advance, power, boot...)."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.nodes import Selection

SerialOpt = Annotated[
    list[str] | None,
    typer.Option("--serial", "-s", help="Act on this serial (repeatable).", show_default=False),
]
FromOpt = Annotated[
    str | None,
    typer.Option(
        "--from", help="Only nodes currently in this stage.", show_default=False, metavar="STAGE"
    ),
]
RackOpt = Annotated[
    str | None, typer.Option("--rack", help="Only nodes in this rack.", show_default=False)
]
SiteOpt = Annotated[
    str | None, typer.Option("--site", help="Only nodes at this site.", show_default=False)
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every node (the other filters still apply).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
]

MaxNodesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-nodes",
        min=1,
        metavar="N",
        help=r"Confirm a power-cycle or reinstall of up to N nodes (above \[power] max_nodes).",
        show_default=False,
    ),
]


def selection(
    serial: list[str] | None,
    from_stage: str | None,
    rack: str | None,
    site: str | None,
    all_nodes: bool,
) -> Selection:
    """A :class:`Selection` from the shared options."""
    return Selection(
        serials=tuple(serial or ()), from_stage=from_stage, rack=rack, site=site, all=all_nodes
    )
