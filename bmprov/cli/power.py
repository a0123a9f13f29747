"""``bmprov power status|on|off|cycle|reset`` and ``bmprov boot pxe|disk|bios``."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import (
    AllOpt,
    DryRunOpt,
    FromOpt,
    JsonOpt,
    MaxNodesOpt,
    RackOpt,
    SerialOpt,
    SiteOpt,
)
from bmprov.cli.select import selection as make_selection
from bmprov.drivers.base import BootDevice, PowerAction

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


def _run(
    ctx: typer.Context,
    action: PowerAction | None,
    *,
    status: bool = False,
    bootdev: BootDevice | None = None,
    persistent: bool = False,
    uefi: bool | None = None,
    select: tuple[list[str] | None, str | None, str | None, str | None, bool],
    concurrency: int | None,
    stagger: float | None,
    dry_run: bool,
    as_json: bool,
    max_nodes: int | None = None,
) -> None:
    """Select, run the batch, print the table or JSON, exit 1 if any node failed.

    A power-on action (on, cycle, reset) on more than ``[power] max_nodes`` nodes needs
    ``--max-nodes``; PXE boots go in waves.
    """
    from dataclasses import replace  # noqa: PLC0415

    from bmprov.nodes import select_nodes  # noqa: PLC0415
    from bmprov.power import (  # noqa: PLC0415
        POWER_ON_ACTIONS,
        PowerRequest,
        default_uefi,
        run_power_locked,
    )
    from bmprov.waves import check_blast_radius  # noqa: PLC0415

    state = obj(ctx)
    config = state.config()
    settings = config.settings.power
    if concurrency is not None:
        settings = replace(settings, concurrency=concurrency)
    if stagger is not None:
        settings = replace(settings, stagger=stagger)
    db = state.db()
    nodes = select_nodes(db, make_selection(*select, state.config().site))
    if action in POWER_ON_ACTIONS:
        check_blast_radius(len(nodes), settings.max_nodes, max_nodes, f"power {action}")
    request = PowerRequest(
        action=action,
        bootdev=bootdev,
        persistent=persistent,
        uefi=default_uefi(config) if uefi is None else uefi,
        status=status,
    )
    with output.progress_bar(request.label, enabled=not as_json) as bar:
        batch = run_power_locked(
            config,
            db,
            nodes,
            request,
            settings=settings,
            dry_run=dry_run,
            progress=bar.advance,
            on_total=bar.total,
        )
    if as_json:
        output.print_json(batch.to_dict())
    else:
        output.batch_table(batch)
    raise typer.Exit(int(batch.exit_code))


@power_app.command("status")
def status_cmd(
    ctx: typer.Context,
    serial: SerialOpt = None,
    from_stage: FromOpt = None,
    rack: RackOpt = None,
    site: SiteOpt = None,
    all_nodes: AllOpt = False,
    concurrency: ConcurrencyOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Read each selected node's power state from its BMC."""
    _run(
        ctx,
        None,
        status=True,
        select=(serial, from_stage, rack, site, all_nodes),
        concurrency=concurrency,
        stagger=None,
        dry_run=dry_run,
        as_json=as_json,
    )


def _power_on_like(action: PowerAction, doc: str) -> None:
    """Register ``power on`` / ``power cycle`` / ``power reset`` (same options)."""

    def command(
        ctx: typer.Context,
        bootdev: BootdevOpt = None,
        persistent: PersistentOpt = False,
        uefi: UefiOpt = None,
        serial: SerialOpt = None,
        from_stage: FromOpt = None,
        rack: RackOpt = None,
        site: SiteOpt = None,
        all_nodes: AllOpt = False,
        concurrency: ConcurrencyOpt = None,
        stagger: StaggerOpt = None,
        dry_run: DryRunOpt = False,
        max_nodes: MaxNodesOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        _run(
            ctx,
            action,
            bootdev=bootdev,
            persistent=persistent,
            uefi=uefi,
            select=(serial, from_stage, rack, site, all_nodes),
            concurrency=concurrency,
            stagger=stagger,
            dry_run=dry_run,
            as_json=as_json,
            max_nodes=max_nodes,
        )

    command.__doc__ = doc
    power_app.command(action.value)(command)


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
def off_cmd(
    ctx: typer.Context,
    soft: Annotated[
        bool,
        typer.Option("--soft", help="Ask the OS to shut down (ACPI) instead of cutting power."),
    ] = False,
    serial: SerialOpt = None,
    from_stage: FromOpt = None,
    rack: RackOpt = None,
    site: SiteOpt = None,
    all_nodes: AllOpt = False,
    concurrency: ConcurrencyOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Power selected nodes off (hard), or request a shutdown with --soft."""
    _run(
        ctx,
        PowerAction.SOFT_OFF if soft else PowerAction.OFF,
        select=(serial, from_stage, rack, site, all_nodes),
        concurrency=concurrency,
        stagger=None,
        dry_run=dry_run,
        as_json=as_json,
    )


@app.command("boot")
def boot_cmd(
    ctx: typer.Context,
    device: Annotated[
        BootDevice, typer.Argument(help="pxe, disk or bios (firmware setup).", case_sensitive=False)
    ],
    persistent: PersistentOpt = False,
    uefi: UefiOpt = None,
    serial: SerialOpt = None,
    from_stage: FromOpt = None,
    rack: RackOpt = None,
    site: SiteOpt = None,
    all_nodes: AllOpt = False,
    concurrency: ConcurrencyOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Set the next boot device (every boot with --persistent) and read it back from the BMC."""
    _run(
        ctx,
        None,
        bootdev=device,
        persistent=persistent,
        uefi=uefi,
        select=(serial, from_stage, rack, site, all_nodes),
        concurrency=concurrency,
        stagger=None,
        dry_run=dry_run,
        as_json=as_json,
    )
