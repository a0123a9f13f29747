"""Tables at 80 and 120 columns: serial and stage are never cut, notes replace repeated messages,
values print as written (no markup, no emoji), and summaries agree with the rows above them."""

from __future__ import annotations

import json

import pytest

from bmprov.cli import output
from bmprov.result import BatchResult, NodeResult
from tests.bootutil import import_nodes, set_stage

LONG_SERIAL = "CZJ2000000000123456"  # 19 characters, longer than any MAC
ROWS = [
    [LONG_SERIAL, "52:54:00:00:00:01", "rocky9", "web1", "provisioning_auto"],
    ["SN2", "52:54:00:00:00:02", "debian12", "a-rather-long-host-name-02", "provisioning_auto"],
    ["SN3", "", "rocky9", "web3", "provisioning_auto"],
]


def _row_of(text: str, serial: str) -> str:
    return next(line for line in text.splitlines() if f"│ {serial} " in line)


@pytest.mark.parametrize("columns", [80, 120])
def test_nodes_list_keeps_serial_and_stage_whole(site, cli, monkeypatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    import_nodes(site, cli, ROWS)
    set_stage(site, "os_provisioning", [LONG_SERIAL])
    set_stage(site, "failed", ["SN2"], failed_stage="os_provisioning")
    run = cli("nodes", "list")
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), run.stdout
    assert "…" not in run.stdout
    assert "os_provisioning" in _row_of(run.stdout, LONG_SERIAL)
    assert "failed (os_provisioning)" in _row_of(run.stdout, "SN2")
    assert "52:54:00:00:00:01" in _row_of(run.stdout, LONG_SERIAL)
    if columns == 80:
        assert "not shown at 80 columns: model, os, rack, unit" in " ".join(run.stdout.split())


@pytest.mark.parametrize("columns", [80, 120])
def test_batch_table_summarises_a_repeated_message_once(
    site, cli, monkeypatch, columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    import_nodes(site, cli, [*ROWS, ["SN4", "", "rocky9", "web4", "provisioning_auto"]])
    cli("advance", "--stage", "mounting", "--all")
    run = cli("advance", "--stage", "networking", "--all")
    assert run.exit_code == 1
    text = " ".join(run.stdout.split())
    assert text.count("no MAC address known yet") == 1  # once, as a note for SN3 and SN4
    assert "note 1 (2 nodes): no MAC address known yet (serial-only sheet row)" in text
    assert "see note 1" in _row_of(run.stdout, "SN3")
    assert "ok" in _row_of(run.stdout, LONG_SERIAL)  # the unique message stays in its row
    assert all(len(line) <= columns for line in run.stdout.splitlines())


def test_long_message_wraps_and_keeps_every_word(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    message = "the BMC at 10.0.0.1 refused the session: " + " ".join(["word"] * 30) + " END"
    batch = BatchResult("power:on", [NodeResult("SN-WITH-A-LONG-SERIAL-1", "failed", "x", message)])
    output.batch_table(batch)
    out = capsys.readouterr().out
    assert "SN-WITH-A-LONG-SERIAL-1" in out
    assert " ".join(out.replace("│", " ").split()).count("word") == 30
    assert "END" in out


def test_values_print_as_written_no_markup_no_emoji(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    batch = BatchResult("power:on", [NodeResult("[red]SN1[/]", "ok", ":on:", "[bold]x[/] :fire:")])
    output.batch_table(batch)
    out = capsys.readouterr().out
    assert "[red]SN1[/]" in out
    assert "[bold]x[/] :fire:" in out
    assert "power:on: 1 ok" in out
    assert "🔛" not in out
    assert "🔥" not in out


def test_first_pxe_render_counts_unchanged_nodes_as_up_to_date(site, cli) -> None:
    import_nodes(site, cli, ROWS[:2])
    cli("advance", "--stage", "mounting", "--all")
    assert cli("advance", "--stage", "networking", "--all").exit_code == 0  # files written
    data = json.loads(cli("pxe", "render", "--json").stdout)
    unchanged_rows = sum(r["status"] == "unchanged" for r in data["results"])
    assert unchanged_rows == 2
    assert data["files_written"] == 0
    assert data["unchanged_nodes"] == 2
    run = cli("pxe", "render", "--force")
    assert "0 file(s) written; 2 node(s) up to date" in run.stdout


def test_all_batch_never_tells_a_failed_node_to_go_back(site, cli) -> None:
    import_nodes(site, cli, ROWS[:1])
    set_stage(site, "failed", failed_stage="networking")
    run = cli("advance", "--stage", "wiping", "--all", "--json")
    result = json.loads(run.stdout)["results"][0]
    assert result["status"] == "skipped"
    assert "go back" not in result["message"]
    assert "failed in networking" in result["message"]
