"""The library API: the script in docs/library.md runs as written, and the public names hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import bmprov
from tests.conftest import REPO, SAMPLES


def _doc_script() -> str:
    text = (REPO / "docs" / "library.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "docs/library.md has no python example"
    return str(blocks[0])


def test_the_documented_script_drives_a_batch(tmp_path: Path) -> None:
    script = tmp_path / "rack.py"
    script.write_text(_doc_script(), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "site"), str(SAMPLES / "purchases.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert "Traceback" not in run.stderr, run.stderr
    assert "imported 36 new node(s)" in run.stdout
    assert re.search(r"^CZ20000001 ok os_provisioning", run.stdout, re.MULTILINE), run.stdout
    assert "ready to PXE-boot" in run.stdout
    assert run.returncode in (0, 1)  # the sample's serial-only rows may fail at networking
    with bmprov.Site.open(tmp_path / "site" / "bmprov.toml") as site:
        history = site.history("CZ20000001")
        assert history[-1]["to_stage"] == "os_provisioning"
        assert {h["command"] for h in history} == {"rack-script"}


def test_public_names_resolve_and_stay_lazy() -> None:
    for name in bmprov.__all__:
        assert getattr(bmprov, name) is not None, name
    code = "import bmprov, sys; print(sorted(m for m in sys.modules if m.startswith('bmprov')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "['bmprov']"  # `import bmprov` loads nothing else


def test_errors_are_bmprov_errors(tmp_path: Path) -> None:
    try:
        bmprov.Site.open(tmp_path / "missing.toml")
    except bmprov.BmprovError as exc:
        assert exc.exit_code == bmprov.ExitCode.BAD_INPUT
    else:
        raise AssertionError("a missing config must raise")
