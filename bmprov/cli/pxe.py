"""``bmprov pxe render|clear`` and ``bmprov ks validate``: boot entries and install files."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import AllOpt, AllSitesOpt, JsonOpt, SiteOpt

pxe_app = typer.Typer(help="PXE boot entries (pxelinux, GRUB, iPXE).", no_args_is_help=True)
ks_app = typer.Typer(help="OS install files (kickstart, preseed, autoinstall).")
app.add_typer(pxe_app, name="pxe")
app.add_typer(ks_app, name="ks")


@pxe_app.command("render")
def render_cmd(
    ctx: typer.Context,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="List per-MAC and install files bmprov no longer knows."),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --prune: remove the files it lists.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Re-render every node (still writes only changes).")
    ] = False,
    site: SiteOpt = None,
    all_nodes: AllOpt = False,
    all_sites: AllSitesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write every node's boot entries and install files; only files whose bytes change.

    Nodes in networking, os_provisioning or installing get install entries; every other node
    with a MAC gets local-boot entries. When the config names this host's `site`, only that
    site's nodes (--all means the same); another site's files are its own host's work, so
    --all-sites and --site OTHER are refused there. Exit 1 if any node failed.
    """
    from bmprov.boot.sync import render_all  # noqa: PLC0415
    from bmprov.sites import host_scope  # noqa: PLC0415

    del all_nodes  # every node of the scope is rendered anyway
    state = obj(ctx)
    config = state.config()
    scope = host_scope(config.site, site, all_sites, "pxe render", "writes this host's boot tree")
    report = render_all(config, state.db(), prune=prune, remove=yes, force=force, site=scope)
    if as_json:
        output.print_json(report.to_dict())
        raise typer.Exit(int(report.batch.exit_code))
    output.batch_table(report.batch)
    out = output.console()
    for path in report.stale:
        verb = "removed" if path in report.removed else "stale"
        out.print(f"{verb}: {output._cell(path)}")
    if report.stale and not report.removed:
        out.print("[yellow]re-run with --prune --yes to remove the stale files[/]")
    out.print(f"{len(report.written)} file(s) written; {report.unchanged} node(s) up to date")
    raise typer.Exit(int(report.batch.exit_code))


@pxe_app.command("clear")
def clear_cmd(
    ctx: typer.Context,
    serials: Annotated[list[str], typer.Argument(help="Serials of the nodes to boot locally.")],
    as_json: JsonOpt = False,
) -> None:
    """Switch every per-MAC entry of the nodes to local boot (until their stage changes)."""
    from bmprov.boot.sync import clear  # noqa: PLC0415

    state = obj(ctx)
    batch = clear(state.config(), state.db(), serials)
    if as_json:
        output.print_json(batch.to_dict())
    else:
        output.batch_table(batch)
    raise typer.Exit(int(batch.exit_code))


@ks_app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    serials: Annotated[
        list[str] | None,
        typer.Argument(help="Nodes to validate (default: one sample per OS/template/scheme)."),
    ] = None,
    all_nodes: Annotated[
        bool, typer.Option("--all", help="Validate every node's file (slow: ~30 ms each).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render install files and validate kickstarts with pykickstart. Exit 1 if any failed."""
    from bmprov.errors import InputError  # noqa: PLC0415
    from bmprov.install.kscheck import validate_nodes  # noqa: PLC0415

    if serials and all_nodes:
        raise InputError("give serials or --all, not both")
    state = obj(ctx)
    batch = validate_nodes(state.config(), state.db(), tuple(serials or ()), all_nodes=all_nodes)
    if as_json:
        output.print_json(batch.to_dict())
    else:
        output.batch_table(batch)
    raise typer.Exit(int(batch.exit_code))
