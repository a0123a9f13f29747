"""``bmprov import``: procurement sheet → nodes in the state file, all or nothing.

Three phases:

1. :func:`read_rows` reads the sheet, maps headers through :data:`COLUMNS` aliases and validates
   every cell (no database access); every problem becomes a located :class:`Problem`.
2. :func:`plan_import` compares the rows with the state file (inside the caller's transaction):
   duplicate serials/MACs/host names within the sheet or against other nodes are problems;
   each valid row is *new*, *changed* (with the changed fields) or *unchanged*.
3. :func:`apply_plan` writes the plan in bulk (``executemany``), in the same transaction.

If any row has a problem, nothing is written. Blank cells never clear stored values (a MAC
learned by discovery survives a re-import of a sheet that lacks it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bmprov import install_options, states, validate
from bmprov.config import Config
from bmprov.db import StateDB, utcnow
from bmprov.errors import Problem, ValidationFailed
from bmprov.sheets import Cell, open_sheet

Target = Literal["node", "macs", "install"]


@dataclass(frozen=True)
class Column:
    """A sheet column bmprov understands: its field, header aliases, parser and destination."""

    field: str
    aliases: tuple[str, ...]
    parse: Callable[[str], Any]
    target: Target = "node"
    cached: bool = False  # values repeat a lot (model, OS, rack): memoise the parser
    numeric_ok: bool = True  # False: a number cell means the spreadsheet mangled the value


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
        validate.macs,
        target="macs",
        numeric_ok=False,
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
    Column("hostname", ("hostname", "host", "fqdn", "servername", "nodename"), validate.hostname),
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
    Column("notes", ("notes", "note", "comment", "comments", "remarks"), validate.notes),
    Column(
        "asset_tag",
        ("assettag", "asset", "assetnumber", "assetid", "inventorynumber"),
        validate.asset_tag,
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
"""Checks across the cells of one row → ``(field, message)`` for a problem, or None."""

NODE_COLUMNS = (
    "model",
    "os",
    "hostname",
    "site",
    "rack",
    "unit",
    "notes",
    "asset_tag",
    "bmc_address",
    "bmc_type",
)


def header_key(text: str) -> str:
    """Header text reduced for alias matching: case, spaces and punctuation ignored."""
    return re.sub(r"[^a-z0-9/]", "", text.lower()).replace("/", "/")


def _alias_index() -> dict[str, Column]:
    return {header_key(alias): col for col in COLUMNS for alias in (col.field, *col.aliases)}


@dataclass
class SheetRow:
    """One valid sheet row: the values of the cells that were not blank."""

    row: int
    serial: str
    values: dict[str, Any] = field(default_factory=dict)  # node fields
    macs: tuple[str, ...] | None = None
    install: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadResult:
    """The parsed sheet: valid rows, located problems, and columns bmprov ignored."""

    file: str
    rows: list[SheetRow]
    problems: list[Problem]
    unknown_columns: list[str]
    headers: dict[str, str]  # field -> the header text this sheet uses for it


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
    return str(cell)


def read_rows(path: Path, config: Config, sheet: str | None = None) -> ReadResult:
    """Read and validate every row of a sheet; never touches the state file."""
    data = open_sheet(path, sheet)
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
            unknown.append(text)
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
    rows = _parse_rows(name, data.rows, columns, problems, default_site)
    _check_duplicates(name, rows, seen, problems)
    return ReadResult(name, rows, problems, unknown, seen)


def _parse_rows(
    name: str,
    raw_rows: Iterable[tuple[int, list[Cell]]],
    columns: list[tuple[int, Column, str]],
    problems: list[Problem],
    default_site: str | None,
) -> list[SheetRow]:
    caches: dict[str, dict[str, Any]] = {col.field: {} for _, col, _ in columns if col.cached}
    rows: list[SheetRow] = []
    for number, cells in raw_rows:
        parsed: dict[str, Any] = {}
        bad = False
        blank_row = True
        for i, col, header in columns:
            cell = cells[i] if i < len(cells) else None
            try:
                text = cell_text(cell, col)
                if not text.strip():
                    if text:
                        validate.reject_control(text)
                    continue
                blank_row = False
                cache = caches.get(col.field)
                if cache is None:
                    parsed[col.field] = col.parse(text)
                elif text in cache:
                    parsed[col.field] = cache[text]
                else:
                    parsed[col.field] = cache[text] = col.parse(text)
            except ValueError as exc:
                blank_row = False
                bad = True
                problems.append(Problem(name, number, header, str(exc)))
        if blank_row:
            continue  # nothing in our columns (maybe a notes-only or spacer row)
        if "serial" not in parsed:
            if not bad:
                problems.append(
                    Problem(name, number, _header_of(columns, "serial"), "serial is blank")
                )
            continue
        if bad or _row_problems(name, number, parsed, columns, problems):
            continue
        if default_site and "site" not in parsed:
            parsed["site"] = default_site
        rows.append(_sheet_row(number, parsed))
    return rows


def _row_problems(
    name: str,
    number: int,
    parsed: dict[str, Any],
    columns: list[tuple[int, Column, str]],
    problems: list[Problem],
) -> bool:
    found = [p for p in (check(parsed) for check in ROW_CHECKS) if p]
    for field_name, message in found:
        problems.append(Problem(name, number, _header_of(columns, field_name), message))
    return bool(found)


def _header_of(columns: list[tuple[int, Column, str]], field_name: str) -> str | None:
    return next((h for _, c, h in columns if c.field == field_name), None)


def _sheet_row(number: int, parsed: dict[str, Any]) -> SheetRow:
    row = SheetRow(row=number, serial=parsed.pop("serial"))
    macs = parsed.pop("macs", None)
    row.macs = tuple(macs) if macs else None
    by_field = {c.field: c for c in COLUMNS}
    for key, value in parsed.items():
        if by_field[key].target == "install":
            row.install[key] = value
        else:
            row.values[key] = value
    return row


def _check_duplicates(
    name: str, rows: list[SheetRow], headers: dict[str, str], problems: list[Problem]
) -> None:
    first_serial: dict[str, int] = {}
    first_mac: dict[str, int] = {}
    first_host: dict[str, int] = {}
    keep: list[SheetRow] = []
    for r in rows:
        ok = True
        key = r.serial.casefold()
        if key in first_serial:
            problems.append(
                Problem(
                    name,
                    r.row,
                    headers["serial"],
                    f"duplicate serial {r.serial} (also on row {first_serial[key]})",
                )
            )
            ok = False
        else:
            first_serial[key] = r.row
        for m in r.macs or ():
            if m in first_mac and first_mac[m] != r.row:
                problems.append(
                    Problem(
                        name,
                        r.row,
                        headers.get("macs"),
                        f"duplicate MAC {m} (also on row {first_mac[m]})",
                    )
                )
                ok = False
            first_mac.setdefault(m, r.row)
        if r.macs and len(set(r.macs)) != len(r.macs):
            problems.append(Problem(name, r.row, headers.get("macs"), "the same MAC twice"))
            ok = False
        host = r.values.get("hostname")
        if host:
            if host in first_host:
                problems.append(
                    Problem(
                        name,
                        r.row,
                        headers.get("hostname"),
                        f"duplicate host name {host} (also on row {first_host[host]})",
                    )
                )
                ok = False
            else:
                first_host[host] = r.row
        if ok:
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
        }


@dataclass
class _Existing:
    id: int
    stage: str
    values: dict[str, Any]
    install: dict[str, Any]
    automated: bool
    macs: list[str] = field(default_factory=list)


def _load_existing(db: StateDB) -> tuple[dict[str, _Existing], dict[str, str], dict[str, str]]:
    cols = ", ".join(NODE_COLUMNS)
    nodes: dict[str, _Existing] = {}
    by_id: dict[int, _Existing] = {}
    hosts: dict[str, str] = {}
    for r in db.conn.execute(
        f"SELECT id, serial, stage, install_options, automated, {cols} FROM nodes"
    ):
        values = {c: r[c] for c in NODE_COLUMNS}
        ex = _Existing(
            r["id"],
            r["stage"],
            values,
            json.loads(r["install_options"] or "{}"),
            bool(r["automated"]),
        )
        nodes[r["serial"]] = by_id[r["id"]] = ex
        if r["hostname"]:
            hosts[r["hostname"]] = r["serial"]
    serial_of = {ex.id: s for s, ex in nodes.items()}
    mac_owner: dict[str, str] = {}
    for mac, node_id in db.conn.execute("SELECT mac, node_id FROM macs ORDER BY node_id, position"):
        by_id[node_id].macs.append(mac)
        mac_owner[mac] = serial_of[node_id]
    return nodes, mac_owner, hosts


def plan_import(db: StateDB, config: Config, read: ReadResult) -> tuple[ImportPlan, list[Problem]]:
    """Compare valid rows with the state file. Call inside a transaction for a consistent view."""
    plan = ImportPlan(file=read.file, unknown_columns=read.unknown_columns)
    problems: list[Problem] = []
    existing, mac_owner, host_owner = _load_existing(db)
    sheet_rows = {r.serial: r for r in read.rows}
    marker_field = config.marker_field
    marker = config.marker_pattern
    for r in read.rows:
        _check_against_state(read, r, sheet_rows, mac_owner, host_owner, problems)
        ex = existing.get(r.serial)
        if ex is None:
            r.values["automated"] = bool(marker.search(str(r.values.get(marker_field) or "")))
            plan.new.append(r)
            continue
        changes = _diff(ex, r, marker_field, marker)
        if changes:
            plan.changed.append(Change(r, ex.id, changes, ex.stage))
        else:
            plan.unchanged.append(r.serial)
    return plan, problems


def _check_against_state(
    read: ReadResult,
    r: SheetRow,
    sheet_rows: dict[str, SheetRow],
    mac_owner: dict[str, str],
    host_owner: dict[str, str],
    problems: list[Problem],
) -> None:
    for m in r.macs or ():
        owner = mac_owner.get(m)
        if owner and owner != r.serial and not _moves_away(sheet_rows.get(owner), m, "mac"):
            problems.append(
                Problem(
                    read.file,
                    r.row,
                    read.headers.get("macs"),
                    f"MAC {m} belongs to node {owner} in the state file",
                )
            )
    host = str(r.values.get("hostname") or "")
    owner = host_owner.get(host) if host else None
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
    return bool(owner_row.values.get("hostname")) and owner_row.values["hostname"] != value


def _diff(
    ex: _Existing, r: SheetRow, marker_field: str, marker: re.Pattern[str]
) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for key, value in r.values.items():
        if ex.values.get(key) != value:
            changes[key] = (ex.values.get(key), value)
    if r.macs is not None and list(r.macs) != ex.macs:
        changes["macs"] = (list(ex.macs), list(r.macs))
    for key, value in r.install.items():
        if ex.install.get(key) != value:
            changes[f"install.{key}"] = (ex.install.get(key), value)
    effective = r.values.get(marker_field, ex.values.get(marker_field))
    automated = bool(marker.search(str(effective or "")))
    if automated != ex.automated:
        changes["automated"] = (ex.automated, automated)
    return changes


def apply_plan(db: StateDB, plan: ImportPlan, command: str = "import") -> None:
    """Write a plan in bulk. Call inside the same transaction as :func:`plan_import`."""
    conn = db.conn
    now = utcnow()
    if plan.new:
        next_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM nodes").fetchone()[0] + 1
        cols = (
            "id",
            "serial",
            *NODE_COLUMNS,
            "install_options",
            "automated",
            "stage",
            "created_at",
            "updated_at",
            "stage_changed_at",
        )
        node_rows, mac_rows, hist_rows = [], [], []
        for offset, r in enumerate(plan.new):
            node_id = next_id + offset
            node_rows.append(
                (
                    node_id,
                    r.serial,
                    *(r.values.get(c) for c in NODE_COLUMNS),
                    json.dumps(r.install, sort_keys=True),
                    int(r.values["automated"]),
                    states.PURCHASING,
                    now,
                    now,
                    now,
                )
            )
            mac_rows += [(m, node_id, pos) for pos, m in enumerate(r.macs or ())]
            hist_rows.append(
                (
                    node_id,
                    r.serial,
                    None,
                    states.PURCHASING,
                    now,
                    f"imported from {Path(plan.file).name} row {r.row}",
                    command,
                )
            )
        conn.executemany(
            f"INSERT INTO nodes({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            node_rows,
        )
        conn.executemany("INSERT INTO macs(mac, node_id, position) VALUES (?, ?, ?)", mac_rows)
        conn.executemany(
            "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            hist_rows,
        )
    if plan.changed:
        _apply_changes(db, plan.changed, now)
    plan.written = bool(plan.new or plan.changed)


def _apply_changes(db: StateDB, changed: list[Change], now: str) -> None:
    conn = db.conn
    # Clear moving host names and MACs first, so swaps between nodes never trip UNIQUE.
    conn.executemany(
        "UPDATE nodes SET hostname = NULL WHERE id = ?",
        [(c.node_id,) for c in changed if "hostname" in c.changes],
    )
    conn.executemany(
        "DELETE FROM macs WHERE node_id = ?", [(c.node_id,) for c in changed if "macs" in c.changes]
    )
    for c in changed:
        sets = {k: new for k, (_, new) in c.changes.items() if k in NODE_COLUMNS}
        if "automated" in c.changes:
            sets["automated"] = int(c.changes["automated"][1])
        if any(k.startswith("install.") for k in c.changes):
            merged = {**_current_install(db, c.node_id), **c.row.install}
            sets["install_options"] = json.dumps(merged, sort_keys=True)
        sets["updated_at"] = now
        assignments = ", ".join(f"{k} = ?" for k in sets)
        conn.execute(f"UPDATE nodes SET {assignments} WHERE id = ?", (*sets.values(), c.node_id))
        if "macs" in c.changes:
            conn.executemany(
                "INSERT INTO macs(mac, node_id, position) VALUES (?, ?, ?)",
                [(m, c.node_id, pos) for pos, m in enumerate(c.row.macs or ())],
            )


def _current_install(db: StateDB, node_id: int) -> dict[str, Any]:
    row = db.conn.execute("SELECT install_options FROM nodes WHERE id = ?", (node_id,)).fetchone()
    value: dict[str, Any] = json.loads(row[0] or "{}")
    return value


def import_sheet(
    db: StateDB,
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
    read = read_rows(path, config, sheet)
    if read.problems:
        raise ValidationFailed(
            _sorted(read.problems), f"{path}: {len(read.problems)} problem(s); nothing was imported"
        )
    with db.atomic():
        plan, problems = plan_import(db, config, read)
        if problems:
            raise ValidationFailed(
                _sorted(problems), f"{path}: {len(problems)} problem(s); nothing was imported"
            )
        if not dry_run:
            apply_plan(db, plan, command)
    return plan


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.row or 0, p.column or ""))
