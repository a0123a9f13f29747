"""Hostile procurement sheets (issue #2): every bad file is exit 2, a message naming the file
(and row/column where there is one), no traceback, and a state file left byte-for-byte as it was.

The files are built the way Excel, LibreOffice or a script really produce them: openpyxl for
ordinary workbooks, a hand-written OOXML package where openpyxl cannot write the case (formula
with a cached value, typed error cells, a workbook without sheets), msoffcrypto-tool for a
password-protected workbook and xlwt for an old binary .xls.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmprov.nodes import get_node
from tests.conftest import Site

HEADER = ["Serial", "MAC", "Notes"]
GOOD = ["SN1", "52:54:00:00:00:01", "ok"]

# ---------------------------------------------------------------------------------------------
# Builders


def workbook(path: Path, *rows: list[object], fill: Callable[..., None] | None = None) -> Path:
    """An openpyxl workbook with ``rows`` on its first sheet; ``fill(wb, ws)`` adds the rest."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Purchases"
    for r in rows:
        ws.append(r)
    if fill:
        fill(wb, ws)
    wb.save(path)
    return path


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def raw_xlsx(path: Path, sheets: list[tuple[str, str]]) -> Path:
    """A minimal OOXML package written by hand: ``(sheet name, <sheetData> inner XML)``."""
    n = range(1, len(sheets) + 1)
    types = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in n
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            f'officedocument.spreadsheetml.sheet.main+xml"/>{types}</Types>',
        )
        z.writestr(
            "_rels/.rels",
            f'{_XML}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        entries = "".join(
            f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>'
            for i, (name, _) in zip(n, sheets, strict=True)
        )
        z.writestr(
            "xl/workbook.xml",
            f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
            f"<sheets>{entries}</sheets></workbook>",
        )
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in n
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'{_XML}<Relationships xmlns="{_PKG}">{rels}</Relationships>',
        )
        for i, (_, data) in zip(n, sheets, strict=True):
            z.writestr(
                f"xl/worksheets/sheet{i}.xml",
                f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData>{data}</sheetData></worksheet>',
            )
    return path


def text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def xml_row(number: int, *cells: str) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


def header_xml() -> str:
    return xml_row(1, text("A1", "Serial"), text("B1", "MAC"), text("C1", "Notes"))


def good_xlsx(path: Path) -> Path:
    return workbook(path, HEADER, GOOD)


