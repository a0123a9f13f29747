"""Shared fixtures: a fresh site (config + state file) and an in-process CLI runner."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bmprov.cli import app
from bmprov.config import Config, load_config
from bmprov.setup_site import init_site
from bmprov.store import StateDB

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_sheets"


@dataclass
class Site:
    """A tmp site directory with bmprov.toml and an empty state file."""

    dir: Path
    config_path: Path

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    def db(self) -> StateDB:
        return StateDB(self.config.state_path)

    def write_config(self, extra: str) -> None:
        """Append TOML to the site's config."""
        with self.config_path.open("a", encoding="utf-8") as fh:
            fh.write("\n" + extra + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    result = init_site(tmp_path / "site")
    monkeypatch.setenv("BMPROV_CONFIG", str(result.config_path))
    yield Site(result.config_path.parent, result.config_path)


@pytest.fixture
def clean_lab() -> Iterator[None]:
    """The fake BMCs (``bmprov.drivers.fake.LAB``) forgotten before and after the test."""
    from bmprov.drivers.fake import LAB

    LAB.reset()
    yield
    LAB.reset()


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli() -> Iterator[object]:
    """Invoke the CLI in-process: ``cli("import", "x.csv")`` → Run(exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str | os.PathLike[str]) -> Run:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    yield invoke


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """Write rows (first = header) as a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path
