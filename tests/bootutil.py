"""Helpers shared by the boot/install tests: config edits and nodes put in a stage."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_csv

HEADER = ["serial", "mac", "os", "hostname", "notes"]


def edit_config(site, old: str, new: str) -> None:
    """Replace one line of the site's starter config."""
    text = site.config_path.read_text()
    assert old in text, old
    site.config_path.write_text(text.replace(old, new, 1))


def import_nodes(site, cli, rows: list[list[str]], header: list[str] | None = None) -> Path:
    """Import rows (serial, mac, os, hostname[, ...]) marked for automation."""
    path = write_csv(site.dir / "nodes.csv", [header or HEADER, *rows])
    run = cli("import", path)
    assert run.exit_code == 0, run.stderr
    return path


def set_stage(site, stage: str, serials: list[str] | None = None, **extra: str | None) -> None:
    """Put nodes in a stage (and give each an IP 10.20.0.<50+id>) straight in the state file."""
    with site.db() as db, db.atomic() as conn:
        where = ""
        params: list[object] = [stage]
        if serials:
            where = f" WHERE serial IN ({','.join('?' * len(serials))})"
            params += serials
        conn.execute(
            "UPDATE nodes SET stage = ?, ip = '10.20.0.' || (50 + id),"
            f" stage_changed_at = strftime('%Y-%m-%dT%H:%M:%f', 'now'){where}",
            params,
        )
        for key, value in extra.items():
            conn.execute(f"UPDATE nodes SET {key} = ?{where}", [value, *(serials or [])])
