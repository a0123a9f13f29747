"""scripts/lab_demo.py (demo.sh's virtual rack): the fallback decision and the progress words.

The demo itself runs QEMU machines for minutes; tests/test_lab_qemu.py covers the same path.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab_demo", ROOT / "scripts/lab_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_not_root_falls_back_saying_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lab_demo = demo()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr("sys.argv", ["lab_demo.py"])
    assert lab_demo.main() == lab_demo.UNAVAILABLE
    out = capsys.readouterr().out
    assert out.startswith("virtual rack unavailable on this machine: bmprov lab needs root")


def test_progress_words(tmp_path: Path) -> None:
    lab_demo = demo()
    node = {"stage": "installing", "install_stage": 3, "stage_reason": None}
    assert lab_demo.describe(node) == (4, "installing 3/5")
    assert lab_demo.describe({**node, "stage": "deployed"}) == (lab_demo.STEPS, "deployed")
    console = tmp_path / "console.log"
    console.write_bytes(b"\x1b[01;01H\n[bmprov-standin 4.4s] INSTALL-FILE 13139 bytes\n\n")
    assert lab_demo.console_tail(console) == "INSTALL-FILE 13139 bytes"
    assert lab_demo.console_tail(tmp_path / "none") == ""
