"""Helpers for the hostile-input tests: the exit-2 assertion and real, unprivileged runs."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import Run

BAD_INPUT = 2


def assert_bad_input(run: Run, *needles: str) -> None:
    """Exit 2, one ``Error:`` line naming every needle, no traceback, no internal error."""
    assert run.exit_code == BAD_INPUT, (run.exit_code, run.stdout, run.stderr)
    assert "Error: " in run.stderr
    assert "Traceback" not in run.stderr
    assert "internal error" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, (needle, run.stderr)


def unprivileged() -> list[str]:
    """A command prefix that makes root obey file modes (drops the DAC override capabilities)."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def bmprov(
    *args: str | os.PathLike[str],
    prefix: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``python -m bmprov`` for real (after ``prefix``, e.g. :func:`unprivileged`)."""
    done = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "bmprov", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    return Run(done.returncode, done.stdout, done.stderr)
