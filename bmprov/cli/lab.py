"""``bmprov lab up|status|down``: a virtual rack of QEMU machines with virtual BMCs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bmprov.cli import output
from bmprov.cli.app import app
from bmprov.cli.select import JsonOpt

lab_app = typer.Typer(
    help="A virtual rack on this machine: QEMU machines, virtual BMCs, dhcpd, tftpd (root).",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")

DirOpt = Annotated[
    Path, typer.Option("--dir", help="The lab's directory (site, disks, logs, state).")
]
DEFAULT_DIR = Path("bmprov-lab")


@lab_app.command("up")
def up_cmd(
    nodes: Annotated[int, typer.Option("--nodes", help="How many machines.")] = 3,
    uefi: Annotated[int, typer.Option("--uefi", help="How many of them boot UEFI (OVMF).")] = 1,
    directory: DirOpt = DEFAULT_DIR,
    port_base: Annotated[
        int,
        typer.Option(
            "--port-base", help="OMAPI forward on 127.0.0.1:PORT, the BMCs on PORT+1..PORT+N."
        ),
    ] = 16230,
    as_json: JsonOpt = False,
) -> None:
    """Start the virtual rack and write its bmprov.toml and purchases sheet.

    A network namespace with a bridge and no uplink holds ISC dhcpd (OMAPI), in.tftpd on the
    site's boot directory and the guests' HTTP server; each QEMU machine (BIOS first, then
    --uefi UEFI ones) has its own MAC, SMBIOS serial, local disk and an IPMI BMC on
    127.0.0.1 that bmprov's ipmi driver controls. Everything is torn down if a step fails.
    """
    from bmprov.lab import rack  # noqa: PLC0415

    err = output.console(stderr=True)

    def progress(line: str) -> None:
        if not as_json:
            err.print(f"lab: {line}", markup=False)

    lab = rack.up(directory, nodes, uefi, port_base, progress)
    info = rack.status(Path(lab.dir)) or {}
    if as_json:
        output.print_json(info)
        return
    _machines(info)
    out = output.console()
    out.print(f"export BMPROV_CONFIG={info['config']}")
    out.print(f"then: bmprov import {info['sheet']}; `bmprov lab down --dir {lab.dir}` ends it")


@lab_app.command("status")
def status_cmd(directory: DirOpt = DEFAULT_DIR, as_json: JsonOpt = False) -> None:
    """The lab's processes and machines (power as their virtual BMCs last saw it)."""
    from bmprov.errors import InputError  # noqa: PLC0415
    from bmprov.lab import rack  # noqa: PLC0415

    info = rack.status(directory)
    if info is None:
        raise InputError(f"no lab in {directory.resolve()}")
    if as_json:
        output.print_json(info)
        return
    out = output.console()
    for proc in info["processes"]:
        out.print(
            f"{proc['name']:<12} pid {proc['pid']:<8} {'running' if proc['running'] else 'GONE'}"
        )
    _machines(info)


def _machines(info: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table("machine", "serial", "MAC", "firmware", "BMC", "power")
    for m in info.get("machines", []):
        table.add_row(m["name"], m["serial"], m["mac"], m["firmware"], m["bmc"], m["power"])
    output.console().print(table)


@lab_app.command("down")
def down_cmd(directory: DirOpt = DEFAULT_DIR, as_json: JsonOpt = False) -> None:
    """Stop every process of the lab and delete its namespace (site files and logs stay)."""
    from bmprov.lab import rack  # noqa: PLC0415

    report = rack.down(directory)
    if as_json:
        output.print_json(report.to_dict())
        return
    out = output.console()
    if not report.found:
        out.print(f"no lab in {report.directory}")
        return
    out.print(f"stopped: {', '.join(report.stopped) or 'nothing was running'}")
