"""``bmprov import``: procurement sheet → nodes in the state file, all or nothing.

Three phases:

1. :func:`read_rows` reads the sheet, maps headers through :data:`COLUMNS` aliases and validates
   every cell (no database access); every problem becomes a located :class:`Problem`.
2. :func:`plan_import` compares the rows with the state file (inside the caller's transaction):
   duplicate serials/MACs/host names within the sheet or against other nodes are problems;
   each valid row is *new*, *changed* (with the changed fields) or *unchanged*.
3. :func:`apply_plan` writes the plan in bulk through the state layer, in the same transaction.

If any row has a problem, nothing is written. Blank cells never clear stored values (a MAC
learned by discovery survives a re-import of a sheet that lacks it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from bmprov import bulkcheck, install_options, osprofiles, states, validate
from bmprov.config import Config
from bmprov.errors import InputError, Problem, ValidationFailed
from bmprov.nodes import NODE_FIELDS
from bmprov.sheets import Cell, Sheet, open_sheet
from bmprov.store import NodeUpdate, Store

Target = Literal["node", "macs", "install"]


@dataclass(frozen=True)
class Column:
    """A sheet column bmprov understands: its field, header aliases, parser and destination."""

    field: str
    aliases: tuple[str, ...]
    parse: Callable[[str], Any]
    target: Target = "node"
    cached: bool = False  # values repeat a lot (model, OS, rack): validate each distinct one once
    numeric_ok: bool = True  # False: a number cell means the spreadsheet mangled the value
    bulk: bulkcheck.BulkCheck | None = None  # whole-column fast path


COLUMNS: list[Column] = [
    Column(
        "serial",
        (
            "serial",
            "serialnumber",
            "serialno",
            "sn",
            "servicetag",
            "s/n",
            "chassisserial",
            "systemserial",
        ),
        validate.serial,
        bulk=bulkcheck.serials,
    ),
    Column(
        "macs",
        (
            "mac",
            "macaddress",
            "macs",
            "macaddresses",
            "bootmac",
            "pxemac",
            "hwaddress",
            "hardwareaddress",
            "nicmac",
            "ethernetaddress",
        ),
        lambda v: tuple(validate.macs(v)) or None,
        target="macs",
        numeric_ok=False,
        bulk=bulkcheck.macs,
    ),
    Column(
        "model",
        ("model", "hardwaremodel", "servermodel", "modelname", "product", "productname"),
        validate.model,
        cached=True,
    ),
    Column(
        "os",
        ("os", "operatingsystem", "osversion", "osimage", "image", "osprofile"),
        lambda v: validate.token(v, "OS name"),
        cached=True,
    ),
    Column(
        "hostname",
        ("hostname", "host", "fqdn", "servername", "nodename"),
        validate.hostname,
        bulk=bulkcheck.hostnames,
    ),
    Column(
        "site",
        ("site", "datacenter", "datacentre", "dc", "location"),
        lambda v: validate.token(v, "site"),
        cached=True,
    ),
    Column(
        "rack",
        ("rack", "rackname", "rackid", "cabinet"),
        lambda v: validate.token(v, "rack"),
        cached=True,
    ),
    Column(
        "unit",
        ("unit", "u", "rackunit", "ru", "rackposition", "position", "slot"),
        validate.unit,
        cached=True,
    ),
    Column(
        "notes", ("notes", "note", "comment", "comments", "remarks"), validate.notes, cached=True
    ),
    Column(
        "asset_tag",
        ("assettag", "asset", "assetnumber", "assetid", "inventorynumber"),
        validate.asset_tag,
        bulk=bulkcheck.asset_tags,
    ),
    Column(
        "bmc_address",
        (
            "bmc",
            "bmcaddress",
            "bmcip",
            "ipmi",
            "ipmiaddress",
            "ipmiip",
            "idrac",
            "ilo",
            "oob",
            "oobaddress",
            "oobip",
        ),
        validate.bmc_address,
        bulk=bulkcheck.bmc_addresses,
    ),
    Column(
        "bmc_type",
        ("bmctype", "bmcdriver", "powerdriver", "oobtype"),
        validate.bmc_type,
        cached=True,
    ),
    # OS install options (bmprov.install_options); a plain root password is hashed here.
    Column(
        "root_password_hash",
        ("rootpassword", "rootpw", "rootpass", "rootpasswordhash", "rootpwhash"),
        install_options.root_password,
        target="install",
        cached=True,  # hash each distinct cell once (SHA-512 crypt is slow on purpose)
    ),
    Column(
        "ssh_key",
        ("sshkey", "sshpublickey", "publickey", "authorizedkey", "rootsshkey"),
        install_options.ssh_key,
        target="install",
    ),
    Column(
        "partition_scheme",
        ("partitionscheme", "partitioning", "partitionlayout", "diskscheme", "raid", "storage"),
        install_options.partition_scheme,
        target="install",
        cached=True,
    ),
    Column(
        "disks",
        ("diskcount", "numdisks", "disknumber", "drives", "drivecount"),
        install_options.disk_count,
        target="install",
        cached=True,
    ),
    Column(
        "post_script",
        ("postscript", "postinstall", "postinstallscript"),
        install_options.post_script,
        target="install",
        cached=True,
    ),
    Column(
        "callback_url",
        ("callbackurl", "callback", "postinstallcallback", "postinstallcallbackurl", "notifyurl"),
        install_options.callback_url,
        target="install",
        cached=True,
    ),
]
"""Known columns. Features add their own (install options) by appending here."""

ROW_CHECKS: list[Callable[[dict[str, Any]], tuple[str, str] | None]] = [
    install_options.row_check,
]
"""Checks across the cells of one row → ``(field, message)`` for a problem, or None.

