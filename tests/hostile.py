"""Helpers for the hostile-input tests: the exit-2 assertion and real, unprivileged runs."""

from __future__ import annotations

import os
import subprocess
import sys

BAD_INPUT = 2


def assert_bad_input(run: object, *needles: str) -> None:
    """Exit 2, one ``Error:`` line naming every needle, no traceback, no internal error."""
    assert run.exit_code == BAD_INPUT, (run.exit_code, run.stdout, run.stderr)  # type: ignore[attr-defined]
    err = run.stderr  # type: ignore[attr-defined]
    assert "Error: " in err
    assert "Traceback" not in err
    assert "internal error" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def unprivileged() -> list[str]:
    """A command prefix that makes root obey file modes (drops the DAC override capabilities)."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def bmprov(*args: str | os.PathLike[str], prefix: list[str] | None = None) -> object:
    """Run ``python -m bmprov`` for real; returns the CompletedProcess (text)."""
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "bmprov", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def done_as_run(done: object) -> object:
    """A CompletedProcess with the ``exit_code`` name the assertions use."""
    done.exit_code = done.returncode  # type: ignore[attr-defined]
    return done
