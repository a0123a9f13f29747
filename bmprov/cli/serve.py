"""``bmprov serve`` (installer callbacks, install files on request, status page) and
``bmprov timeouts`` (the stage-timeout check, once, for cron)."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, obj
from bmprov.cli.select import JsonOpt


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="ADDR:PORT (default [serve] listen, else 0.0.0.0:8081)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, max=64, help="Worker processes (default [serve] workers, else 1)."
        ),
    ] = None,
) -> None:
    """Run the HTTP service in the foreground until SIGTERM/SIGINT (docs/serve.md).

    Installer callbacks (POST /callback/SERIAL), install files and iPXE scripts rendered on
    request (GET /install/SERIAL, /boot/MAC.ipxe), the status page (/) and the JSON API
    (/api/nodes...). One log line per request on stderr.
    """
    from bmprov.serve.run import run  # noqa: PLC0415

    state = obj(ctx)
    config = state.config()
    state.db()  # the state file exists and is migrated before any worker starts
    run(config, listen, workers)


@app.command("timeouts")
def timeouts_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Fail nodes that waited too long for their next install stage ([serve.timeouts]).

    bmprov serve does this itself every minute; run this from cron where serve is not running.
    """
    from bmprov.serve.timeouts import check_timeouts  # noqa: PLC0415

    state = obj(ctx)
    failed = check_timeouts(state.config(), state.db())
    if as_json:
        output.print_json({"ok": True, "timed_out": [t.to_dict() for t in failed]})
        return
    out = output.console()
    for t in failed:
        out.print(f"{t.serial}: {t.stage} → failed (timed out waiting for stage {t.waiting_for})")
    out.print(f"{len(failed)} node(s) timed out")


__all__ = ["serve_cmd", "timeouts_cmd"]
