"""The wheel carries schemas, templates and samples; `bmprov --help` stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = {
    "pandas",
    "openpyxl",
    "python_calamine",
    "pyghmi",
    "pypureomapi",
    "pykickstart",
    "jinja2",
    "netaddr",
    "jsonschema",
    "sushy",
    "requests",
    "passlib",
    "wakeonlan",
}


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bmprov.cli import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not HEAVY & set(out.stdout.split()), "import these inside the commands that need them"


@pytest.mark.slow
def test_non_editable_install_finds_its_data(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("bmprov-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "bmprov/_data/schemas/config.schema.json",
        "bmprov/_data/sample_sheets/purchases.xlsx",
    ):
        assert expected in names
    assert any(n.startswith("bmprov/_data/pxe_templates/") and n.endswith(".j2") for n in names)
    assert any(n.startswith("bmprov/_data/kickstart/") and n.endswith(".j2") for n in names)
    target = tmp_path / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "BMPROV_CONFIG": str(tmp_path / "s" / "bmprov.toml"),
    }
    env.pop("PYTHONSAFEPATH", None)

    def bmprov(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bmprov", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    where = subprocess.run(
        [sys.executable, "-c", "import bmprov; print(bmprov.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.startswith(str(target))  # the wheel, not the checkout
    assert bmprov("init", str(tmp_path / "s")).returncode == 0
    sample = target / "bmprov" / "_data" / "sample_sheets" / "purchases.csv"
    assert bmprov("import", str(sample)).returncode == 0
    assert bmprov("advance", "--stage", "mounting", "--all").returncode == 0
    bmprov("advance", "--stage", "networking", "--all")  # serial-only rows fail by design
    nodes = json.loads(bmprov("nodes", "list", "--json").stdout)
    assert sum(n["stage"] == "os_provisioning" for n in nodes) == 30
    assert list((tmp_path / "s" / "tftpboot" / "pxelinux.cfg").glob("01-*"))