They see the row's install options and node fields, and run for sheets with install columns."""

NODE_COLUMNS = tuple(f for f in NODE_FIELDS if f != "serial")
"""Node fields a sheet row carries besides its serial, in the order SheetRow.node keeps them."""
NODE_INDEX = {name: i for i, name in enumerate(NODE_COLUMNS)}
OS_AT = NODE_INDEX["os"]
_NO_INSTALL: dict[str, Any] = {}


def header_key(text: str) -> str:
    """Header text reduced for alias matching: case, spaces and punctuation ignored."""
    return re.sub(r"[^a-z0-9/]", "", text.lower())


def _alias_index() -> dict[str, Column]:
    return {header_key(alias): col for col in COLUMNS for alias in (col.field, *col.aliases)}


@dataclass(slots=True)
class SheetRow:
    """One valid sheet row. ``node`` follows NODE_COLUMNS; None = blank (keeps stored value)."""

    row: int
    serial: str
    node: tuple[Any, ...]
    macs: tuple[str, ...] | None = None
    install: dict[str, Any] = field(default_factory=dict)
    automated: bool = False

    def value(self, name: str) -> Any:
        """A node field's value from the sheet (None when the cell was blank)."""
        return self.node[NODE_INDEX[name]]

    @property
    def values(self) -> dict[str, Any]:
        """The non-blank node fields, by name."""
        return {k: v for k, v in zip(NODE_COLUMNS, self.node, strict=True) if v is not None}


@dataclass
class ReadResult:
    """The parsed sheet: valid rows, located problems, and columns bmprov ignored."""

    file: str
    rows: list[SheetRow]
    problems: list[Problem]
    unknown_columns: list[str]
    headers: dict[str, str]  # field -> the header text this sheet uses for it


DATE_OK = frozenset({"notes"})
"""Fields where a date cell is plausible (a delivery date in the notes) and kept as ISO text."""

EXCEL_ERRORS = frozenset(
    [
        "#NULL!",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#N/A",
        "#GETTING_DATA",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
    ]
)
"""What a spreadsheet shows in a cell whose formula failed (an error cell, or a CSV export of
one): never a value, always a located problem."""


def cell_text(cell: Cell, column: Column) -> str:
    """A cell as text, refusing values a spreadsheet has already damaged."""
    if type(cell) is str:
        return cell
    if cell is None:
        return ""
    if isinstance(cell, bool):
        raise ValueError("is TRUE/FALSE; expected text")
    if isinstance(cell, int | float):
        if not column.numeric_ok:
            raise ValueError(
                "was stored as a number, so the spreadsheet may have dropped digits; "
                "format the column as Text and retype it"
            )
        if isinstance(cell, float) and not cell.is_integer():
            return repr(cell)
        if abs(cell) >= 10**15:
            raise ValueError(
                "is a number too large to be exact; format the column as Text and retype it"
            )
        return str(int(cell))
    if isinstance(cell, dt.date | dt.time | dt.timedelta) and column.field not in DATE_OK:
        kind = "a duration" if isinstance(cell, dt.timedelta) else "a date or time"
        raise ValueError(
            f"is {kind} ({cell}): the spreadsheet converted what was typed; "
            "format the column as Text and retype it"
        )
    return str(cell)


