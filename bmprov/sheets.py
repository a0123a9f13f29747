"""Procurement sheets (.xlsx and .csv) as rows of raw cells with their spreadsheet row numbers.

Readers never interpret cells: text stays text, and numbers are handed on as numbers so the
importer can tell a MAC that Excel turned into an integer from a real text cell. python-calamine
reads .xlsx (about 12× faster than openpyxl here); openpyxl is the fallback for files calamine
cannot open; CSV uses the csv module (UTF-8, BOM tolerated, delimiter sniffed).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bmprov.errors import InputError

Cell = str | int | float | bool | dt.datetime | dt.date | dt.time | dt.timedelta | None
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Sheet:
    """A header row and the rows below it; row ``k`` of ``rows`` is spreadsheet row
    ``header_row + 1 + k`` (as a spreadsheet program numbers them)."""

    file: str
    header_row: int
    header: list[str]
    rows: list[list[Cell]]

    def number(self, k: int) -> int:
        """The spreadsheet row number of ``rows[k]``."""
        return self.header_row + 1 + k

    def columns(self) -> list[tuple[Cell, ...]]:
        """The rows turned into columns (in C, via zip); short rows padded with blanks."""
        width = len(self.header)
        rows = self.rows
        if not rows:
            return [() for _ in range(width)]
        if min(map(len, rows)) < width:
            rows = [r if len(r) >= width else [*r, *([None] * (width - len(r)))] for r in rows]
        return list(zip(*rows, strict=False))[:width]


def open_sheet(path: Path, sheet: str | None = None) -> Sheet:
    """Open a .xlsx/.xlsm or .csv file; :class:`InputError` naming the file if unreadable."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; name the sheet file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        rows = _excel_rows(path, sheet)
    elif suffix in (".csv", ".txt"):
        if sheet:
            raise InputError(f"{path}: --sheet only applies to .xlsx files")
        rows = _csv_rows(path)
    else:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'} (use .xlsx or .csv)")
    for number, cells in rows:
        if any(_blank(c) is False for c in cells):
            header = [_header_text(c) for c in cells]
            return Sheet(str(path), number, header, [cells for _, cells in rows])
    raise InputError(f"{path}: the sheet is empty (no header row)")


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _excel_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Cell]]]:
    try:
        return _calamine_rows(path, sheet)
    except InputError:
        raise
    except Exception:  # calamine could not parse it: try openpyxl before giving up
        return _openpyxl_rows(path, sheet)


def _calamine_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Cell]]]:
    import python_calamine  # noqa: PLC0415

    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    names = workbook.sheet_names
    if sheet is not None and sheet not in names:
        raise InputError(f"{path}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    data = workbook.get_sheet_by_name(sheet if sheet is not None else names[0])
    first_row = (data.start or (0, 0))[0] + 1
    rows = cast("list[list[Cell]]", data.to_python())  # rectangular, "" for blank cells
    return zip(itertools.count(first_row), rows, strict=False)


def _openpyxl_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Cell]]]:
    try:
        import openpyxl  # noqa: PLC0415

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    names = workbook.sheetnames
    if sheet is not None and sheet not in names:
        raise InputError(f"{path}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
    worksheet = workbook[sheet if sheet is not None else names[0]]
    return ((i, list(row)) for i, row in enumerate(worksheet.iter_rows(values_only=True), start=1))


def _csv_rows(path: Path) -> Iterator[tuple[int, list[Cell]]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte {exc.start}); save the sheet as 'CSV UTF-8'"
        ) from None
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        number = 0  # records, as a spreadsheet program numbers them (not physical lines)
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cast("list[Cell]", cells)
        except csv.Error as exc:
            raise InputError(f"{path}:{number + 1}: malformed CSV: {exc}") from None

    return rows()
