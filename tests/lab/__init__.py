"""Helpers of the lab tests."""

from __future__ import annotations

from pathlib import Path


def processes_mentioning(text: str) -> list[Path]:
    """``/proc/<pid>/cmdline`` of every process whose command line contains ``text``."""
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(path)
    return found