def read_rows(path: Path, config: Config, sheet: str | None = None) -> ReadResult:
    """Read and validate every row of a sheet; never touches the state file."""
    return check_sheet(open_sheet(path, sheet), config)


def check_sheet(data: Sheet, config: Config) -> ReadResult:
    """Validate every row of a sheet that has been read: located problems, never a DB access."""
    name = data.file
    index = _alias_index()
    problems: list[Problem] = []
    columns: list[tuple[int, Column, str]] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for i, text in enumerate(data.header):
        if not text:
            continue
        col = index.get(header_key(text))
        if col is None:
            unknown.append(_clip(text) or "")  # a 100 kB header cell is not echoed
        elif col.field in seen:
            problems.append(
                Problem(
                    name,
                    data.header_row,
                    text,
                    f"second column for {col.field} (first: {seen[col.field]!r})",
                )
            )
        else:
            seen[col.field] = text
            columns.append((i, col, text))
    if "serial" not in seen:
        aliases = ", ".join(next(c for c in COLUMNS if c.field == "serial").aliases[:5])
        problems.append(
            Problem(name, data.header_row, None, f"no serial column (a header such as: {aliases})")
        )
        return ReadResult(name, [], problems, unknown, seen)
    default_site = config.section("import").get("default_site")
    rows = _parse(data, columns, problems, default_site)
    _check_duplicates(name, rows, seen, problems)
    return ReadResult(name, rows, problems, unknown, seen)


@dataclass
class _Parsed:
    """Column-wise parse state: values per field, and rows that had a bad cell."""

    numbers: list[int]
    values: dict[str, list[Any]] = field(default_factory=dict)
    bad: bytearray = field(default_factory=bytearray)
    blank: set[int] = field(default_factory=set)


def _parse(
    data: Sheet,
    columns: list[tuple[int, Column, str]],
    problems: list[Problem],
    default_site: str | None,
) -> list[SheetRow]:
    name = data.file
    n = len(data.rows)
    state = _Parsed(
        numbers=list(range(data.header_row + 1, data.header_row + 1 + n)), bad=bytearray(n)
    )
    all_columns = data.columns()
    cells_by_column = [all_columns[i] for i, _, _ in columns]
    data.rows = []  # the columns hold every cell now; free the row lists (peak memory)
    texts_by_field: dict[str, list[str]] = {}
    for cells, (_, col, header) in zip(cells_by_column, columns, strict=True):
        texts = _texts(name, cells, col, header, problems, state)
        texts_by_field[col.field] = texts
        state.values[col.field] = _validate_column(name, texts, col, header, problems, state)
    # A row is blank when every cell is; only a row without a serial can be.
    serials = state.values["serial"]
    unnamed = [k for k, v in enumerate(serials) if v is None and not state.bad[k]]
    serial_header = seen_header(columns, "serial")
    for k in unnamed:
        if any(texts[k] for texts in texts_by_field.values()):
            problems.append(Problem(name, state.numbers[k], serial_header, "serial is blank"))
            state.bad[k] = 1
        else:
            state.blank.add(k)

    def report(k: int, field_name: str, message: str) -> None:
        problems.append(Problem(name, state.numbers[k], seen_header(columns, field_name), message))

    return _assemble(state, default_site, report)


def seen_header(columns: list[tuple[int, Column, str]], field_name: str) -> str | None:
    """The header text a sheet uses for a field."""
    return next((h for _, c, h in columns if c.field == field_name), None)


