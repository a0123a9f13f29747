"""``bmprov init [DIR]``: a starter config and an empty state file."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app
from bmprov.cli.select import JsonOpt


@app.command("init")
def init_cmd(
    directory: Annotated[Path, typer.Argument(help="Where to write bmprov.toml.")] = Path(),
    detect: Annotated[
        bool, typer.Option("--detect", help="Fill the provisioning network from --interface.")
    ] = False,
    interface: Annotated[
        str | None,
        typer.Option(
            "--interface", "-i", help="Interface on the provisioning network.", show_default=False
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing bmprov.toml.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented starter bmprov.toml (unless present) and create its state file."""
    from bmprov.errors import InputError  # noqa: PLC0415
    from bmprov.setup_site import init_site, refuse_overwrite  # noqa: PLC0415

    network = None
    if detect:
        if not interface:
            raise InputError("--detect needs --interface IF")
        refuse_overwrite(directory, detect=True, force=force)
        from bmprov.netdetect import detect as detect_network  # noqa: PLC0415

        network = detect_network(interface)
    elif interface:
        raise InputError("--interface is only used with --detect")
    result = init_site(directory, network, force=force)
    config_path = result.config_path.resolve()
    if as_json:
        output.print_json(
            {
                "config": str(result.config_path),
                "state": str(result.state_path),
                "created_config": result.created_config,
                "env": {"BMPROV_CONFIG": str(config_path)},
            }
        )
        return
    verb = "wrote" if result.created_config else "kept existing"
    typer.echo(f"{verb} {result.config_path}")
    typer.echo(f"state file {result.state_path} ready")
    # The line to paste, so that every later command finds this site from anywhere.
    typer.echo(f"next: export BMPROV_CONFIG={shlex.quote(str(config_path))}")
