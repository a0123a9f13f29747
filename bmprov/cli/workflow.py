"""``bmprov reinstall SERIAL... --os OS`` and ``bmprov complete SERIAL...``."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import DryRunOpt, JsonOpt, MaxNodesOpt

SerialsArg = Annotated[list[str], typer.Argument(help="The nodes' serials.", show_default=False)]


def _print(batch: object, as_json: bool) -> None:
    from bmprov.result import BatchResult  # noqa: PLC0415

    assert isinstance(batch, BatchResult)  # noqa: S101
    if as_json:
        output.print_json(batch.to_dict())
    else:
        output.batch_table(batch)
    raise typer.Exit(int(batch.exit_code))


@app.command("reinstall")
def reinstall_cmd(
    ctx: typer.Context,
    serials: SerialsArg,
    os_name: Annotated[
        str,
        typer.Option(
            "--os", help="The OS to install (see `bmprov os list SERIAL`).", show_default=False
        ),
    ],
    root_password_env: Annotated[
        str | None,
        typer.Option(
            "--root-password-env",
            metavar="VAR",
            help="Environment variable holding the new root password (hashed; never stored).",
            show_default=False,
        ),
    ] = None,
    ssh_key: Annotated[
        str | None,
        typer.Option(
            "--ssh-key", help="Root's SSH public key (one OpenSSH line).", show_default=False
        ),
    ] = None,
    partition_scheme: Annotated[
        str | None,
        typer.Option(
            "--partition-scheme",
            help="LVM_HBA, LVM_RAID0, LVM_RAID1, LVM_RAID10 or LVM_RAID10S.",
            show_default=False,
        ),
    ] = None,
    post_install_url: Annotated[
        str | None,
        typer.Option(
            "--post-install-url",
            help="URL bmprov POSTs to when the node is deployed again.",
            show_default=False,
        ),
    ] = None,
    max_nodes: MaxNodesOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    r"""Install nodes again with --os: new boot entry and install file, PXE and a power cycle.

    The OS must apply to every node (tags, RAM, disk: [bold]bmprov os list SERIAL[/]); nodes
    may be deployed, failed or still in os_provisioning. The new OS and options are recorded,
    the nodes go through networking to os_provisioning, where they are set to PXE and
    power-cycled through their BMC (in waves), whatever \[power] auto_on_provisioning says.
    More than \[power] max_nodes nodes needs --max-nodes. Exit 1 if any node failed.
    """
    from bmprov.stages import ActionContext  # noqa: PLC0415
    from bmprov.workflow import password_from_env, reinstall  # noqa: PLC0415

    options = {
        key: value
        for key, value in (
            ("ssh_key", ssh_key),
            ("partition_scheme", partition_scheme),
            ("post_install_url", post_install_url),
        )
        if value is not None
    }
    if root_password_env:
        options["root_password"] = password_from_env(root_password_env)
    state = obj(ctx)
    action_ctx = ActionContext(config=state.config(), db=state.db(), command="reinstall")
    with output.progress_bar("reinstall", enabled=not as_json) as bar:
        batch = reinstall(
            action_ctx,
            serials,
            os_name,
            options,
            max_nodes=max_nodes,
            dry_run=dry_run,
            progress=bar.advance,
        )
    _print(batch, as_json)


@app.command("complete")
def complete_cmd(ctx: typer.Context, serials: SerialsArg, as_json: JsonOpt = False) -> None:
    """Record nodes' installs as done (installers that cannot call back) and complete them.

    Boot device back to disk, every PXE entry to local boot, the install ended, then the
    post-install task and URL. A node already deployed runs these steps again (a failed
    post-install task, retried). Exit 1 if any step failed for any node.
    """
    from bmprov.stages import ActionContext  # noqa: PLC0415
    from bmprov.workflow import complete  # noqa: PLC0415

    state = obj(ctx)
    action_ctx = ActionContext(config=state.config(), db=state.db(), command="complete")
    with output.progress_bar("complete", enabled=not as_json) as bar:
        batch = complete(action_ctx, serials, progress=bar.advance)
    _print(batch, as_json)


@app.command("events")
def events_cmd(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="The node's serial.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="The latest N events.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """A node's latest events: completion steps, post-install task output, reinstalls."""
    from bmprov.cli.tables import Column, print_table  # noqa: PLC0415
    from bmprov.nodes import get_node  # noqa: PLC0415

    db = obj(ctx).db()
    node = get_node(db, serial)
    events = db.events(node.id, limit)
    if as_json:
        output.print_json(
            [{"at": e.at, "kind": e.kind, "detail": e.detail, "source": e.source} for e in events]
        )
        return
    columns = [Column("at", key=True), Column("kind", key=True), Column("detail")]
    columns.append(Column("source", drop=1))
    cells = [
        [
            output._cell(e.at),
            output._cell(e.kind),
            output._cell(e.detail or ""),
            output._cell(e.source or ""),
        ]
        for e in events
    ]
    print_table(output.console(), columns, cells, f"events of {output._cell(node.serial)}")
