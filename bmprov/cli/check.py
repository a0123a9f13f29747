"""``bmprov check``: is this site's configuration usable, before a run relies on it?"""

from __future__ import annotations

import typer

from bmprov.cli import output
from bmprov.cli.app import app, json_printed, obj
from bmprov.cli.select import JsonOpt


@app.command("check")
def check_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the site beyond the config schema: the state (backend, its version, schema
    version), pools, DHCP settings and key, OS profiles and templates, and nodes whose OS has
    no profile. Connects to nothing but the state. Exit 2 if anything would stop a run.
    """
    from bmprov.errors import ConfigError  # noqa: PLC0415
    from bmprov.sitecheck import check_site  # noqa: PLC0415

    state = obj(ctx)
    config = state.config()
    results = check_site(config)
    failed = [r for r in results if not r.ok]
    if as_json:
        output.print_json(
            {
                "config": str(config.path),
                "ok": not failed,
                "checks": [
                    {"name": r.name, "ok": r.ok, "problem": r.problem, "detail": r.detail}
                    for r in results
                ],
            }
        )
        json_printed(ctx)
    else:
        out = output.console()
        for r in results:
            mark = "[green]ok[/]" if r.ok else "[red]problem[/]"
            text = r.problem or r.detail
            out.print(f"{mark} {r.name}" + (f": {output._cell(text)}" if text else ""))
    if failed:
        raise ConfigError(f"{config.path}: {len(failed)} check(s) found a problem")
