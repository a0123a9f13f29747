"""The CLI's frame: help, version, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_commands(cli) -> None:
    run = cli("--help")
    assert run.exit_code == 0
    for command in ("import", "advance", "nodes", "history", "init"):
        assert command in run.stdout


def test_no_config_is_a_clear_error(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BMPROV_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    run = cli("nodes", "list")
    assert run.exit_code == 2
    assert "bmprov init" in run.stderr
    assert "Traceback" not in run.stderr


def test_python_dash_m_works() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bmprov", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("bmprov ")
