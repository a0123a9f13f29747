"""What a first-time operator meets first: init's next step, help texts, typo suggestions, and
provisioning networks that can never work (loopback, link-local, /8)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bmprov import states as st
from bmprov.validate import provisioning_network_problem
from tests.bootutil import import_nodes

ROWS = [["CZ20000001", "52:54:00:00:00:01", "rocky9", "web1", "provisioning_auto"]]


def test_init_prints_the_bmprov_config_line(cli, tmp_path: Path) -> None:
    run = cli("init", tmp_path / "my site")
    assert run.exit_code == 0
    expected = f"export BMPROV_CONFIG='{tmp_path / 'my site' / 'bmprov.toml'}'"
    assert expected in run.stdout
    data = json.loads(cli("init", tmp_path / "my site", "--json").stdout)
    assert data["env"] == {"BMPROV_CONFIG": str(tmp_path / "my site" / "bmprov.toml")}


def _help(cli, *args: str) -> str:
    run = cli(*args, "--help")
    assert run.exit_code == 0
    return run.stdout


@pytest.mark.parametrize(
    "command",
    [(), ("init",), ("import",), ("advance",), ("nodes", "list"), ("power", "on"), ("boot", "pxe")],
)
def test_help_shows_no_python_types_or_eaten_markup(cli, monkeypatch, command) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = _help(cli, *command)
    assert not re.search(r"<(bool|int|str|path|list\[str\])>|\{[a-z]+\}", text), text
    assert "(default:  " not in text  # "[power] concurrency" lost its "[power]" to markup
    assert "[default: 0]" not in text


def test_help_names_config_keys_and_verbosity(cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert "(default: [power] concurrency)" in _help(cli, "power", "on")
    assert "(default: [bmc] uefi)" in _help(cli, "power", "on")
    assert "Usage: bmprov import [OPTIONS] FILE" in _help(cli, "import")
    assert "-vv" in _help(cli)


def test_advance_help_lists_every_stage(cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = _help(cli, "advance")
    for stage in st.ALL_STAGES:
        assert stage in text, stage


def test_verbose_is_a_count(cli, site) -> None:
    assert cli("-vv", "nodes", "list").exit_code == 0
    assert cli("-v", "-v", "nodes", "list").exit_code == 0


def test_unknown_serial_and_stage_suggest_the_near_one(cli, site) -> None:
    import_nodes(site, cli, ROWS)
    run = cli("nodes", "show", "cz20000001")
    assert run.exit_code == 2
    assert "did you mean 'CZ20000001'?" in run.stderr
    run = cli("advance", "--stage", "mounting", "-s", "CZ2000001")
    assert run.exit_code == 2
    assert "unknown serial(s): CZ2000001 (did you mean 'CZ20000001'?)" in run.stderr
    run = cli("history", "ZZZ")
    assert "did you mean" not in run.stderr
    run = cli("nodes", "list", "--stage", "os-provisioning")
    assert "did you mean 'os_provisioning'?" in run.stderr


@pytest.mark.parametrize(
    ("subnet", "reason"),
    [
        ("127.0.0.0/8", "loopback"),
        ("127.0.0.0/24", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("10.0.0.0/8", "far too wide"),
        ("0.0.0.0/0", "far too wide"),
        ("0.0.0.0/8", "not a unicast"),
        ("224.0.0.0/24", "not a unicast"),
    ],
)
def test_networks_that_cannot_provision(subnet: str, reason: str) -> None:
    problem = provisioning_network_problem(subnet)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("subnet", ["10.20.0.0/24", "10.0.0.0/9", "192.168.1.0/24", "10.1.2.0/30"])
def test_networks_that_can_provision(subnet: str) -> None:
    assert provisioning_network_problem(subnet) is None


def test_init_detect_refuses_loopback(cli, tmp_path: Path) -> None:
    run = cli("init", tmp_path / "s", "--detect", "--interface", "lo")
    assert run.exit_code == 2
    assert "127.0.0.0/8 is loopback" in run.stderr
    assert not (tmp_path / "s" / "bmprov.toml").exists()


@pytest.mark.parametrize(
    ("subnet", "reason"), [("127.0.0.0/8", "is loopback"), ("10.0.0.0/8", "is /8, 16,777,216")]
)
def test_check_refuses_such_a_network(cli, site, subnet: str, reason: str) -> None:
    text = site.config_path.read_text()
    site.config_path.write_text(
        re.sub(r'(?m)^subnet = ".*"', f'subnet = "{subnet}"', text, count=1)
    )
    run = cli("check", "--json")
    assert run.exit_code == 2
    problems = [c["problem"] for c in json.loads(run.stdout)["checks"] if c["problem"]]
    assert any(f"network.subnet: {subnet} {reason}" in p for p in problems), problems
