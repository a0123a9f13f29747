"""Node-selection options shared by every batch command (advance, power, boot...)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

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
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all", help="Every node of this host's site (of all, if it names none); filters apply."
    ),
]
AllSitesOpt = Annotated[
    bool,
    typer.Option(
        "--all-sites",
        help="Every node of every site (only where nothing on this host is touched).",
    ),
]
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


ANY = Selection()
"""The placeholder default of a ``select`` parameter :func:`selecting` fills in."""

_SELECT: tuple[tuple[str, Any, Any], ...] = (
    ("serial", SerialOpt, None),
    ("from_stage", FromOpt, None),
    ("rack", RackOpt, None),
    ("site", SiteOpt, None),
    ("all_nodes", AllOpt, False),
    ("all_sites", AllSitesOpt, False),
)


def selecting(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the node-selection options (--serial, --from, --rack, --site, --all,
    --all-sites) in place of its ``select: Selection`` parameter.

    The :class:`Selection` is as typed; keeping it to the host's site is the library's work
    (:func:`bmprov.sites.within`).
    """
    signature = inspect.signature(command, eval_str=True)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("select")
    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        for name, hint, default in _SELECT
    ]
    rest = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[at + 1 :]]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        serial, from_stage, rack, site, all_nodes, all_sites = (
            kwargs.pop(name) for name, _, _ in _SELECT
        )
        kwargs["select"] = Selection(
            serials=tuple(serial or ()),
            from_stage=from_stage,
            rack=rack,
            site=site,
            all=all_nodes or all_sites,
            all_sites=all_sites,
        )
        command(*args, **kwargs)

    merged = [*params[:at], *options, *rest]
    wrapper.__signature__ = signature.replace(parameters=merged)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in merged}
    return wrapper
