"""``bmprov state copy SRC DST``: move a site's state between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from bmprov.cli import output
from bmprov.cli.app import app, json_printed, obj
from bmprov.cli.select import JsonOpt

state_app = typer.Typer(help="The state itself (SQLite file or PostgreSQL).", no_args_is_help=True)
app.add_typer(state_app, name="state")


@state_app.command("copy")
def copy_cmd(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="SQLite file or postgresql://USER@HOST:PORT/DB.")],
    dst: Annotated[str, typer.Argument(help="An empty state: new SQLite file or database.")],
    as_json: JsonOpt = False,
) -> None:
    """Copy a whole state, history included, into an empty one (SQLite ↔ PostgreSQL).

    All or nothing: a failed copy leaves DST empty. A PostgreSQL password comes from the
    config's state_password_file/state_password_env when the URL is the config's `state`,
    else from libpq (PGPASSFILE, ~/.pgpass, PGPASSWORD); never from the command line.
    """
    from pathlib import Path  # noqa: PLC0415

    from bmprov.secret import Secret  # noqa: PLC0415
    from bmprov.store import StateDB, open_url  # noqa: PLC0415
    from bmprov.store.copying import copy_state  # noqa: PLC0415
    from bmprov.store.opening import state_password  # noqa: PLC0415

    config = obj(ctx).config(required=False)

    def password(url: str) -> Secret[str] | None:
        return state_password(config) if config.state_url == url else None

    timeout = config.busy_timeout_ms
    with open_url(src, password(src), timeout) as source:
        if not dst.lower().startswith("postgres") and not Path(dst).exists():
            StateDB(Path(dst)).close()  # a new SQLite file, migrated
        with open_url(dst, password(dst), timeout) as target:
            counts = copy_state(source, target)
            where = (source.location, target.location)
    if as_json:
        output.print_json({"ok": True, "from": where[0], "to": where[1], "rows": counts})
        json_printed(ctx)
        return
    parts = ", ".join(f"{n} {table}" for table, n in counts.items())
    typer.echo(f"copied {where[0]} → {where[1]}: {parts}")
