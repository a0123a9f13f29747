"""``bmprov dhcp list|export``: what the DHCP server holds, and reservations as config files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt

dhcp_app = typer.Typer(help="DHCP reservations.", no_args_is_help=True)
app.add_typer(dhcp_app, name="dhcp")

STATUS_STYLE = {"ok": "green", "missing": "bold red", "differs": "bold red", "unexpected": "yellow"}


@dhcp_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """What the DHCP server really holds next to what bmprov expects (exit 1 on a mismatch)."""
    from bmprov.dhcp.export import server_view  # noqa: PLC0415

    state = obj(ctx)
    settings = state.config().settings.dhcp
    rows = server_view(state.db(), settings)
    bad = [r for r in rows if r.status in ("missing", "differs")]
    if as_json:
        output.print_json(
            {"backend": settings.backend, "reservations": [r.to_dict() for r in rows]}
        )
        raise typer.Exit(1 if bad else 0)
    from bmprov.cli.tables import Column, print_table  # noqa: PLC0415

    cells = [
        [
            output._cell(r.serial) or "[dim]—[/]",
            r.mac,
            r.expected_ip or "[dim]—[/]",
            r.server_ip or "[dim]—[/]",
            f"[{STATUS_STYLE[r.status]}]{r.status}[/]",
        ]
        for r in rows
    ]
    names = ("serial", "mac", "expected ip", "server ip", "status")
    out = output.console()
    print_table(
        out, [Column(n, key=True) for n in names], cells, f"DHCP reservations ({settings.backend})"
    )
    out.print(f"{len(rows)} reservation(s), {len(bad)} not as expected")
    raise typer.Exit(1 if bad else 0)


@dhcp_app.command("export")
def export_cmd(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="isc, dnsmasq or kea.", show_default=False)
    ],
    dest: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (default: stdout).", show_default=False),
    ] = None,
) -> None:
    """Write the reservations bmprov expects as dhcpd host blocks, dnsmasq lines or Kea JSON."""
    from bmprov.dhcp.export import expected, export_file, render  # noqa: PLC0415

    state = obj(ctx)
    if dest is None:
        typer.echo(render(expected(state.db(), state.config().settings.dhcp), fmt), nl=False)
        return
    count = export_file(state.db(), state.config(), fmt, dest)
    output.console(stderr=True).print(f"wrote {count} reservation(s) to {output._cell(dest)}")
