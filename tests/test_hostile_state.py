"""Hostile state files and options: a clear ``Error:`` naming file or serial, exit 2, no writes.

Missing, empty, text, corrupt, newer, read-only and locked state files; unknown stages and
serials; ``--json`` on an empty state file; ``bmprov init`` where it cannot or should not write.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import Site
from tests.hostile import assert_bad_input, bmprov, unprivileged

READ_COMMANDS = [("nodes", "list"), ("dhcp", "list"), ("nodes", "show", "SN1"), ("history", "SN1")]


def state_path(site: Site) -> Path:
    return site.dir / "bmprov.sqlite"


def files_of(site: Site) -> dict[str, bytes]:
    """Every file of the site, to show a refused command changed nothing (but the run lock's
    ``<state>.lock``, empty and never written, which a command may create on first use)."""
    return {
        p.name: p.read_bytes()
        for p in site.dir.iterdir()
        if p.is_file() and not (p.name.endswith(".lock") and p.stat().st_size == 0)
    }


def load_one(cli, site: Site, tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text("serial,mac,hostname,notes\nSN1,52:54:00:00:00:01,h1,provisioning_auto\n")
    assert cli("import", sheet).exit_code == 0


def checkpoint(site: Site) -> None:
    """Fold the WAL into the main file, so byte surgery on it means what it says."""
    conn = sqlite3.connect(state_path(site))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{state_path(site)}{suffix}").unlink(missing_ok=True)


def test_missing_state_file(cli, site: Site) -> None:
    state_path(site).unlink()
    before = files_of(site)
    for command in READ_COMMANDS:
        assert_bad_input(cli(*command), str(state_path(site)), "bmprov init")
    assert files_of(site) == before


def test_zero_byte_state_file_is_not_silently_recreated(cli, site: Site) -> None:
    checkpoint(site)
    state_path(site).write_bytes(b"")
    for command in (*READ_COMMANDS, ("advance", "--stage", "mounting", "--all")):
        assert_bad_input(cli(*command), str(state_path(site)), "is empty (0 bytes)")
    assert state_path(site).stat().st_size == 0


@pytest.mark.parametrize("damage", ["text", "garbage over page 2", "truncated"])
def test_corrupt_state_file(cli, site: Site, tmp_path: Path, damage: str) -> None:
    load_one(cli, site, tmp_path)
    checkpoint(site)
    path = state_path(site)
    data = bytearray(path.read_bytes())
    if damage == "text":
        data = bytearray(b"serial,mac\nSN1,52:54:00:00:00:01\n" * 50)
    elif damage == "garbage over page 2":
        data[4096:8192] = bytes(range(256)) * 16
    else:
        data = data[: len(data) // 3 + 100]
    path.write_bytes(bytes(data))
    before = files_of(site)
    for command in READ_COMMANDS:
        assert_bad_input(cli(*command), str(path))
    assert files_of(site) == before


def test_state_file_from_a_newer_bmprov(cli, site: Site) -> None:
    conn = sqlite3.connect(state_path(site))
    conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('9999_future', 'x')")
    conn.commit()
    conn.close()
    for command in (("nodes", "list"), ("advance", "--stage", "mounting", "--all")):
        assert_bad_input(cli(*command), str(state_path(site)), "newer bmprov", "9999_future")


@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_state_file_reads_but_refuses_writes(
    site: Site, tmp_path: Path, what: str
) -> None:
    """Run for real without CAP_DAC_OVERRIDE (root ignores modes otherwise)."""
    sheet = tmp_path / "s.csv"
    sheet.write_text("serial,mac,hostname,notes\nSN1,52:54:00:00:00:01,h1,provisioning_auto\n")
    target = state_path(site) if what == "file" else site.dir
    target.chmod(0o555 if what == "directory" else 0o444)
    try:
        prefix = unprivileged()
        listed = bmprov("--config", site.config_path, "nodes", "list", "--json", prefix=prefix)
        if what == "file":  # the directory takes the -shm file: reading works
            assert listed.exit_code == 0 and json.loads(listed.stdout) == []
        else:  # SQLite's WAL mode needs to create -shm beside it, even to read
            assert_bad_input(listed, str(state_path(site)), "is read-only")
        done = bmprov("--config", site.config_path, "import", sheet, prefix=prefix)
        assert_bad_input(done, str(state_path(site)), "is read-only")
    finally:
        target.chmod(0o755 if what == "directory" else 0o644)


def test_locked_state_file_says_another_bmprov_is_running_quickly(
    cli, site: Site, tmp_path: Path
) -> None:
    load_one(cli, site, tmp_path)
    site.write_config("state_timeout = 0.2")
    text = site.config_path.read_text()  # a top-level key must come before the first table
    site.config_path.write_text("state_timeout = 0.2\n" + text.replace("state_timeout = 0.2", ""))
    holder = sqlite3.connect(state_path(site), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        start = time.monotonic()
        run = cli("advance", "--stage", "mounting", "--all")
        assert time.monotonic() - start < 3
        assert run.exit_code == 1  # nothing wrong with the input: retrying will work
        assert "another bmprov is running" in run.stderr and str(state_path(site)) in run.stderr
        assert cli("nodes", "list", "--json").exit_code == 0  # WAL: readers are not blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert '"stage": "purchasing"' in cli("nodes", "show", "SN1", "--json").stdout


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("advance", "--stage", "racked", "--all"), ("--stage", "unknown stage 'racked'")),
        (("advance", "--stage", "mounting", "--from", "racked"), ("--from", "'racked'")),
        (("advance", "--stage", "mounting", "--serial", "NOPE"), ("unknown serial(s): NOPE",)),
        (("nodes", "list", "--stage", "racked"), ("--stage", "unknown stage 'racked'")),
        (("nodes", "show", "NOPE"), ("no node with serial 'NOPE'",)),
        (("history", "NOPE"), ("no node with serial 'NOPE'",)),
        (("power", "status", "--from", "racked"), ("--from", "'racked'")),
        (("pxe", "clear", "NOPE"), ("NOPE",)),
    ],
)
def test_bad_options_name_what_is_wrong(
    cli, site: Site, tmp_path: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    load_one(cli, site, tmp_path)
    checkpoint(site)
    before = files_of(site)
    assert_bad_input(cli(*args), *needles)
    assert files_of(site) == before


def test_unreachable_stage_named_with_serial_fails_the_node(cli, site: Site, tmp_path) -> None:
    load_one(cli, site, tmp_path)
    run = cli("advance", "--stage", "deployed", "--serial", "SN1", "--json")
    assert run.exit_code == 1
    [result] = json.loads(run.stdout)["results"]
    assert (
        result["status"] == "failed"
        and "cannot go from purchasing to deployed" in (result["message"])
    )
    run = cli("advance", "--stage", "deployed", "--all", "--json")
    assert run.exit_code == 0 and json.loads(run.stdout)["results"][0]["status"] == "skipped"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("nodes", "list", "--json"), []),
        (("dhcp", "list", "--json"), {"backend": "file", "reservations": []}),
        (("advance", "--stage", "mounting", "--all", "--json"), "results"),
        (("power", "status", "--all", "--dry-run", "--json"), "results"),
        (("pxe", "clear", "--json"), "error"),
        (("ks", "validate", "--json"), "results"),
    ],
)
def test_json_on_an_empty_state_file(cli, site: Site, args: tuple[str, ...], expected) -> None:
    run = cli(*args)
    if expected == "error":  # pxe clear needs serials: a usage error, not JSON
        assert run.exit_code == 2 and "Traceback" not in run.stderr
        return
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    if isinstance(expected, str):
        assert data[expected] == [] or all(r["serial"].startswith("sample") for r in data[expected])
    else:
        assert data == expected


# --- init ------------------------------------------------------------------------------------


def test_init_keeps_an_existing_config_and_says_so(cli, site: Site) -> None:
    site.config_path.write_text(site.config_path.read_text() + "\n# mine\n")
    before = site.config_path.read_bytes()
    run = cli("init", site.dir)
    assert run.exit_code == 0 and "kept existing" in run.stdout
    assert site.config_path.read_bytes() == before
    assert_bad_input(cli("init", site.dir, "--detect", "-i", "lo"), "exists", "--force")
    assert site.config_path.read_bytes() == before


def test_init_into_a_file_or_under_one(cli, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_bad_input(cli("init", afile), str(afile), "not a directory")
    assert_bad_input(cli("init", afile / "sub"), str(afile / "sub"))
    assert afile.read_text() == "x"


def test_init_over_a_broken_config_says_which(cli, tmp_path: Path) -> None:
    (tmp_path / "bmprov.toml").write_bytes(b"state = \xff\n")
    assert_bad_input(cli("init", tmp_path), "bmprov.toml", "UTF-8")
    assert not (tmp_path / "bmprov.sqlite").exists()


def test_init_into_a_read_only_location(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        done = bmprov("init", ro / "site", prefix=unprivileged())
        assert_bad_input(done, str(ro / "site"), "Permission denied")
        done = bmprov("init", ro, prefix=unprivileged())
        assert_bad_input(done, str(ro), "Permission denied")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_real_process_state_errors_have_no_traceback(site: Site) -> None:
    shutil.copy(site.config_path, site.dir / "copy.toml")
    checkpoint(site)
    state_path(site).write_text("not a database\n" * 100)
    done = bmprov("--config", site.dir / "copy.toml", "history", "SN1")
    assert_bad_input(done, "not a bmprov state file")
    assert os.path.getsize(state_path(site)) == len("not a database\n") * 100


def test_dhcp_export_to_a_directory_or_under_a_file(cli, site: Site, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_bad_input(cli("dhcp", "export", "-f", "isc", "-o", tmp_path), "is a directory")
    assert_bad_input(cli("dhcp", "export", "-f", "isc", "-o", afile / "x"), str(afile / "x"))
    assert afile.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "site"]


def test_another_programs_sqlite_database_is_never_written(cli, site: Site) -> None:
    other = site.dir / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    text = site.config_path.read_text().replace('state = "bmprov.sqlite"', 'state = "other.db"')
    site.config_path.write_text(text)
    for command in (("nodes", "list"), ("init", site.dir)):
        assert_bad_input(cli(*command), str(other), "not a bmprov state file", "customers")
    assert other.read_bytes() == before


def test_state_path_too_long(cli, site: Site) -> None:
    text = site.config_path.read_text().replace('state = "bmprov.sqlite"', f'state = "{"a" * 300}"')
    site.config_path.write_text(text)
    assert_bad_input(cli("nodes", "list"), "state file", "File name too long")
