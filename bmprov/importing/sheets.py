"""Procurement sheets (.xlsx and .csv) as rows of raw cells with their spreadsheet row numbers.

Readers never interpret cells: text stays text, and numbers are handed on as numbers so the
importer can tell a MAC that Excel turned into an integer from a real text cell. python-calamine
reads .xlsx (about 12× faster than openpyxl here); openpyxl is the fallback for files calamine
cannot open; CSV uses the csv module (UTF-8, BOM tolerated, delimiter sniffed).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from xml.etree import ElementTree

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
    _check_regular_file(path)
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


def _check_regular_file(path: Path) -> None:
    """A readable regular file, or an :class:`InputError` that says what the path is instead."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:  # a symlink loop, a path through a non-directory...
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; name the sheet file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file (a pipe or device?); name the sheet file")


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
    except Exception as exc:  # calamine could not parse it: try openpyxl before giving up
        if type(exc).__name__ == "PasswordError":
            raise InputError(f"{path}: {_ENCRYPTED}") from None
        return _openpyxl_rows(path, sheet)


_ENCRYPTED = "the workbook is password-protected (encrypted); save a copy without a password"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _not_xlsx_reason(path: Path, exc: Exception) -> str:
    """Why a .xlsx file could not be read, in the operator's terms (sniffed from its bytes)."""
    try:
        with path.open("rb") as fh:
            if fh.read(8) == _OLE2_MAGIC:  # an OLE2 container: encrypted OOXML or a binary .xls
                return _ole2_reason(fh.read())
        if not zipfile.is_zipfile(path):
            return "not an .xlsx workbook (not a zip file: truncated, or another format)"
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and b"opendocument" in archive.read("mimetype"):
                return "an OpenDocument (.ods) spreadsheet, not .xlsx; save it as .xlsx"
            if "xl/workbook.xml" not in names:
                return "a zip file but not an .xlsx workbook (no xl/workbook.xml)"
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError) as err:
        return f"not a readable .xlsx workbook ({type(err).__name__}: {err})"
    return f"not a readable .xlsx workbook ({type(exc).__name__})"


def _ole2_reason(body: bytes) -> str:
    if "EncryptedPackage".encode("utf-16-le") in body:
        return _ENCRYPTED
    return "an Excel 97-2003 (.xls) workbook, not .xlsx; save it as Excel Workbook (.xlsx)"


def _pick_sheet(path: Path, names: list[str], visible: list[bool], sheet: str | None) -> str:
    """The named sheet, else the first visible one (a hidden first sheet holds lookups)."""
    if not names:
        raise InputError(f"{path}: the workbook has no worksheets")
    if sheet is not None:
        if sheet not in names:
            raise InputError(f"{path}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
        return sheet
    return next((n for n, shown in zip(names, visible, strict=True) if shown), names[0])


def _calamine_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Cell]]]:
    import python_calamine  # noqa: PLC0415

    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    shown = [
        m.visible == python_calamine.SheetVisibleEnum.Visible for m in workbook.sheets_metadata
    ]
    name = _pick_sheet(path, workbook.sheet_names, shown, sheet)
    errors = _scan_sheet(path, name)  # before calamine loads it: the used range may be absurd
    data = workbook.get_sheet_by_name(name)
    # iter_rows() starts at sheet row 1 whatever data.start says (python-calamine issue #177),
    # but at the first used column: columns are offset by data.start[1], rows are not.
    rows = cast("Iterator[list[Cell]]", data.iter_rows())
    if data.merged_cell_ranges or errors:
        table = list(rows)
        column0 = (data.start or (0, 0))[1]
        _fill_merged(table, data.merged_cell_ranges or [], column0)
        for row, column, text in errors:
            if row < len(table) and 0 <= column - column0 < len(table[row]):
                table[row][column - column0] = text
        rows = iter(table)
    return zip(itertools.count(1), rows, strict=False)


def _fill_merged(
    table: list[list[Cell]], ranges: list[tuple[tuple[int, int], tuple[int, int]]], column0: int
) -> None:
    """Give every cell of a merged range the range's value, as the operator sees it."""
    for (top, left), (bottom, right) in ranges:
        if top >= len(table) or not 0 <= left - column0 < len(table[top]):
            continue
        value = table[top][left - column0]
        for row in table[top : bottom + 1]:
            for column in range(max(left - column0, 0), min(right - column0 + 1, len(row))):
                row[column] = value


MAX_CELLS = 1 << 24
"""Refuse a sheet whose used range is larger: calamine allocates it densely (about 32 bytes a
cell; a stray value in XFD1048576 asks for 512 GiB and aborts the process), and the rows become
Python lists. Columns A-Z count as 26 (finding the widest of them would cost a scan per letter):
100,000 rows x 160 columns fit, a stray value in row 1,048,576 does not."""
_CELL_REF = re.compile(rb'<c r="[A-Z]{1,3}([0-9]+)"[^>]*(?<!/)>')  # a cell with content
# A cell with content past column Z or at row 1,000,000+: rare, so finding them all is cheap.
# (Rows out of order, which Excel never writes, can hide a far row below a million from
# _last_row; beyond a million they are caught here.)
_FAR_REF = re.compile(rb'<c r="(?=[A-Z]{2,}[0-9]|[A-Z]+[0-9]{7})([A-Z]+)([0-9]+)"[^>]*(?<!/)>')


