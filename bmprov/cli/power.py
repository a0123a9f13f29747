"""``bmprov power status|on|off|cycle|reset`` and ``bmprov boot pxe|disk|bios``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import ANY, DryRunOpt, JsonOpt, MaxNodesOpt, grouped, selecting
from bmprov.drivers.base import BootDevice, PowerAction
from bmprov.nodes import Selection

power_app = typer.Typer(
    help="Power control through each node's BMC (IPMI, Redfish, Wake-on-LAN).",
    no_args_is_help=True,
)
app.add_typer(power_app, name="power")

BootdevOpt = Annotated[
    BootDevice | None,
    typer.Option(
        "--bootdev", help="Set this boot device first.", case_sensitive=False, show_default=False
    ),
]
PersistentOpt = Annotated[
    bool, typer.Option("--persistent", help="Keep the boot device for every boot, not just next.")
]
UefiOpt = Annotated[
    bool | None,
    typer.Option(
        "--uefi/--legacy", help=r"Boot mode to request (default: \[bmc] uefi).", show_default=False
    ),
]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        help=r"BMCs at once (default: \[power] concurrency).",
        metavar="N",
        show_default=False,
    ),
]
StaggerOpt = Annotated[
    float | None,
    typer.Option(
        "--stagger",
        min=0.0,
        help=r"Seconds between two power-ons (default: \[power] stagger).",
        metavar="SECONDS",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Batch:
    """The options every power command takes besides its selection."""

    concurrency: int | None
    dry_run: bool
    as_json: bool


batched = grouped(
    "batch",
    (
        ("concurrency", ConcurrencyOpt, None),
        ("dry_run", DryRunOpt, False),
        ("as_json", JsonOpt, False),
    ),
    Batch,
)
"""Give a power command --concurrency, --dry-run and --json as its ``batch: Batch``."""
NO_BATCH = Batch(None, dry_run=False, as_json=False)
"""The placeholder default of a ``batch`` parameter :func:`batched` fills in."""


def _run(
    ctx: typer.Context,
    action: PowerAction | None,
    select: Selection,
    batch: Batch,
    *,
    status: bool = False,
    bootdev: BootDevice | None = None,
    persistent: bool = False,
    uefi: bool | None = None,
    stagger: float | None = None,
    max_nodes: int | None = None,
) -> None:
    """Select, run the batch, print the table or JSON, exit 1 if any node failed.

    A power-on action (on, cycle, reset) on more than ``[power] max_nodes`` nodes needs
    ``--max-nodes``; PXE boots go in waves.
    """
    from dataclasses import replace  # noqa: PLC0415

    from bmprov.power import (  # noqa: PLC0415
        POWER_ON_ACTIONS,
        PowerRequest,
        default_uefi,
        run_power_locked,
        select_power_nodes,
    )
    from bmprov.waves import check_blast_radius  # noqa: PLC0415

    state = obj(ctx)
    config = state.config()
    settings = config.settings.power
    if batch.concurrency is not None:
        settings = replace(settings, concurrency=batch.concurrency)
    if stagger is not None:
        settings = replace(settings, stagger=stagger)
    db = state.db()
    nodes = select_power_nodes(db, select, config.site, action, bootdev)
    if action in POWER_ON_ACTIONS:
        check_blast_radius(len(nodes), settings.max_nodes, max_nodes, f"power {action}")
    request = PowerRequest(
        action=action,
        bootdev=bootdev,
        persistent=persistent,
        uefi=default_uefi(config) if uefi is None else uefi,
        status=status,
    )
    with output.progress_bar(request.label, enabled=not batch.as_json) as bar:
        result = run_power_locked(
            config,
            db,
            nodes,
            request,
            settings=settings,
            dry_run=batch.dry_run,
            progress=bar.advance,
            on_total=bar.total,
        )
    if batch.as_json:
        output.print_json(result.to_dict())
    else:
        output.batch_table(result)
    raise typer.Exit(int(result.exit_code))


@power_app.command("status")
@selecting
@batched
def status_cmd(ctx: typer.Context, select: Selection = ANY, batch: Batch = NO_BATCH) -> None:
    """Read each selected node's power state from its BMC."""
    _run(ctx, None, select, batch, status=True)


def _power_on_like(action: PowerAction, doc: str) -> None:
    """Register ``power on`` / ``power cycle`` / ``power reset`` (same options)."""

    def command(
        ctx: typer.Context,
        bootdev: BootdevOpt = None,
        persistent: PersistentOpt = False,
        uefi: UefiOpt = None,
        select: Selection = ANY,
        batch: Batch = NO_BATCH,
        stagger: StaggerOpt = None,
        max_nodes: MaxNodesOpt = None,
    ) -> None:
        _run(
            ctx,
            action,
            select,
            batch,
            bootdev=bootdev,
            persistent=persistent,
            uefi=uefi,
            stagger=stagger,
            max_nodes=max_nodes,
        )

    command.__doc__ = doc
    power_app.command(action.value)(selecting(batched(command)))


_power_on_like(
    PowerAction.ON,
    "Power selected nodes on (optionally setting --bootdev first); staggered by --stagger.",
)
_power_on_like(
    PowerAction.CYCLE,
    "Power-cycle selected nodes (a node that is off is powered on), e.g. --bootdev pxe.",
)
_power_on_like(PowerAction.RESET, "Hard-reset selected nodes (no effect on a node that is off).")


@power_app.command("off")
@selecting
@batched
def off_cmd(
    ctx: typer.Context,
    soft: Annotated[
        bool,
        typer.Option("--soft", help="Ask the OS to shut down (ACPI) instead of cutting power."),
    ] = False,
    select: Selection = ANY,
    batch: Batch = NO_BATCH,
) -> None:
    """Power selected nodes off (hard), or request a shutdown with --soft."""
    _run(ctx, PowerAction.SOFT_OFF if soft else PowerAction.OFF, select, batch)


@app.command("boot")
@selecting
@batched
def boot_cmd(
    ctx: typer.Context,
    device: Annotated[
        BootDevice, typer.Argument(help="pxe, disk or bios (firmware setup).", case_sensitive=False)
    ],
    persistent: PersistentOpt = False,
    uefi: UefiOpt = None,
    select: Selection = ANY,
    batch: Batch = NO_BATCH,
) -> None:
    """Set the next boot device (every boot with --persistent) and read it back from the BMC."""
    _run(ctx, None, select, batch, bootdev=device, persistent=persistent, uefi=uefi)
