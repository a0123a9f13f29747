"""Node-selection options shared by every batch command (advance, power, boot...)."""

from __future__ import annotations

from dataclasses import replace
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
    home_site: str | None = None,
) -> Selection:
    """A :class:`Selection` from the shared options, kept to ``home_site`` (the config's
    ``site``) unless it names serials, a ``--site`` or ``--all``: on a host that shares its
    state with other sites, ``--from mounting`` means this site's nodes in mounting."""
    chosen = Selection(
        serials=tuple(serial or ()), from_stage=from_stage, rack=rack, site=site, all=all_nodes
    )
    if home_site and not chosen.is_empty() and not (site or all_nodes or serial):
        return replace(chosen, site=home_site)
    return chosen
