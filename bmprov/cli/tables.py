"""Tables that fit the terminal without cutting the column a reader looks a node up by.

Rich squeezes every column alike when a table is too wide: at 120 columns the stage showed as
``os_provisio…`` and at 80 as ``o…`` while MACs kept their width. Here key columns (serial,
stage, MAC...) are sized to their longest cell and never wrap; free-text columns wrap; and when
even that does not fit, the least important free-text columns are left out, with a note naming
them. A message shared by several rows is printed once, under the table, as a numbered note.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

MIN_FREE = 8
"""A free-text column narrower than this (plus its border) is dropped rather than shown."""


@dataclass(frozen=True)
class Column:
    """``key``: never wraps, never truncated; otherwise free text that may wrap or be left out.

    ``drop`` orders the free-text columns to leave out when the table does not fit (highest
    first); 0 means the column is always shown.
    """

    name: str
    key: bool = False
    drop: int = 0


def _width(cell: str) -> int:
    from rich.cells import cell_len  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    if "[" not in cell:  # most cells: no markup to parse
        return max(map(cell_len, cell.split("\n")))
    return max((Text.from_markup(line).cell_len for line in cell.split("\n")), default=0)


def print_table(
    out: Console, columns: list[Column], rows: list[list[str]], title: str | None = None
) -> None:
    """Print ``rows`` (cells in rich markup, values escaped) under ``columns``."""
    from rich.table import Table  # noqa: PLC0415

    widths = [max([len(c.name), *(_width(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    shown = _fit(out.width, columns, widths)
    table = Table(title=title)
    for i in shown:
        col = columns[i]
        if col.key:
            table.add_column(col.name, no_wrap=True, min_width=widths[i])
        else:
            table.add_column(col.name, overflow="fold", min_width=min(widths[i], MIN_FREE))
    for r in rows:
        table.add_row(*(r[i] for i in shown))
    out.print(table)
    left_out = [c.name for i, c in enumerate(columns) if i not in shown]
    if left_out:
        out.print(
            f"[dim](not shown at {out.width} columns: {', '.join(left_out)}; "
            "a wider terminal or --json shows them)[/]"
        )


def _fit(total: int, columns: list[Column], widths: list[int]) -> list[int]:
    """Indexes of the columns to show: every key column, and free text while it fits."""
    shown = list(range(len(columns)))

    def needed() -> int:
        inner = sum(widths[i] if columns[i].key else min(widths[i], MIN_FREE) for i in shown)
        return inner + 3 * len(shown) + 1  # "│ " before each cell, " " after, one closing "│"

    for i in sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop):
        if needed() <= total:
            break
        shown.remove(i)
    return shown


def shared_messages(messages: list[str], threshold: int = 2) -> dict[str, int]:
    """Messages that occur ``threshold`` times or more → their note number (1, 2...)."""
    counts = Counter(m for m in messages if m)
    repeated = [m for m in dict.fromkeys(messages) if m and counts[m] >= threshold]
    return {m: n for n, m in enumerate(repeated, 1)}