def encrypted_xlsx(path: Path) -> Path:
    """Excel's File > Protect > Encrypt with Password: an OLE2 container, EncryptedPackage."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(good_xlsx(path).read_bytes())
    with path.open("wb") as out:
        OOXMLFile(plain).encrypt("secret", out)
    return path


def old_xls(path: Path) -> Path:
    """An Excel 97-2003 binary workbook, renamed .xlsx."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Purchases")
    for r, values in enumerate([HEADER, GOOD]):
        for c, value in enumerate(values):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def ods_as_xlsx(path: Path) -> Path:
    """An OpenDocument spreadsheet (what LibreOffice saves by default), renamed .xlsx."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    return path


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


# ---------------------------------------------------------------------------------------------
# The state file, byte for byte


def snapshot(site: Site) -> dict[str, bytes]:
    """The state file and its WAL (the -shm index is scratch memory and may change on read)."""
    path = site.config.state_path
    with site.db():  # a first open migrates and checkpoints: compare from a settled file
        pass
    files = (path, path.with_name(path.name + "-wal"))
    return {p.name: p.read_bytes() for p in files if p.exists()}


def assert_refused(site: Site, cli, path: Path, *expected: str, args: tuple[str, ...] = ()) -> str:
    """``bmprov import`` refuses ``path``: exit 2, file named, no traceback, nothing written."""
    before = snapshot(site)
    run = cli("import", path, *args)
    assert run.exit_code == 2, (run.exit_code, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert str(path) in run.stderr
    for fragment in expected:
        assert fragment in run.stderr, (fragment, run.stderr)
    assert snapshot(site) == before
    return run.stderr


# ---------------------------------------------------------------------------------------------
# .xlsx that is not one


XLSX_NOT_A_WORKBOOK: dict[str, tuple[Callable[[Path], object], str]] = {
    "not-a-zip": (lambda p: p.write_bytes(b"Serial,MAC\nSN1,52:54:00:00:00:01\n"), "not a zip"),
    "truncated": (
        lambda p: p.write_bytes(good_xlsx(p).read_bytes()[:1500]),
        "not a zip file: truncated",
    ),
    "zip-without-workbook": (
        lambda p: zip_of(p, {"readme.txt": b"hello"}),
        "no xl/workbook.xml",
    ),
    "no-worksheets": (lambda p: raw_xlsx(p, []), "the workbook has no worksheets"),
    "encrypted": (encrypted_xlsx, "password-protected"),
    "old-xls": (old_xls, "Excel 97-2003 (.xls)"),
    "ods": (ods_as_xlsx, "OpenDocument (.ods)"),
    "empty-sheet": (lambda p: raw_xlsx(p, [("Purchases", "")]), "the sheet is empty"),
    "header-only": (lambda p: workbook(p, HEADER), "no rows to import below the header"),
}


@pytest.mark.parametrize("case", sorted(XLSX_NOT_A_WORKBOOK))
def test_xlsx_that_cannot_be_read_is_refused(cli, site: Site, tmp_path: Path, case: str) -> None:
    build, message = XLSX_NOT_A_WORKBOOK[case]
    path = tmp_path / f"{case}.xlsx"
    build(path)
    assert_refused(site, cli, path, message)


def test_missing_sheet_name_lists_the_sheets(cli, site: Site, tmp_path: Path) -> None:
    path = good_xlsx(tmp_path / "p.xlsx")
    assert_refused(
        site, cli, path, "no sheet named 'Nope' (sheets: Purchases)", args=("--sheet", "Nope")
    )


# ---------------------------------------------------------------------------------------------
# .xlsx cells a spreadsheet really produces


def test_error_cells_are_located_problems_not_blanks(cli, site: Site, tmp_path: Path) -> None:
    """python-calamine reads error cells as blanks; a #N/A MAC must not import as 'no MAC'."""
    path = raw_xlsx(
        tmp_path / "errors.xlsx",
        [
            (
                "Purchases",
                header_xml()
                + xml_row(
                    2,
                    text("A2", "SN1"),
                    '<c r="B2" t="e"><f>VLOOKUP(A2,Macs!A:B,2,FALSE)</f><v>#N/A</v></c>',
                    '<c r="C2" t="e"><v>#REF!</v></c>',
                )
                + xml_row(
                    3,
                    text("A3", "SN2"),
                    text("B3", "52:54:00:00:00:02"),
                    '<c r="C3" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
                ),
            )
        ],
    )
    assert_refused(
        site,
        cli,
        path,
        f"{path}:2:MAC: cell shows the spreadsheet error #N/A",
        f"{path}:2:Notes: cell shows the spreadsheet error #REF!",
        f"{path}:3:Notes: cell shows the spreadsheet error #DIV/0!",
    )


