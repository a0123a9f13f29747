"""The CLI in-process: exit codes, FILE:ROW:COLUMN messages, --json contracts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SAMPLES, Site, write_csv

JSON_KEYS = {"serial", "mac", "macs", "model", "os", "hostname", "stage", "ip"}


def test_import_then_reimport(cli, site: Site) -> None:
    run = cli("import", SAMPLES / "purchases.xlsx")
    assert run.exit_code == 0
    assert "36 new, 0 changed, 0 unchanged" in run.stdout
    assert "'PO Number' is not known" in run.stderr
    again = cli("import", SAMPLES / "purchases.xlsx", "--json")
    data = json.loads(again.stdout)
    assert data["counts"] == {"new": 0, "changed": 0, "unchanged": 36}
    assert data["written"] is False


def test_broken_sheet_exit_2_no_traceback(cli, site: Site) -> None:
    run = cli("import", SAMPLES / "purchases_broken.csv")
    assert run.exit_code == 2
    assert "Traceback" not in run.stderr + run.stdout
    lines = run.stderr.splitlines()
    assert f"{SAMPLES / 'purchases_broken.csv'}:3:Serial Number: serial is blank" in lines
    assert lines[-1].startswith("Error: ") and "nothing was imported" in lines[-1]
    assert json.loads(cli("nodes", "list", "--json").stdout) == []


def test_dry_run_json_plan(cli, site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [["SN", "MAC"], ["SN1", "52:54:00:00:00:01"]])
    run = cli("import", sheet, "--dry-run", "--json")
    plan = json.loads(run.stdout)
    assert plan["dry_run"] is True and plan["new"] == ["SN1"] and plan["written"] is False
    assert "would import" in cli("import", sheet, "--dry-run").stdout


def test_nodes_list_show_history_json(cli, site: Site) -> None:
    cli("import", SAMPLES / "purchases.csv")
    nodes = json.loads(cli("nodes", "list", "--json").stdout)
    assert len(nodes) == 36
    assert all(set(n) >= JSON_KEYS for n in nodes)
    serial_only = [n for n in nodes if n["mac"] is None]
    assert len(serial_only) == 4 and all(n["macs"] == [] for n in serial_only)
    assert all(n["ip"] is None for n in nodes)
    show = json.loads(cli("nodes", "show", "CZ20000001", "--json").stdout)
    assert show["mac"] == "52:54:00:10:00:01" and show["stage"] == "purchasing"
    hist = json.loads(cli("history", "CZ20000001", "--json").stdout)
    assert hist[0]["to_stage"] == "purchasing" and hist[0]["command"] == "import"
    table = cli("nodes", "list").stdout
    assert "CZ20000001" in table and "36 node(s)" in table


def test_unknown_serial_is_a_clear_error(cli, site: Site) -> None:
    run = cli("nodes", "show", "NOPE")
    assert run.exit_code == 2  # bad input: the operator named a serial bmprov does not know
    assert "no node with serial 'NOPE'" in run.stderr


def test_advance_batch_json_and_exit_codes(cli, site: Site) -> None:
    cli("import", SAMPLES / "purchases.csv")
    run = cli("advance", "--stage", "mounting", "--rack", "R01", "--json")
    assert run.exit_code == 0
    data = json.loads(run.stdout)
    assert data["counts"] == {"ok": 17, "skipped": 1}  # CZ20000012 has no automation marker
    assert {r["stage"] for r in data["results"] if r["status"] == "ok"} == {"mounting"}
    bad = cli("advance", "--stage", "deployed", "--serial", "CZ20000001")
    assert bad.exit_code == 1
    assert "cannot go from mounting to deployed" in bad.stdout
    nosel = cli("advance", "--stage", "mounting")
    assert nosel.exit_code == 2 and "--all" in nosel.stderr
    unknown = cli("advance", "--stage", "racked", "--all")
    assert unknown.exit_code == 2 and "unknown stage 'racked'" in unknown.stderr


def test_advance_dry_run(cli, site: Site) -> None:
    cli("import", SAMPLES / "purchases.csv")
    run = cli("advance", "--stage", "mounting", "--all", "--dry-run", "--json")
    assert json.loads(run.stdout)["counts"] == {"planned": 34, "skipped": 2}  # 2 unmarked rows
    assert {n["stage"] for n in json.loads(cli("nodes", "list", "--json").stdout)} == {"purchasing"}


def test_list_with_unknown_stage_is_refused(cli, site: Site) -> None:
    run = cli("nodes", "list", "--stage", "racked")
    assert run.exit_code == 2 and "unknown stage 'racked'" in run.stderr


def test_import_of_a_directory(cli, site: Site, tmp_path: Path) -> None:
    run = cli("import", tmp_path)
    assert run.exit_code == 2 and "is a directory" in run.stderr
