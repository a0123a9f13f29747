"""Output for people (rich tables, progress bars) and for scripts (``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from bmprov.nodes import Node
    from bmprov.result import BatchResult, NodeResult

STATUS_STYLE = {
    "ok": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "unchanged": "dim",
    "planned": "cyan",
}


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr), built on demand to keep start-up fast."""
    from rich.console import Console  # noqa: PLC0415

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # pipes and logs: do not squeeze tables to 80
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _cell(value: object) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return "" if value is None else escape(str(value))


def nodes_table(nodes: list[Node], title: str | None = None) -> None:
    """A table of nodes: serial, stage, MAC, IP, hostname, model, OS, rack/unit."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title, show_lines=False)
    for col in ("serial", "stage", "mac", "ip", "hostname", "model", "os", "rack", "unit"):
        table.add_column(col, no_wrap=col in ("serial", "mac", "ip"))
    for n in nodes:
        stage = n.stage if n.stage != "failed" else f"[red]failed[/] ({_cell(n.failed_stage)})"
        table.add_row(
            _cell(n.serial),
            stage,
            _cell(n.mac) or "[dim]—[/]",
            _cell(n.ip),
            _cell(n.hostname),
            _cell(n.model),
            _cell(n.os),
            _cell(n.rack),
            _cell(n.unit),
        )
    console().print(table)


def batch_table(batch: BatchResult, title: str | None = None) -> None:
    """Per-node results of a batch, then a one-line summary."""
    from rich.table import Table  # noqa: PLC0415

    out = console()
    if batch.results:
        table = Table(title=title)
        for col in ("serial", "result", "stage", "message"):
            table.add_column(col, overflow="fold")
        for r in batch.results:
            style = STATUS_STYLE.get(r.status, "")
            table.add_row(
                _cell(r.serial), f"[{style}]{r.status}[/]", _cell(r.stage), _cell(r.message)
            )
        out.print(table)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(batch.counts().items()))
    out.print(f"{batch.action}: {counts or 'nothing to do'}")


@contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[_Progress]:
    """A rich progress bar on stderr (off for --json or when not a terminal)."""
    handle = _Progress(description, enabled)
    try:
        yield handle
    finally:
        handle.stop()


class _Progress:
    def __init__(self, description: str, enabled: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._description = description
        self._enabled = enabled and sys.stderr.isatty()

    def total(self, total: int) -> None:
        if not self._enabled or total == 0:
            return
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._description, total=total)

    def advance(self, result: NodeResult | None = None) -> None:
        del result
        if self._bar is not None:
            self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