def test_error_text_in_csv_export_is_a_problem(cli, site: Site, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Serial,MAC\nSN1,#N/A\n", encoding="utf-8")
    assert_refused(site, cli, path, f"{path}:2:MAC: cell shows the spreadsheet error #N/A")


def test_formula_cached_value_is_the_value(cli, site: Site, tmp_path: Path) -> None:
    """What Excel shows (the cached result) is what is imported."""
    formula = '<c r="A2" t="str"><f>"SN"&amp;"1"</f><v>SN1</v></c>'
    path = raw_xlsx(
        tmp_path / "f.xlsx",
        [("Purchases", header_xml() + xml_row(2, formula, text("B2", "52:54:00:00:00:01")))],
    )
    assert cli("import", path).exit_code == 0
    with site.db() as db:
        assert get_node(db, "SN1").mac == "52:54:00:00:00:01"


def test_formula_without_cached_value_reads_as_blank(cli, site: Site, tmp_path: Path) -> None:
    """A script-written formula never calculated has no value: the serial is blank, located."""
    path = workbook(tmp_path / "f.xlsx", HEADER, ['="SN"&"1"', "52:54:00:00:00:01", "x"])
    assert_refused(site, cli, path, f"{path}:2:Serial: serial is blank")


def test_dates_times_and_durations_in_serial_or_mac_are_refused(
    cli, site: Site, tmp_path: Path
) -> None:
    path = workbook(
        tmp_path / "d.xlsx",
        HEADER,
        [dt.datetime(2024, 1, 2), dt.time(12, 34, 56), "x"],
        ["SN3", dt.timedelta(hours=30), "y"],
    )
    assert_refused(
        site,
        cli,
        path,
        f"{path}:2:Serial: is a date or time (2024-01-02",
        f"{path}:2:MAC: is a date or time (12:34:56)",
        f"{path}:3:MAC: is a duration",
    )


def test_a_date_in_notes_is_kept_as_iso_text(cli, site: Site, tmp_path: Path) -> None:
    path = workbook(tmp_path / "d.xlsx", HEADER, ["SN1", "52:54:00:00:00:01", dt.date(2024, 5, 1)])
    assert cli("import", path).exit_code == 0
    with site.db() as db:
        assert get_node(db, "SN1").notes.startswith("2024-05-01")


def test_booleans_are_refused(cli, site: Site, tmp_path: Path) -> None:
    path = workbook(tmp_path / "b.xlsx", HEADER, [True, "52:54:00:00:00:01", False])
    assert_refused(site, cli, path, f"{path}:2:Serial: is TRUE/FALSE", f"{path}:2:Notes: is TRUE")


def test_100kb_cells_are_refused_without_echoing_them(cli, site: Site, tmp_path: Path) -> None:
    path = workbook(tmp_path / "long.xlsx", HEADER, ["S" + "x" * 100_000, "52:54:00:00:00:01", ""])
    stderr = assert_refused(site, cli, path, f"{path}:2:Serial:", "characters]…")
    assert len(stderr) < 2000


def test_100kb_header_is_noted_without_echoing_it(cli, site: Site, tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(f"Serial,{'y' * 100_000}\nSN1,x\n", encoding="utf-8")
    run = cli("import", path)
    assert run.exit_code == 0 and "is not known to bmprov" in run.stderr
    assert len(run.stderr) < 2000


def test_merged_cells_give_every_row_the_value(cli, site: Site, tmp_path: Path) -> None:
    """A rack merged down three rows is that rack for each of them (what the operator sees)."""

    def merge(_wb: object, ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
        ws.merge_cells("C2:C4")

    path = workbook(
        tmp_path / "m.xlsx",
        ["Serial", "MAC", "Rack"],
        ["SN1", "52:54:00:00:00:01", "R07"],
        ["SN2", "52:54:00:00:00:02", None],
        ["SN3", "52:54:00:00:00:03", None],
        fill=merge,
    )
    assert cli("import", path).exit_code == 0
    with site.db() as db:
        assert [get_node(db, f"SN{i}").rack for i in (1, 2, 3)] == ["R07"] * 3


def test_merged_serials_are_duplicates(cli, site: Site, tmp_path: Path) -> None:
    def merge(_wb: object, ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
        ws.merge_cells("A2:A3")

    path = workbook(
        tmp_path / "m.xlsx",
        ["Serial", "MAC"],
        ["SN1", "52:54:00:00:00:01"],
        [None, "52:54:00:00:00:02"],
        fill=merge,
    )
    assert_refused(site, cli, path, f"{path}:3:Serial: duplicate serial SN1 (also on row 2)")


def test_hidden_first_sheet_is_skipped(cli, site: Site, tmp_path: Path) -> None:
    """A hidden first sheet holds lookup lists; the default is the first sheet one can see."""

    def hide_first(wb: openpyxl.Workbook, ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
        ws.sheet_state = "hidden"
        real = wb.create_sheet("Real")
        real.append(HEADER)
        real.append(GOOD)

    path = workbook(tmp_path / "h.xlsx", ["Lookup"], ["x"], fill=hide_first)
    assert cli("import", path).exit_code == 0
    with site.db() as db:
        assert get_node(db, "SN1").notes == "ok"
    # named explicitly, the hidden sheet is read (and has no serial column)
    assert_refused(site, cli, path, "no serial column", args=("--sheet", "Purchases"))


def test_row_numbers_when_the_table_starts_below_row_1(cli, site: Site, tmp_path: Path) -> None:
    """python-calamine's iter_rows starts at row 1 whatever the first used row is."""

    def place(_wb: object, ws: openpyxl.worksheet.worksheet.Worksheet) -> None:
        ws["C3"], ws["D3"], ws["C4"], ws["D4"] = "Serial", "MAC", "SN1", "zz"

    path = workbook(tmp_path / "o.xlsx", fill=place)
    assert_refused(site, cli, path, f"{path}:4:MAC: 'zz' is not a MAC address")


TABLE = header_xml() + xml_row(2, text("A2", "SN1"), text("B2", "52:54:00:00:00:01"))


@pytest.mark.parametrize(
    ("far", "message"),
    [
        (xml_row(1048576, text("XFD1048576", " ")), "row 1,048,576 and across to column 16,384"),
        (xml_row(1048576, text("A1048576", "x")), "row 1,048,576 and across to column 26"),
    ],
    ids=["last-cell", "last-row"],
)
def test_stray_value_far_away_is_refused_not_a_crash(
    cli, site: Site, tmp_path: Path, far: str, message: str
) -> None:
    """A space typed in XFD1048576 made calamine allocate 512 GiB and abort (exit 134)."""
    path = raw_xlsx(tmp_path / "far.xlsx", [("Purchases", TABLE + far)])
    assert_refused(site, cli, path, f"is used down to {message}", "Ctrl+End")


def test_absurd_row_out_of_order_and_lenient_xml_are_refused(
    cli, site: Site, tmp_path: Path
) -> None:
    """Found by fuzzing open_sheet: a huge row number that is not the last cell, in a workbook
    whose workbook.xml calamine accepts but ElementTree refuses (so the sheet's member is
    unknown and every worksheet is scanned)."""
    far = text("B2999999999999", "x")
    table = header_xml() + xml_row(2, text("A2", "SN1"), far) + xml_row(3, text("A3", "SN2"))
    path = raw_xlsx(tmp_path / "far.xlsx", [("Purchases", table)])
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["xl/workbook.xml"] = members["xl/workbook.xml"].replace(
        b'name="Purchases"', b'name="Purc="d"hases"'
    )
    assert_refused(site, cli, zip_of(path, members), "is used down to row 2,999,999,999,999")


@pytest.mark.parametrize(
    "far",
    [
        xml_row(1048576, '<c r="XFD1048576" s="0"/>'),  # formatted only: calamine skips it
        xml_row(3, text("XFD3", "x")),  # far right but two rows: small
    ],
    ids=["formatted-only", "far-right"],
)
def test_far_cells_that_are_harmless_are_read(cli, site: Site, tmp_path: Path, far: str) -> None:
    path = raw_xlsx(tmp_path / "far.xlsx", [("Purchases", TABLE + far)])
    run = cli("import", path)
    assert run.exit_code == 0, run.stderr


def test_damaged_worksheet_xml_is_located(cli, site: Site, tmp_path: Path) -> None:
    """openpyxl parses lazily: the damage surfaced as ParseError part-way through the rows."""
    path = good_xlsx(tmp_path / "d.xlsx")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["xl/worksheets/sheet1.xml"] = members["xl/worksheets/sheet1.xml"][:-60]
    assert_refused(site, cli, zip_of(path, members), "worksheet 'Purchases' is damaged")


# ---------------------------------------------------------------------------------------------
# .csv


CSV_REFUSED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "the sheet is empty"),
    "only-bom": (codecs.BOM_UTF8, "the sheet is empty"),
    "nul-byte": (b"Serial,MAC\nSN\x001,52:54:00:00:00:01\n", ":2:Serial: contains a control"),
    "latin-1": ("Serial,Notes\nSN1,café\n".encode("latin-1"), ":2: not UTF-8 text"),
    "cp1252": ("Serial,Notes\nSN1,“quoted”\n".encode("cp1252"), ":2: not UTF-8 text"),
    "bad-utf16": (codecs.BOM_UTF16_LE + b"S\x00\x00\xd8", ":1: not UTF-16 text"),
    "unbalanced-quote": (
        b'Serial,MAC\nSN1,"52:54:00:00:00:01\nSN2,52:54:00:00:00:02\n',
        ":2:MAC: contains a control character",
    ),
    "huge-field": (b'Serial,Notes\nSN1,"' + b"x" * 200_000 + b'"\n', ":2: malformed CSV: field"),
    "mixed-delimiters": (
        b"Serial,MAC\nSN1;52:54:00:00:00:01\nSN2,52:54:00:00:00:02\n",
        ":2:Serial: 'SN1;52:54:00:00:00:01' is not a valid serial",
    ),
    "repeated-header": (
        b"ServiceTag,MAC\nSN1,52:54:00:00:00:01\nServiceTag,MAC\nSN2,52:54:00:00:00:02\n",
        ":3:ServiceTag: repeats the column header 'ServiceTag'",
    ),
    "header-only": (b"Serial,MAC\r\n", "no rows to import below the header"),
}


@pytest.mark.parametrize("case", sorted(CSV_REFUSED))
def test_bad_csv_is_refused(cli, site: Site, tmp_path: Path, case: str) -> None:
    data, message = CSV_REFUSED[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    assert_refused(site, cli, path, f"{path}{message}" if message[0] == ":" else message)


@pytest.mark.parametrize(
    "data",
    [
        b"Serial,MAC\r\nSN1,52:54:00:00:00:01\r\nSN2,52:54:00:00:00:02\r\n",  # CRLF (Excel)
        b"Serial,MAC\rSN1,52:54:00:00:00:01\rSN2,52:54:00:00:00:02\r",  # lone CR (old Mac)
        "Serial\tMAC\r\nSN1\t52:54:00:00:00:01\r\nSN2\t52:54:00:00:00:02\r\n".encode("utf-16"),
    ],
    ids=["crlf", "cr", "utf16-unicode-text"],
)
def test_line_ends_and_excel_unicode_text_import(
    cli, site: Site, tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(data)
    run = cli("import", path)
    assert run.exit_code == 0, run.stderr
    with site.db() as db:
        assert get_node(db, "SN2").mac == "52:54:00:00:00:02"


# ---------------------------------------------------------------------------------------------
# Paths that are not sheet files


def test_paths_that_are_not_files(cli, site: Site, tmp_path: Path) -> None:
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop.name)
    assert_refused(site, cli, loop, "cannot open: Too many levels of symbolic links")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert_refused(site, cli, fifo, "not a regular file")
    assert_refused(site, cli, tmp_path, "is a directory")
    assert_refused(site, cli, tmp_path / "missing.xlsx", "no such file")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_unreadable_file(cli, site: Site, tmp_path: Path, suffix: str) -> None:
    """chmod 000 means nothing to root (the tests run as root): /proc/self/mem is a regular
    file whose first read fails with EIO for everyone."""
    path = tmp_path / f"unreadable{suffix}"
    path.symlink_to("/proc/self/mem")
    assert_refused(site, cli, path, "Input/output error")


# ---------------------------------------------------------------------------------------------
# A real process: stderr has the message and no traceback


@pytest.mark.parametrize(
    ("name", "build", "message"),
    [
        ("enc.xlsx", encrypted_xlsx, "password-protected"),
        ("none.xlsx", lambda p: raw_xlsx(p, []), "no worksheets"),
        ("mem.csv", lambda p: p.symlink_to("/proc/self/mem"), "Input/output error"),
    ],
)
def test_python_dash_m_import_has_no_traceback(
    site: Site, tmp_path: Path, name: str, build: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / name
    build(path)
    before = snapshot(site)
    proc = subprocess.run(
        [sys.executable, "-m", "bmprov", "import", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BMPROV_CONFIG": str(site.config_path)},
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"Error: {path}: " in proc.stderr and message in proc.stderr
    assert snapshot(site) == before


# ---------------------------------------------------------------------------------------------
# Property: whatever the bytes, exit 0 or 2, and exit 2 leaves the state file as it was

_PARTS: dict[str, bytes] = {}


def _good_parts() -> dict[str, bytes]:
    """The members of a real two-row workbook, to mutate."""
    if not _PARTS:
        buffer = io.BytesIO()
        wb = openpyxl.Workbook()
        wb.active.append(HEADER)
        wb.active.append(GOOD)
        wb.save(buffer)
        with zipfile.ZipFile(buffer) as z:
            _PARTS.update({n: z.read(n) for n in z.namelist()})
    return _PARTS


@st.composite
def hostile_zips(draw: st.DrawFn) -> bytes:
    """A zip of a real workbook's members, some dropped, truncated or replaced by noise."""
    members: dict[str, bytes] = {}
    for name, data in _good_parts().items():
        how = draw(st.sampled_from(["keep", "keep", "drop", "cut", "noise"]))
        if how == "keep":
            members[name] = data
        elif how == "cut":
            members[name] = data[: draw(st.integers(0, len(data)))]
        elif how == "noise":
            members[name] = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        members[draw(st.sampled_from(["mimetype", "xl/extra.xml", "x"]))] = draw(st.binary())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    raw = buffer.getvalue()
    return raw[: draw(st.integers(len(raw) // 2, len(raw)))] if draw(st.booleans()) else raw


csv_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                *(b"Serial", b"MAC", b"SN1", b"52:54:00:00:00:01", b",", b";", b"\t", b'"'),
                *(b"\n", b"\r", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"#N/A", b"\xe9"),
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


def _exits_0_or_2_and_refusal_writes_nothing(site: Site, cli, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    before = snapshot(site)
    run = cli("import", path)
    assert run.exit_code in (0, 2), (run.exit_code, run.stderr)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    if run.exit_code == 2:
        assert str(path) in run.stderr
        assert snapshot(site) == before


_PROPERTY = settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "100")),  # 4000 passes too (~3 min)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_PROPERTY
@given(data=csv_bytes)
def test_any_bytes_as_csv(cli, site: Site, tmp_path: Path, data: bytes) -> None:
    _exits_0_or_2_and_refusal_writes_nothing(site, cli, tmp_path / "fuzz.csv", data)


@_PROPERTY
@given(data=st.one_of(hostile_zips(), st.binary(max_size=300)))
def test_any_zip_as_xlsx(cli, site: Site, tmp_path: Path, data: bytes) -> None:
    _exits_0_or_2_and_refusal_writes_nothing(site, cli, tmp_path / "fuzz.xlsx", data)