def _texts(
    name: str,
    cells: tuple[Cell, ...],
    col: Column,
    header: str,
    problems: list[Problem],
    state: _Parsed,
) -> list[str]:
    """A column's cells as text ('' for blank); damaged cells are problems."""
    texts: list[str]
    if set(map(type, cells)) <= {str}:
        texts = cast("list[str]", list(cells))
    else:
        texts = [c if type(c) is str else "" for c in cells]
        for k, cell in enumerate(cells):
            if cell is not None and type(cell) is not str:
                try:
                    texts[k] = cell_text(cell, col)
                except ValueError as exc:
                    problems.append(Problem(name, state.numbers[k], header, str(exc)))
                    state.bad[k] = 1
    if any(map(str.isspace, texts)):
        for k, text in enumerate(texts):
            if text.isspace():
                texts[k] = ""
                try:
                    validate.reject_control(text)
                except ValueError as exc:
                    problems.append(Problem(name, state.numbers[k], header, str(exc)))
                    state.bad[k] = 1
    _suspect_cells(name, texts, header, problems, state)
    return texts


def _suspect_cells(
    name: str, texts: list[str], header: str, problems: list[Problem], state: _Parsed
) -> None:
    """Formula errors (#N/A...) and a repeat of the column's own header (a second sheet pasted
    below the first) are located problems, never values. The usual case is two substring
    searches over the joined column (~2 ms per 100,000 cells; a set or list test is 10x that)."""
    joined = "\n" + "\n".join(texts) + "\n"
    if "#" not in joined and f"\n{header}\n" not in joined:
        return
    for k, text in enumerate(texts):
        if text == header:
            message = f"repeats the column header {header!r} (a second header row?); delete the row"
        elif text in EXCEL_ERRORS:
            message = f"cell shows the spreadsheet error {text}; fix the formula or type the value"
        else:
            continue
        problems.append(Problem(name, state.numbers[k], header, message))
        state.bad[k] = 1
        texts[k] = ""


def _validate_column(
    name: str,
    texts: list[str],
    col: Column,
    header: str,
    problems: list[Problem],
    state: _Parsed,
) -> list[Any]:
    """Parsed values of one column (None = blank or bad); bulk first, per cell to locate errors."""
    if col.bulk is not None:
        fast = col.bulk(texts)
        if fast is not None:
            return fast
    if col.cached:
        parsed: dict[str, Any] = {"": None}
        errors: dict[str, str] = {}
        for text in set(texts):
            if text not in parsed:
                try:
                    parsed[text] = col.parse(text)
                except ValueError as exc:
                    errors[text] = str(exc)
        if errors:
            for k, text in enumerate(texts):
                if text in errors:
                    problems.append(Problem(name, state.numbers[k], header, errors[text]))
                    state.bad[k] = 1
        return list(map(parsed.get, texts))
    values: list[Any] = []
    for k, text in enumerate(texts):
        if not text:
            values.append(None)
            continue
        try:
            values.append(col.parse(text))
        except ValueError as exc:
            problems.append(Problem(name, state.numbers[k], header, str(exc)))
            state.bad[k] = 1
            values.append(None)
    return values


def _assemble(
    state: _Parsed, default_site: str | None, report: Callable[[int, str, str], None]
) -> list[SheetRow]:
    n = len(state.numbers)
    none = [None] * n
    by_target = {c.field: c.target for c in COLUMNS}
    node_lists = [state.values.get(c, none) for c in NODE_COLUMNS]
    if default_site:
        node_lists[NODE_INDEX["site"]] = [
            default_site if v is None else v for v in node_lists[NODE_INDEX["site"]]
        ]
    install_fields = [f for f in state.values if by_target.get(f) == "install"]
    installs: list[dict[str, Any]] = [_NO_INSTALL] * n
    if install_fields:
        columns = [state.values[f] for f in install_fields]
        installs = [
            {f: v for f, v in zip(install_fields, values, strict=True) if v is not None}
            for values in zip(*columns, strict=True)
        ]
    # One SheetRow per row, built by map() in C; rows with a bad or blank cell dropped after.
    rows = list(
        map(
            SheetRow,
            state.numbers,
            state.values["serial"],
            zip(*node_lists, strict=True),
            state.values.get("macs", none),
            installs,
        )
    )
    skip = set(state.blank)
    if any(state.bad):
        skip.update(k for k, b in enumerate(state.bad) if b)
    if install_fields and ROW_CHECKS:
        skip.update(
            k
            for k, r in enumerate(rows)
            if k not in skip and r.install and _row_problems(k, r.node, r.install, report)
        )
    return [r for k, r in enumerate(rows) if k not in skip] if skip else rows


