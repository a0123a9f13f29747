"""``bmprov advance --stage STAGE``: move nodes on and run the stage's entry actions."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import ANY, DryRunOpt, JsonOpt, MaxNodesOpt, selecting
from bmprov.nodes import Selection


@app.command("advance")
@selecting
def advance_cmd(
    ctx: typer.Context,
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="Target stage: purchasing, mounting, networking, os_provisioning, installing, "
            "deployed, decommissioning, wiping, retired (or failed, discovery).",
            show_default=False,
        ),
    ],
    select: Selection = ANY,
    dry_run: DryRunOpt = False,
    max_nodes: MaxNodesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    r"""Move selected nodes to STAGE, running its entry action for each (batch, per-node result).

    Nodes that cannot make the move are skipped (failed, when named with --serial); a node
    whose action fails goes to [bold]failed[/] and the batch goes on. Exit 1 if any node failed.

    The lifecycle: purchasing → mounting → networking → os_provisioning → installing →
    deployed → decommissioning → wiping → retired. Entering networking allocates the IP,
    reserves it in DHCP and writes boot and install files, then moves on to os_provisioning;
    decommissioning undoes that and moves on to wiping. Broad selections (--all, --rack...)
    only move nodes forward; going back needs --serial. A deployed node is locked: only
    [bold]bmprov reinstall[/] sends it back to PXE. Power-cycling more than \[power] max_nodes
    nodes (os_provisioning with automatic power) needs --max-nodes.

    When the config names this host's `site`, selections stay on that site (--all: all of
    its nodes); --all-sites widens only moves that change nothing on this host (mounting,
    installing, wiping...). Another site's nodes never enter networking, os_provisioning,
    deployed or decommissioning here: that would write this host's DHCP and boot files.
    """
    from bmprov.lifecycle import advance  # noqa: PLC0415
    from bmprov.stages import ActionContext  # noqa: PLC0415

    state = obj(ctx)
    action_ctx = ActionContext(config=state.config(), db=state.db(), command="advance")
    with output.progress_bar(f"advance → {stage}", enabled=not as_json) as bar:
        batch = advance(
            action_ctx,
            select,
            stage,
            dry_run=dry_run,
            max_nodes=max_nodes,
            progress=bar.advance,
            on_total=bar.total,
        )
    if as_json:
        output.print_json(batch.to_dict())
    else:
        output.batch_table(batch)
    raise typer.Exit(int(batch.exit_code))
