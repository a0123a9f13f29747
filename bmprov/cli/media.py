"""``bmprov media add``: an OS profile's kernel and initrd from its installer ISO."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt

media_app = typer.Typer(help="Installer boot media (kernel, initrd, tree).", no_args_is_help=True)
app.add_typer(media_app, name="media")


@media_app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The OS profile the media is for (e.g. rocky9).")],
    iso: Annotated[Path, typer.Option("--iso", help="The installer's ISO 9660 image.")],
    kernel: Annotated[
        str | None, typer.Option("--kernel", help="The kernel's path in the ISO (default: found).")
    ] = None,
    initrd: Annotated[
        str | None, typer.Option("--initrd", help="The initrd's path in the ISO (default: found).")
    ] = None,
    tree: Annotated[
        bool, typer.Option("--tree", help="Also copy the whole image to <http_root>/repo/<os>/.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read the kernel and initrd out of an ISO (never mounted) into the profile's paths.

    They go where the profile boots them from (``[boot.os.NAME] kernel``/``initrd`` under the
    TFTP root); only files whose bytes change are written.
    """
    from bmprov.media import add_media  # noqa: PLC0415

    state = obj(ctx)
    result = add_media(state.config(), name, iso, kernel=kernel, initrd=initrd, tree=tree)
    if as_json:
        output.print_json(result.to_dict())
        return
    out = output.console()
    out.print(f"{name}: kernel {result.kernel} (from {result.source[0]})")
    out.print(f"{name}: initrd {result.initrd} (from {result.source[1]})")
    if tree:
        out.print(f"{name}: {result.tree_files} file(s) of the tree")
    out.print(f"{len(result.written)} file(s) written")