def _row_problems(
    k: int,
    node: tuple[Any, ...],
    install: dict[str, Any],
    report: Callable[[int, str, str], None],
) -> bool:
    values = {**dict(zip(NODE_COLUMNS, node, strict=True)), **install}
    found = [p for p in (check(values) for check in ROW_CHECKS) if p]
    for field_name, message in found:
        report(k, field_name, message)
    return bool(found)


def _check_duplicates(
    name: str, rows: list[SheetRow], headers: dict[str, str], problems: list[Problem]
) -> None:
    serials = [r.serial.casefold() for r in rows]
    macs = [m for r in rows for m in r.macs or ()]
    hosts = [h for r in rows if (h := r.value("hostname"))]
    if (
        len(set(serials)) == len(serials)
        and len(set(macs)) == len(macs)
        and len(set(hosts)) == len(hosts)
    ):
        return  # the usual case: no duplicates at all
    first_serial: dict[str, int] = {}
    first_mac: dict[str, int] = {}
    first_host: dict[str, int] = {}
    keep: list[SheetRow] = []
    for r in rows:
        found: list[Problem] = []
        key = r.serial.casefold()
        if key in first_serial:
            found.append(
                Problem(
                    name,
                    r.row,
                    headers["serial"],
                    f"duplicate serial {r.serial} (also on row {first_serial[key]})",
                )
            )
        first_serial.setdefault(key, r.row)
        for m in r.macs or ():
            if first_mac.get(m, r.row) != r.row:
                found.append(
                    Problem(
                        name,
                        r.row,
                        headers.get("macs"),
                        f"duplicate MAC {m} (also on row {first_mac[m]})",
                    )
                )
            first_mac.setdefault(m, r.row)
        if r.macs and len(set(r.macs)) != len(r.macs):
            found.append(Problem(name, r.row, headers.get("macs"), "the same MAC twice"))
        host = r.value("hostname")
        if host and host in first_host:
            found.append(
                Problem(
                    name,
                    r.row,
                    headers.get("hostname"),
                    f"duplicate host name {host} (also on row {first_host[host]})",
                )
            )
        if host:
            first_host.setdefault(host, r.row)
        problems.extend(found)
        if not found:
            keep.append(r)
    rows[:] = keep


@dataclass
class Change:
    """A node the sheet changes: its id, row and ``{field: (old, new)}``."""

    row: SheetRow
    node_id: int
    changes: dict[str, tuple[Any, Any]]
    stage: str


@dataclass
class ImportPlan:
    """What an import will do (or did)."""

    file: str
    new: list[SheetRow] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    written: bool = False
    warnings: list[Problem] = field(default_factory=list)  # imported anyway (unknown OS...)

    def to_dict(self, dry_run: bool) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "file": self.file,
            "dry_run": dry_run,
            "written": self.written,
            "counts": {
                "new": len(self.new),
                "changed": len(self.changed),
                "unchanged": len(self.unchanged),
            },
            "new": [r.serial for r in self.new],
            "changed": [
                {
                    "serial": c.row.serial,
                    "row": c.row.row,
                    "changes": {k: [old, new] for k, (old, new) in c.changes.items()},
                }
                for c in self.changed
            ],
            "unknown_columns": self.unknown_columns,
            "warnings": [{**asdict(p), "text": str(p)} for p in self.warnings],
        }


@dataclass
class StoredNodes:
    """The state file's view of its nodes, for :func:`plan_import`."""

    nodes: dict[str, tuple[int, str, int, str, tuple[Any, ...]]]
    """serial → (id, stage, automated, install_options JSON, node fields in NODE_COLUMNS order)"""
    macs: dict[int, tuple[str, ...]]  # node id -> MACs in order
    mac_owner: dict[str, str]
    host_owner: dict[str, str]


def load_stored(db: Store) -> StoredNodes:
    """The nodes, MACs and host names in the state file.

    Row by row, with equal values (model, rack, stage…) shared as one object: 100,000 nodes add
    about 105 MB of RSS this way; a fetchall() with a copy per value added about 190 MB.
    """
    names = ("serial", "id", "stage", "automated", "install_options", *NODE_COLUMNS)
    one_of: dict[Any, Any] = {}  # value -> the one object that stands for it
    shared = one_of.setdefault
    nodes: dict[str, tuple[int, str, int, str, tuple[Any, ...]]] = {}
    for serial, node_id, stage, automated, install, *fields in db.iter_node_columns(names):
        nodes[serial] = (
            node_id,
            shared(stage, stage),
            automated,
            shared(install, install),
            tuple(map(shared, fields, fields)),
        )
    serial_of = {t[0]: s for s, t in nodes.items()}
    lists: dict[int, list[str]] = {}
    mac_owner: dict[str, str] = {}
    for mac, node_id in db.iter_macs():
        lists.setdefault(node_id, []).append(mac)
        mac_owner[mac] = serial_of[node_id]
    macs = {node_id: tuple(m) for node_id, m in lists.items()}
    host = NODE_INDEX["hostname"]
    host_owner = {t[4][host]: s for s, t in nodes.items() if t[4][host]}
    return StoredNodes(nodes, macs, mac_owner, host_owner)


