"""Import benchmark (issue 2): 100,000-row .xlsx, `bmprov import` vs python-calamine's bare read.

    .venv/bin/python bench/import_bench.py [--rows 100000] [--keep DIR]

Both are measured as whole processes (interpreter start-up included on both sides), with peak RSS
from wait4(). Then the unchanged sheet is imported again, which must write 0 rows.
Targets: import ≤ 2× the bare read, peak memory ≤ 300 MB, re-import writes nothing.

It also times the *floor* of any importer that keeps bmprov's state file: a process that reads the
sheet with calamine and writes its cells, unvalidated, into a fresh state file (same schema and
settings: nodes, MACs, history rows, one transaction). bmprov's import cannot be faster than that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BMPROV = [sys.executable, "-m", "bmprov"]
BARE_READ = (
    "import python_calamine,sys\n"
    "wb=python_calamine.CalamineWorkbook.from_path(sys.argv[1])\n"
    "n=sum(1 for _ in wb.get_sheet_by_index(0).iter_rows())\n"
    "print(n)\n"
)
BARE_READ_WRITE = (
    "import sys,python_calamine\n"
    "from bmprov.store import StateDB\n"
    "db=StateDB(sys.argv[2])\n"
    "rows=python_calamine.CalamineWorkbook.from_path(sys.argv[1]).get_sheet_by_index(0)"
    ".to_python()[1:]\n"
    "now='2026-01-01T00:00:00Z'\n"
    "with db.atomic() as c:\n"
    "    c.executemany('INSERT INTO nodes(id,serial,model,os,hostname,site,rack,unit,asset_tag,"
    "notes,install_options,automated,stage,created_at,updated_at,stage_changed_at) VALUES"
    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)',"
    " [(k+1,r[0],*r[2:10],'{}',1,'purchasing',now,now,now) for k,r in enumerate(rows)])\n"
    "    c.executemany('INSERT INTO macs(mac,node_id,position) VALUES (?,?,0)',"
    " [(r[1],k+1) for k,r in enumerate(rows)])\n"
    '    c.execute("INSERT INTO history(node_id,serial,from_stage,to_stage,at,reason,command)'
    " SELECT id,serial,NULL,'purchasing',?,'bench','bench' FROM nodes\",(now,))\n"
    "db.close()\n"
)
MODELS = ["PowerEdge R650", "ProLiant DL360 Gen10", "ThinkSystem SR630", "PowerEdge R760"]
OSES = ["rocky9", "ubuntu-22.04", "debian12"]


def generate(path: Path, rows: int) -> float:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    start = time.perf_counter()
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Purchases")
    ws.append(
        [
            "Serial Number",
            "MAC Address",
            "Hardware Model",
            "OS",
            "Hostname",
            "Site",
            "Rack",
            "Unit",
            "Asset Tag",
            "Notes",
        ]
    )
    for i in range(rows):
        mac = "52:54:" + ":".join(f"{(i >> shift) & 255:02x}" for shift in (24, 16, 8, 0))
        rack = f"R{i // 40:04d}"
        row = [
            f"SN{i:09d}",
            mac if i % 10 else mac.replace(":", "-").upper(),
            MODELS[i % 4],
            OSES[i % 3],
            f"n{i:06d}-{rack.lower()}",
            "dc1",
            rack,
            str(i % 40 + 1),
            f"AT-{i}",
            "provisioning_auto" if i % 7 else "manual",
        ]
        cells = []
        for value in row:
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = "@"
            cells.append(cell)
        ws.append(cells)
    wb.save(path)
    return time.perf_counter() - start


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB, stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {err[-2000:]}")
    return wall, usage.ru_maxrss // 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bmprov-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    sheet = work / f"purchases-{args.rows}.xlsx"
    if not sheet.exists():
        print(f"generating {sheet} ...", flush=True)
        print(f"  generated in {generate(sheet, args.rows):.1f} s")
    env = {**os.environ, "BMPROV_CONFIG": str(work / "bmprov.toml")}
    for f in work.glob("bmprov.sqlite*"):
        f.unlink()
    subprocess.run([*BMPROV, "init", str(work)], check=True, env=env, capture_output=True)
    bare = min(run([sys.executable, "-c", BARE_READ, str(sheet)])[:2] for _ in range(3))
    floors = []
    for _ in range(3):
        scratch = work / "floor.sqlite"
        for f in work.glob("floor.sqlite*"):
            f.unlink()
        floors.append(run([sys.executable, "-c", BARE_READ_WRITE, str(sheet), str(scratch)])[:2])
    floor = min(floors)
    imp_wall, imp_rss, _ = run([*BMPROV, "import", str(sheet), "--json"], env)
    re_wall, re_rss, out = run([*BMPROV, "import", str(sheet), "--json"], env)
    plan = json.loads(out)
    ratio = imp_wall / bare[0]
    print(f"rows: {args.rows}")
    print(f"bare calamine read : {bare[0]:6.2f} s  peak {bare[1]} MB")
    print(
        f"floor: bare read + unvalidated write of the same rows: {floor[0]:6.2f} s  "
        f"peak {floor[1]} MB  ({floor[0] / bare[0]:.2f}x the bare read)"
    )
    print(
        f"bmprov import      : {imp_wall:6.2f} s  peak {imp_rss} MB  ratio {ratio:.2f}x "
        f"(target <= 2.0x, <= 300 MB); {imp_wall / floor[0]:.2f}x the floor"
    )
    print(
        f"re-import unchanged: {re_wall:6.2f} s  peak {re_rss} MB  counts {plan['counts']} "
        f"written={plan['written']}"
    )
    ok = ratio <= 2.0 and imp_rss <= 300 and not plan["written"]
    print("RESULT:", "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
