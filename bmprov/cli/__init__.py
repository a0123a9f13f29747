"""The thin Typer layer: parse options, call the library, print results.

Each command family is one module that registers itself on :data:`app` when imported.
"""

from __future__ import annotations

from bmprov.cli import (  # noqa: F401  (registers commands)
    advance,
    check,
    dhcp,
    export,
    importing,
    init,
    lab,
    media,
    nodes,
    oscat,
    power,
    pxe,
    reconcile,
    serve,
    state,
    workflow,
)
from bmprov.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