@dataclass
class _Scan:
    """What one pass over a worksheet's XML found."""

    errors: bool = False  # any cell of type "e" (#N/A, #REF!...)
    last_row: int = 0
    widest: int = 26  # column number; columns A-Z are not looked at


def _scan_sheet(path: Path, sheet: str) -> list[tuple[int, int, str]]:
    """Check the sheet's used range and find its error cells, before calamine loads it.

    Returns ``(row, column, "#N/A")`` (0-based) for each error cell: calamine reads them as
    blanks (python-calamine issue #105), so openpyxl locates them, only when the byte scan
    (about 0.1 s per 100,000 rows) saw one."""
    with zipfile.ZipFile(path) as archive:
        member = _sheet_member(archive, sheet)
        # calamine reads XML that ElementTree refuses: then every worksheet is scanned
        members = [member] if member else [n for n in archive.namelist() if "worksheets/" in n]
        scans = [_scan_xml(archive, m) for m in members]
    scan = max(scans, key=lambda x: x.last_row * x.widest, default=_Scan())
    scan.errors = any(x.errors for x in scans)
    if scan.last_row * scan.widest > MAX_CELLS:
        raise InputError(
            f"{path}: sheet {sheet!r} is used down to row {scan.last_row:,} and across to "
            f"column {scan.widest:,}: more than {MAX_CELLS:,} cells. A stray value far below or "
            "right of the table? Delete those rows and columns (Ctrl+End shows the last used "
            "cell) and save"
        )
    if not scan.errors:
        return []
    import openpyxl  # noqa: PLC0415

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return [
            (cell.row - 1, cell.column - 1, str(cell.value))
            for row in workbook[sheet].iter_rows()
            for cell in row
            if getattr(cell, "data_type", None) == "e"
        ]
    finally:
        workbook.close()


def _sheet_member(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding a sheet's XML (workbook.xml names it, its .rels file places it)."""
    # S314: ElementTree resolves no external entities, and expat >= 2.4.1 (Debian 12: 2.5.0)
    # refuses entity amplification (billion laughs); calamine has parsed both files already.
    try:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))  # noqa: S314
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    except (KeyError, ElementTree.ParseError):
        return None
    rid = next(
        (
            value
            for e in book.iter()
            if e.tag.endswith("}sheet") and e.get("name") == sheet
            for key, value in e.attrib.items()
            if key.endswith("}id")
        ),
        None,
    )
    target = next((e.get("Target") for e in rels if rid and e.get("Id") == rid), None)
    if not target:
        return None
    member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return member if member in archive.namelist() else None


def _scan_xml(archive: zipfile.ZipFile, member: str) -> _Scan:
    scan = _Scan()
    tail = b""
    with archive.open(member) as fh:
        while chunk := fh.read(1 << 20):
            text = tail + chunk
            scan.errors = scan.errors or b't="e"' in text
            for letters, digits in set(_FAR_REF.findall(text)):
                scan.widest = max(scan.widest, _column_number(letters))
                scan.last_row = max(scan.last_row, int(digits))
            scan.last_row = max(scan.last_row, _last_row(text))
            tail = chunk[-64:]
    return scan


def _last_row(text: bytes) -> int:
    """The row of the last cell with content in ``text`` (formatted-only cells are skipped,
    as calamine skips them)."""
    end = len(text)
    while (at := text.rfind(b'<c r="', 0, end)) >= 0:
        cell = _CELL_REF.match(text, at)
        if cell:
            return int(cell.group(1))
        end = at
    return 0


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _openpyxl_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[Cell]]]:
    try:
        import openpyxl  # noqa: PLC0415

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InputError(f"{path}: {_not_xlsx_reason(path, exc)}") from None
    shown = [ws.sheet_state == "visible" for ws in workbook.worksheets]
    name = _pick_sheet(path, workbook.sheetnames, shown, sheet)

    def rows() -> Iterator[tuple[int, list[Cell]]]:
        number = 0  # openpyxl parses lazily: a damaged worksheet fails part-way through
        try:
            for number, row in enumerate(workbook[name].iter_rows(values_only=True), start=1):
                yield number, list(row)
        except Exception as exc:
            raise InputError(
                f"{path}:{number + 1}: worksheet {name!r} is damaged ({type(exc).__name__}: {exc})"
            ) from None

    return rows()


def _csv_rows(path: Path) -> Iterator[tuple[int, list[Cell]]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    # Excel's "Unicode Text" export: UTF-16 with a byte-order mark (tab-separated).
    encoding = "utf-16" if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not {'UTF-16' if encoding == 'utf-16' else 'UTF-8'} text "
            f"(byte {exc.start}); "
            "save the sheet as 'CSV UTF-8'"
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