def plan_import(db: Store, config: Config, read: ReadResult) -> tuple[ImportPlan, list[Problem]]:
    """Compare valid rows with the state file. Call inside a transaction for a consistent view."""
    plan = ImportPlan(file=read.file, unknown_columns=read.unknown_columns)
    problems: list[Problem] = []
    state = load_stored(db)
    marker_at = NODE_INDEX.get(config.marker_field, NODE_INDEX["notes"])
    pattern = config.marker_pattern
    marked: dict[Any, bool] = {}  # marker cell -> does it match (cells repeat: test each once)

    def is_marked(value: Any) -> bool:
        flag = marked.get(value)
        if flag is None:
            flag = marked[value] = bool(pattern.search(str(value or "")))
        return flag

    claiming = _claiming_others(read.rows, state)
    if claiming:
        sheet_rows = {r.serial: r for r in read.rows}
        for r in claiming:
            _check_against_state(read, r, sheet_rows, state, problems)
    stored_nodes, stored_macs, new, unchanged = state.nodes, state.macs, plan.new, plan.unchanged
    for r in read.rows:
        ex = stored_nodes.get(r.serial)
        if ex is None:
            r.automated = is_marked(r.node[marker_at])
            new.append(r)
            continue
        value = r.node[marker_at]
        r.automated = is_marked(ex[4][marker_at] if value is None else value)
        macs = stored_macs.get(ex[0], ())
        if r.node == ex[4] and r.macs in (None, macs) and not r.install and r.automated == ex[2]:
            unchanged.append(r.serial)  # the usual re-import row: nothing to compare further
            continue
        changes = _diff(ex, macs, r)
        if changes:
            plan.changed.append(Change(r, ex[0], changes, ex[1]))
        else:
            plan.unchanged.append(r.serial)
    return plan, problems


def _claiming_others(rows: list[SheetRow], state: StoredNodes) -> list[SheetRow]:
    """Rows with a MAC or host name that the state file gives to another serial (usually none;
    one pass, each lookup defaulting to the row's own serial)."""
    if not state.mac_owner and not state.host_owner:
        return []
    hostname = NODE_INDEX["hostname"]
    mac_owner, host_owner = state.mac_owner.get, state.host_owner.get
    claiming: list[SheetRow] = []
    for r in rows:
        serial, host = r.serial, r.node[hostname]
        if (host and host_owner(host, serial) != serial) or any(
            mac_owner(m, serial) != serial for m in r.macs or ()
        ):
            claiming.append(r)
    return claiming


def _check_against_state(
    read: ReadResult,
    r: SheetRow,
    sheet_rows: dict[str, SheetRow],
    state: StoredNodes,
    problems: list[Problem],
) -> None:
    for m in r.macs or ():
        owner = state.mac_owner.get(m)
        if owner and owner != r.serial and not _moves_away(sheet_rows.get(owner), m, "mac"):
            problems.append(
                Problem(
                    read.file,
                    r.row,
                    read.headers.get("macs"),
                    f"MAC {m} belongs to node {owner} in the state file",
                )
            )
    host = r.value("hostname")
    owner = state.host_owner.get(host) if host else None
    if owner and owner != r.serial and not _moves_away(sheet_rows.get(owner), host, "hostname"):
        problems.append(
            Problem(
                read.file,
                r.row,
                read.headers.get("hostname"),
                f"host name {host} belongs to node {owner} in the state file",
            )
        )


def _moves_away(owner_row: SheetRow | None, value: str, what: str) -> bool:
    """True when the same sheet gives the current owner a different MAC set / host name."""
    if owner_row is None:
        return False
    if what == "mac":
        return owner_row.macs is not None and value not in owner_row.macs
    host = owner_row.value("hostname")
    return bool(host) and host != value


