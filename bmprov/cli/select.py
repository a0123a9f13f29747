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


Fields = tuple[tuple[str, Any, Any], ...]
"""Options a command shares: (parameter name, ``Annotated`` option type, default) each."""

ANY = Selection()
"""The placeholder default of a ``select`` parameter :func:`selecting` fills in."""

SELECT_FIELDS: Fields = (
    ("serial", SerialOpt, None),
    ("from_stage", FromOpt, None),
    ("rack", RackOpt, None),
    ("site", SiteOpt, None),
    ("all_nodes", AllOpt, False),
    ("all_sites", AllSitesOpt, False),
)


def grouped(
    param: str, fields: Fields, build: Callable[..., Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator giving a command the options ``fields`` in place of its parameter
    ``param``, which receives ``build(**those options)``: options several commands share are
    declared once."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index(param)
        kind = inspect.Parameter.KEYWORD_ONLY
        options = [
            inspect.Parameter(name, kind, default=default, annotation=hint)
            for name, hint, default in fields
        ]
        rest = [p.replace(kind=kind) for p in params[at + 1 :]]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            kwargs[param] = build(**{name: kwargs.pop(name) for name, _, _ in fields})
            command(*args, **kwargs)

        merged = [*params[:at], *options, *rest]
        wrapper.__signature__ = signature.replace(parameters=merged)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in merged}
        return wrapper

    return decorate


def _selection(
    serial: list[str] | None,
    from_stage: str | None,
    rack: str | None,
    site: str | None,
    all_nodes: bool,
    all_sites: bool,
) -> Selection:
    """The :class:`Selection` as typed; keeping it to the host's site is the library's work
    (:func:`bmprov.sites.within`)."""
    return Selection(
        serials=tuple(serial or ()),
        from_stage=from_stage,
        rack=rack,
        site=site,
        all=all_nodes or all_sites,
        all_sites=all_sites,
    )


selecting = grouped("select", SELECT_FIELDS, _selection)
"""Give a command the node-selection options (--serial, --from, --rack, --site, --all,
--all-sites) in place of its ``select: Selection`` parameter."""
