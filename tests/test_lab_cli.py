"""``bmprov lab`` refusals and clean-up on failure (the full lab: tests/test_lab_qemu.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bmprov.lab import rack
from tests import peers
from tests.lab import processes_mentioning
from tests.sims.fixtures import PORT_BASE

LAB_PORT = PORT_BASE + 750


def test_not_root_is_bad_input(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    run = cli("lab", "up", "--dir", tmp_path / "lab")
    assert run.exit_code == 2
    assert "bmprov lab needs root" in run.stderr
    assert not (tmp_path / "lab").exists()


def test_missing_packages_named(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(rack, "NEEDED", (("/nonexistent/qemu", "qemu-system-x86"),))
    run = cli("lab", "up", "--dir", tmp_path / "lab")
    assert run.exit_code == 2
    assert "qemu-system-x86" in run.stderr and "scripts/bootstrap.sh" in run.stderr


def test_bad_counts(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(rack, "NEEDED", ())
    run = cli("lab", "up", "--nodes", "2", "--uefi", "3", "--dir", tmp_path / "lab")
    assert run.exit_code == 2 and "--uefi 0-2" in run.stderr


def test_status_and_down_without_a_lab(cli, tmp_path: Path) -> None:
    run = cli("lab", "status", "--dir", tmp_path)
    assert run.exit_code == 2 and "no lab in" in run.stderr
    run = cli("lab", "down", "--dir", tmp_path)
    assert run.exit_code == 0 and "no lab in" in run.stdout


@pytest.mark.peer
@pytest.mark.skipif(
    not peers.can_run_peers() or rack.missing_packages() != [], reason="needs root, lab packages"
)
def test_failed_up_stops_everything(cli, tmp_path: Path) -> None:
    """The agent cannot bind its OMAPI port: up fails, and nothing it started is left."""
    lab = tmp_path / "lab"
    with socket.create_server(("127.0.0.1", LAB_PORT)):
        run = cli("lab", "up", "--nodes", "1", "--uefi", "0", "--dir", lab,
                  "--port-base", LAB_PORT)  # fmt: skip
    assert run.exit_code == 1, run.stdout + run.stderr
    assert "lab up failed: the lab agent did not start" in run.stderr
    assert "Address already in use" in run.stderr
    assert "everything it started is stopped again" in run.stderr
    assert not (lab / "lab.json").exists()
    assert not [n for n in os.listdir("/run/netns") if n == f"bmpL-{os.getpid()}"]
    assert processes_mentioning(str(lab)) == []