def _diff(
    ex: tuple[int, str, int, str, tuple[Any, ...]], macs: tuple[str, ...], r: SheetRow
) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    stored = ex[4]
    if r.node != stored and any(
        v is not None and v != old for v, old in zip(r.node, stored, strict=True)
    ):
        for name, v, old in zip(NODE_COLUMNS, r.node, stored, strict=True):
            if v is not None and v != old:
                changes[name] = (old, v)
    if r.macs is not None and r.macs != macs:
        changes["macs"] = (list(macs), list(r.macs))
    if r.install and json.dumps(r.install, sort_keys=True) != ex[3]:
        install = json.loads(ex[3] or "{}")
        for key, value in r.install.items():
            if install.get(key) != value:
                changes[f"install.{key}"] = (install.get(key), value)
    if r.automated != bool(ex[2]):
        changes["automated"] = (bool(ex[2]), r.automated)
    return changes


def apply_plan(db: Store, plan: ImportPlan, command: str = "import") -> None:
    """Write a plan in bulk. Call inside the same transaction as :func:`plan_import`."""
    if plan.new:
        db.insert_nodes(
            (*NODE_COLUMNS, "serial", "install_options", "automated"),
            [
                (
                    *r.node,
                    r.serial,
                    json.dumps(r.install, sort_keys=True) if r.install else "{}",
                    int(r.automated),
                )
                for r in plan.new
            ],
            [r.macs or () for r in plan.new],
            states.PURCHASING,
            f"imported from {Path(plan.file).name}",
            command,
        )
    if plan.changed:
        db.update_nodes([_update(c) for c in plan.changed])
    plan.written = bool(plan.new or plan.changed)


def _update(change: Change) -> NodeUpdate:
    """The state layer's form of a changed row."""
    fields = {k: new for k, (_, new) in change.changes.items() if k in NODE_INDEX}
    if "automated" in change.changes:
        fields["automated"] = int(change.changes["automated"][1])
    install = change.row.install if any(k.startswith("install.") for k in change.changes) else None
    macs = tuple(change.row.macs or ()) if "macs" in change.changes else None
    return NodeUpdate(change.node_id, fields, macs, install)


def import_sheet(
    db: Store,
    config: Config,
    path: Path,
    *,
    sheet: str | None = None,
    dry_run: bool = False,
    command: str = "import",
) -> ImportPlan:
    """Validate a sheet and upsert its rows, all or nothing.

    Raises :class:`ValidationFailed` (nothing written) listing every located problem.
    """
    with _cyclic_gc_paused():
        read = read_rows(path, config, sheet)
        if not read.rows and not read.problems:
            raise InputError(f"{path}: no rows to import below the header row")
        if read.problems:
            raise ValidationFailed(
                _sorted(read.problems),
                f"{path}: {len(read.problems)} problem(s); nothing was imported",
            )
        with db.atomic():
            plan, problems = plan_import(db, config, read)
            if problems:
                raise ValidationFailed(
                    _sorted(problems), f"{path}: {len(problems)} problem(s); nothing was imported"
                )
            if not dry_run:
                apply_plan(db, plan, command)
    cells = [(r.row, r.node[OS_AT]) for r in read.rows if r.automated and r.node[OS_AT]]
    plan.warnings = osprofiles.sheet_warnings(config, read.file, read.headers.get("os"), cells)
    return plan


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the length of an import.

    An import allocates millions of small acyclic objects (cells, tuples, rows); the collector
    keeps re-walking them all and cost 0.6 s of a 2.2 s read of 100,000 rows. Reference counting
    still frees everything; the collector's previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sorted(problems: list[Problem]) -> list[Problem]:
    """By row then column, each message clipped (a 100 kB cell is not echoed in full)."""
    ordered = sorted(problems, key=lambda p: (p.row or 0, p.column or ""))
    return [Problem(p.file, p.row, _clip(p.column), _clip(p.message) or "") for p in ordered]


def _clip(text: str | None, keep: int = 120) -> str | None:
    """Long text as its start and end around an ellipsis."""
    if text is None or len(text) <= 2 * keep + 20:
        return text
    return f"{text[:keep]} …[{len(text) - 2 * keep} characters]… {text[-keep:]}"
