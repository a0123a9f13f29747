"""Regenerate the sample procurement sheets (deterministic): `python sample_sheets/generate.py`.

- purchases.xlsx / purchases.csv: 36 servers in two racks of site dc1, MACs in every accepted
  notation, four serial-only rows (MAC learned later), a few rows not marked for automation.
- purchases_broken.csv / purchases_broken.xlsx: every validation error bmprov reports, once.
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = [
    "Serial Number",
    "MAC Address",
    "Hardware Model",
    "Operating System",
    "Hostname",
    "Site",
    "Rack",
    "Rack Unit",
    "Asset Tag",
    "BMC Address",
    "BMC Type",
    "Notes",
    "PO Number",
]
MODELS = ["PowerEdge R650", "ProLiant DL360 Gen10", "ThinkSystem SR630"]
OSES = ["rocky9", "ubuntu-22.04", "debian12"]


def _mac(i: int, style: int) -> str:
    octets = [0x52, 0x54, 0x00, 0x10, i // 256, i % 256]
    hexes = [f"{o:02x}" for o in octets]
    if style == 0:
        return ":".join(hexes)
    if style == 1:
        return "-".join(hexes).upper()
    if style == 2:
        joined = "".join(hexes)
        return ".".join(joined[k : k + 4] for k in range(0, 12, 4))
    return "".join(hexes).upper()


def good_rows() -> list[list[str]]:
    rows = [HEADER]
    for i in range(1, 37):
        rack = "R01" if i <= 18 else "R02"
        unit = (i - 1) % 18 + 1
        serial_only = i in (7, 16, 25, 34)
        manual = i in (12, 30)
        rows.append(
            [
                f"CZ2{i:07d}",
                "" if serial_only else _mac(i, i % 4),
                MODELS[i % 3],
                OSES[i % 3],
                f"dc1-{rack.lower()}-u{unit:02d}",
                "dc1",
                rack,
                str(unit),
                f"AT-{100000 + i}",
                f"10.30.0.{i}",
                "ipmi" if i % 5 else "redfish",
                "manual install by vendor" if manual else "provisioning_auto",
                f"PO-2026-{4400 + i // 10}",
            ]
        )
    return rows


BROKEN = [
    HEADER,
    [
        "CZ2BAD0001",
        "52:54:00:20:00:01",
        "PowerEdge R650",
        "rocky9",
        "ok-host-1",
        "dc1",
        "R03",
        "1",
        "AT-1",
        "10.30.1.1",
        "ipmi",
        "provisioning_auto",
        "PO-1",
    ],
    [
        "",
        "52:54:00:20:00:02",
        "PowerEdge R650",
        "rocky9",
        "h2",
        "dc1",
        "R03",
        "2",
        "",
        "",
        "",
        "blank serial",
        "",
    ],
    [
        "To Be Filled By O.E.M.",
        "52:54:00:20:00:03",
        "PowerEdge R650",
        "rocky9",
        "h3",
        "dc1",
        "R03",
        "3",
        "",
        "",
        "",
        "placeholder serial",
        "",
    ],
    [
        "0123456789",
        "52:54:00:20:00:04",
        "R650",
        "rocky9",
        "h4",
        "dc1",
        "R03",
        "4",
        "",
        "",
        "",
        "placeholder serial",
        "",
    ],
    [
        "CZ2 BAD 05",
        "52:54:00:20:00:05",
        "R650",
        "rocky9",
        "h5",
        "dc1",
        "R03",
        "5",
        "",
        "",
        "",
        "space in serial",
        "",
    ],
    [
        "CZ2BAD0001",
        "52:54:00:20:00:06",
        "R650",
        "rocky9",
        "h6",
        "dc1",
        "R03",
        "6",
        "",
        "",
        "",
        "duplicate serial",
        "",
    ],
    [
        "CZ2BAD0007",
        "52:54:00:20:00:0",
        "R650",
        "rocky9",
        "h7",
        "dc1",
        "R03",
        "7",
        "",
        "",
        "",
        "11 hex digits",
        "",
    ],
    [
        "CZ2BAD0008",
        "01:00:5e:00:00:08",
        "R650",
        "rocky9",
        "h8",
        "dc1",
        "R03",
        "8",
        "",
        "",
        "",
        "multicast MAC",
        "",
    ],
    [
        "CZ2BAD0009",
        "00:00:00:00:00:00",
        "R650",
        "rocky9",
        "h9",
        "dc1",
        "R03",
        "9",
        "",
        "",
        "",
        "zero MAC",
        "",
    ],
    [
        "CZ2BAD0010",
        "ff:ff:ff:ff:ff:ff",
        "R650",
        "rocky9",
        "h10",
        "dc1",
        "R03",
        "10",
        "",
        "",
        "",
        "broadcast MAC",
        "",
    ],
    [
        "CZ2BAD0011",
        "5254.0020.0001",
        "R650",
        "rocky9",
        "h11",
        "dc1",
        "R03",
        "11",
        "",
        "",
        "",
        "same MAC as row 2, other notation",
        "",
    ],
    [
        "CZ2BAD0012",
        "52:54:00:20:00:12",
        "R650",
        "rocky9",
        "-bad-host-",
        "dc1",
        "R03",
        "12",
        "",
        "",
        "",
        "bad host name",
        "",
    ],
    [
        "CZ2BAD0013",
        "52:54:00:20:00:13",
        "R650",
        "rocky9",
        "ok-host-1",
        "dc1",
        "R03",
        "13",
        "",
        "",
        "",
        "duplicate host name",
        "",
    ],
    [
        "CZ2BAD0014",
        "52:54:00:20:00:14",
        "R650",
        "rocky9",
        "h14",
        "dc1",
        "R03",
        "14",
        "",
        "",
        "",
        "line one\nline two",
        "",
    ],
    [
        "CZ2BAD0015",
        "52:54:00:20:00:15",
        "R650",
        "rocky9",
        "h15",
        "dc1",
        "R03",
        "99",
        "",
        "",
        "",
        "rack unit out of range",
        "",
    ],
    [
        "CZ2BAD0016",
        "52:54:00:20:00:16",
        "R650",
        "rocky9",
        "h16",
        "dc1",
        "R03",
        "16",
        "",
        "10.30.1.16",
        "telnet",
        "unknown BMC type",
        "",
    ],
    [
        "CZ2BAD0017",
        "52:54:00:20:00:17",
        "R650",
        "rocky9",
        "h17",
        "dc1",
        "R03",
        "17",
        "",
        "bmc_17!",
        "ipmi",
        "bad BMC address",
        "",
    ],
    [
        "CZ2BAD0018",
        "52:54:00:20:00:18",
        "R650",
        "rocky 9; reboot",
        "h18",
        "dc1",
        "R03",
        "18",
        "",
        "",
        "",
        "OS with shell characters",
        "",
    ],
    [
        "CZ2BAD0019",
        "52:54:00:20:00:19 x",
        "R650",
        "rocky9",
        "h19",
        "dc1",
        "R03",
        "19",
        "",
        "",
        "",
        "garbage after the MAC",
        "",
    ],
]


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def write_xlsx(path: Path, rows: list[list[object]]) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Purchases"
    for row in rows:
        sheet.append(row)
    for column_cells in sheet.iter_cols(min_row=2):
        for cell in column_cells:
            if isinstance(cell.value, str):
                cell.number_format = "@"  # text: the sheet keeps what procurement typed
    workbook.save(path)


def main() -> None:
    good = good_rows()
    write_csv(HERE / "purchases.csv", good)
    write_xlsx(HERE / "purchases.xlsx", good)
    write_csv(HERE / "purchases_broken.csv", BROKEN)
    # The xlsx twin adds the damage only a spreadsheet can do: a MAC and a serial stored as numbers.
    broken_xlsx: list[list[object]] = [list(r) for r in BROKEN]
    broken_xlsx.append(
        [
            "CZ2BAD0020",
            1122334455,
            "R650",
            "rocky9",
            "h20",
            "dc1",
            "R03",
            "20",
            "",
            "",
            "",
            "MAC typed as a number",
            "",
        ]
    )
    broken_xlsx.append(
        [
            1.2345678901234567e17,
            "52:54:00:20:00:21",
            "R650",
            "rocky9",
            "h21",
            "dc1",
            "R03",
            "21",
            "",
            "",
            "",
            "serial typed as a huge number",
            "",
        ]
    )
    write_xlsx(HERE / "purchases_broken.xlsx", broken_xlsx)


if __name__ == "__main__":
    main()
