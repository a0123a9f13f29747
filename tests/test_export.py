"""``bmprov export``: the bmprov sheet round-trips through ``import`` unchanged (a hypothesis
property), NetBox device CSV with mapped statuses, and ``import`` reads NetBox's headers."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from bmprov.config import load_config
from bmprov.exporting import NETBOX_COLUMNS, export
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Selection
from bmprov.setup_site import init_site
from bmprov.stages import ActionContext
from bmprov.store import StateDB
from tests.conftest import write_csv

HEADER = ["Serial Number", "MAC", "Model", "Hostname", "Rack", "U", "Asset Tag", "Notes", "Site"]
_WORD = s.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=2, max_size=10)
_NOTES = s.sampled_from(
    ["", "provisioning_auto", "spare; provisioning_auto", "rma <2024> & co", " padded "]
)


@s.composite
def sheets(draw: s.DrawFn) -> list[list[str]]:
    count = draw(s.integers(1, 12))
    rows = []
    for i in range(count):
        rows.append(
            [
                f"0{draw(_WORD)}X{i}",  # leading zeros survive, never a one-character serial
                draw(s.sampled_from(["", f"52:54:00:00:{i:02x}:{draw(s.integers(0, 255)):02x}"])),
                draw(s.sampled_from(["", "PowerEdge R650", "SYS-1029U (2U)"])),
                draw(s.sampled_from(["", f"node-{i}"])),
                draw(s.sampled_from(["", "R01", "R02"])),
                draw(s.sampled_from(["", "1", "42"])),
                draw(s.sampled_from(["", f"AT/{i}"])),
                draw(_NOTES),
                draw(s.sampled_from(["", "dc1"])),
            ]
        )
    return rows


def dump(db: StateDB) -> list[dict]:
    skip = {"created_at", "updated_at", "stage_changed_at", "id"}
    return [{k: v for k, v in n.to_dict().items() if k not in skip} for n in db.load_nodes()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=sheets(), suffix=s.sampled_from([".xlsx", ".csv"]))
def test_sheet_import_export_import_is_a_no_op(rows: list[list[str]], suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = init_site(Path(tmp) / "site")
        config = load_config(site.config_path)
        sheet = write_csv(Path(tmp) / "in.csv", [HEADER, *rows])
        with StateDB(config.state_path) as db:
            import_sheet(db, config, sheet)
            before = dump(db)
            history = sum(len(db.history(n.id)) for n in db.load_nodes())
            out = Path(tmp) / f"out{suffix}"
            assert export(db, out) == len(rows)
            plan = import_sheet(db, config, out)
            assert (len(plan.new), len(plan.changed), plan.unknown_columns) == (0, 0, [])
            assert dump(db) == before
            assert sum(len(db.history(n.id)) for n in db.load_nodes()) == history


def test_export_columns_stage_dates_and_filters(site, cli) -> None:
    rows = [["SN1", "02:31:00:00:08:01", "provisioning_auto", "R01"], ["SN2", "", "", "R02"]]
    write_csv(site.dir / "in.csv", [["serial", "mac", "notes", "rack"], *rows])
    assert cli("import", site.dir / "in.csv").exit_code == 0
    with site.db() as db:
        advance(ActionContext(site.config, db, "t"), Selection(serials=("SN1",)), "mounting")
    result = cli("export", site.dir / "out.csv", "--json")
    assert json.loads(result.stdout)["rows"] == 2
    with (site.dir / "out.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["Serial Number"] == "SN1"
    assert table[0]["Stage"] == "mounting"
    assert table[0]["purchasing entered"] and table[0]["mounting entered"]
    assert table[0]["Last Event"].endswith("advance --stage mounting")
    assert table[1]["mounting entered"] == ""
    cli("export", site.dir / "m.csv", "--stage", "mounting")
    assert len((site.dir / "m.csv").read_text().splitlines()) == 2
    bad = cli("export", site.dir / "x.ods")
    assert bad.exit_code == 2 and ".xlsx or .csv" in bad.stderr
    assert cli("export", site.dir / "x.csv", "--stage", "nowhere").exit_code == 2


def test_netbox_csv_maps_stages_and_imports_back(site, cli) -> None:
    rows = [["SN1", "02:31:00:00:08:01", "R650", "node1", "dc1", "R01", "12", "provisioning_auto"]]
    write_csv(
        site.dir / "in.csv",
        [["serial", "mac", "model", "hostname", "site", "rack", "unit", "notes"], *rows],
    )
    assert cli("import", site.dir / "in.csv").exit_code == 0
    assert cli("export", site.dir / "nb.csv", "--format", "netbox").exit_code == 0
    with (site.dir / "nb.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == NETBOX_COLUMNS
        (row,) = list(reader)
    assert (row["name"], row["serial"], row["status"], row["position"]) == (
        "node1",
        "SN1",
        "inventory",
        "12",
    )
    assert (row["device_type"], row["site"], row["rack"]) == ("R650", "dc1", "R01")
    result = cli("import", site.dir / "nb.csv", "--dry-run", "--json")
    plan = json.loads(result.stdout)
    assert plan["counts"] == {"new": 0, "changed": 0, "unchanged": 1}
    assert plan["unknown_columns"] == []
    assert cli("export", site.dir / "nb.xlsx", "--format", "netbox").exit_code == 2
