"""Output for people (rich tables, progress bars) and for scripts (``--json``)."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
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
    # Pipes and logs: do not squeeze tables to 80; $COLUMNS (which rich reads) still rules.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 160
    # emoji=False: a value such as "power:on:" must print as written, not as an emoji.
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width, emoji=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _cell(value: object) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return "" if value is None else escape(str(value))


def nodes_table(nodes: list[Node], title: str | None = None) -> None:
    """A table of nodes: serial, stage, MAC, IP, hostname, model, OS, rack/unit."""
    from bmprov.cli.tables import Column, print_table  # noqa: PLC0415

    columns = [
        Column("serial", key=True),
        Column("stage", key=True),
        Column("mac", key=True),
        Column("ip", key=True),
        Column("hostname"),
        Column("model", drop=4),
        Column("os", drop=3),
        Column("rack", drop=2),
        Column("unit", drop=1),
    ]
    rows = []
    for n in nodes:
        stage = n.stage if n.stage != "failed" else f"[red]failed[/] ({_cell(n.failed_stage)})"
        rows.append(
            [
                _cell(n.serial),
                stage,
                _cell(n.mac) or "[dim]—[/]",
                _cell(n.ip),
                _cell(n.hostname),
                _cell(n.model),
                _cell(n.os),
                _cell(n.rack),
                _cell(n.unit),
            ]
        )
    print_table(console(), columns, rows, title)


def batch_table(batch: BatchResult, title: str | None = None) -> None:
    """Per-node results of a batch, a message shared by several nodes once below, a summary."""
    from bmprov.cli.tables import Column, print_table, shared_messages  # noqa: PLC0415

    out = console()
    if batch.results:
        notes = shared_messages([r.message or "" for r in batch.results])
        rows = []
        for r in batch.results:
            style = STATUS_STYLE.get(r.status, "")
            note = notes.get(r.message or "")
            message = f"[dim]see note {note}[/]" if note else _cell(r.message)
            rows.append([_cell(r.serial), f"[{style}]{r.status}[/]", _cell(r.stage), message])
        columns = [Column("serial", key=True), Column("result", key=True)]
        columns += [Column("stage", key=True), Column("message")]
        print_table(out, columns, rows, title)
        counts = Counter(r.message for r in batch.results)
        for message, note in notes.items():
            out.print(f"note {note} ({counts[message]} nodes): {_cell(message)}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(batch.counts().items()))
    out.print(f"{_cell(batch.action)}: {summary or 'nothing to do'}")


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
