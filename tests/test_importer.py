"""Import: all or nothing, idempotent upsert, located problems, numbers a spreadsheet mangled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmprov.errors import InputError, StateError, ValidationFailed
from bmprov.importing import import_sheet
from bmprov.nodes import get_node, list_nodes
from tests.conftest import SAMPLES, Site, raw_sql, state_snapshot, write_csv

HEADER = ["Serial", "MAC", "Model", "OS", "Hostname", "Rack", "Notes"]

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)


def row(i: int, mac: str | None = None, **over: str) -> list[str]:
    values = {
        "Serial": f"SN{i:05d}",
        "MAC": mac if mac is not None else f"52:54:00:00:{i // 256:02x}:{i % 256:02x}",
        "Model": "R650",
        "OS": "rocky9",
        "Hostname": f"node{i}",
        "Rack": "R01",
        "Notes": "provisioning_auto",
    }
    values.update(over)
    return [values[h] for h in HEADER]


def counts(site: Site) -> tuple[int, int, int]:
    with site.db() as db:
        c = db.conn
        return (
            c.execute("SELECT COUNT(*) FROM nodes").fetchone()[0],
            c.execute("SELECT COUNT(*) FROM macs").fetchone()[0],
            c.execute("SELECT COUNT(*) FROM history").fetchone()[0],
        )


def test_sample_xlsx_and_csv_import_the_same_nodes(site: Site) -> None:
    with site.db() as db:
        plan = import_sheet(db, site.config, SAMPLES / "purchases.xlsx")
        assert len(plan.new) == 36
        again = import_sheet(db, site.config, SAMPLES / "purchases.csv")
        assert (len(again.new), len(again.changed), len(again.unchanged)) == (0, 0, 36)
        assert not again.written
        nodes = list_nodes(db)
    serial_only = [n.serial for n in nodes if not n.macs]
    assert len(serial_only) == 4
    assert all(n.stage == "purchasing" for n in nodes)
    assert sum(n.automated for n in nodes) == 34
    assert {n.rack for n in nodes} == {"R01", "R02"}


def test_reimport_writes_nothing(site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [HEADER] + [row(i) for i in range(20)])
    with site.db() as db:
        import_sheet(db, site.config, sheet)
        before = state_snapshot(db)
        plan = import_sheet(db, site.config, sheet)
        assert state_snapshot(db) == before
    assert len(plan.unchanged) == 20


def test_changed_cell_updates_only_that_node(site: Site, tmp_path: Path) -> None:
    rows = [HEADER] + [row(i) for i in range(5)]
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", rows))
        rows[3] = row(2, Model="ProLiant DL360", mac="aa-bb-cc-00-00-02")
        plan = import_sheet(db, site.config, write_csv(tmp_path / "b.csv", rows))
        node = get_node(db, "SN00002")
    assert [c.row.serial for c in plan.changed] == ["SN00002"]
    assert set(plan.changed[0].changes) == {"model", "macs"}
    assert node.model == "ProLiant DL360"
    assert node.macs == ("aa:bb:cc:00:00:02",)


def test_blank_cells_keep_stored_values(site: Site, tmp_path: Path) -> None:
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", [HEADER, row(1)]))
        plan = import_sheet(
            db, site.config, write_csv(tmp_path / "b.csv", [HEADER, row(1, mac="", Model="")])
        )
        node = get_node(db, "SN00001")
    assert not plan.changed
    assert node.mac == "52:54:00:00:00:01" and node.model == "R650"


def test_dry_run_writes_nothing(site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [HEADER, row(1), row(2)])
    with site.db() as db:
        plan = import_sheet(db, site.config, sheet, dry_run=True)
    assert len(plan.new) == 2
    assert counts(site) == (0, 0, 0)


def test_one_bad_row_writes_nothing_and_names_file_row_column(site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [HEADER, row(1), row(2, mac="zz:zz"), row(3)])
    with site.db() as db, pytest.raises(ValidationFailed) as err:
        import_sheet(db, site.config, sheet)
    assert [str(p) for p in err.value.problems] == [
        f"{sheet}:3:MAC: 'zz:zz' is not a MAC address (use aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, "
        "aabb.ccdd.eeff or aabbccddeeff)"
    ]
    assert counts(site) == (0, 0, 0)


def test_mac_of_another_serial_in_state_is_refused(site: Site, tmp_path: Path) -> None:
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", [HEADER, row(1)]))
        with pytest.raises(ValidationFailed) as err:
            import_sheet(
                db,
                site.config,
                write_csv(
                    tmp_path / "b.csv", [HEADER, row(2, mac="5254.0000.0001", Hostname="other")]
                ),
            )
    assert "belongs to node SN00001" in str(err.value.problems[0])


def test_host_name_of_another_serial_in_state_is_refused(site: Site, tmp_path: Path) -> None:
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", [HEADER, row(1), row(2)]))
        with pytest.raises(ValidationFailed) as err:
            import_sheet(
                db, site.config, write_csv(tmp_path / "b.csv", [HEADER, row(3, Hostname="node1")])
            )
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path / 'b.csv'}:2:Hostname: "
        "host name node1 belongs to node SN00001 in the state file"
    ]


def test_macs_and_hostnames_can_swap_within_one_sheet(site: Site, tmp_path: Path) -> None:
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", [HEADER, row(1), row(2)]))
        swapped = [
            HEADER,
            row(1, mac="52:54:00:00:00:02", Hostname="node2"),
            row(2, mac="52:54:00:00:00:01", Hostname="node1"),
        ]
        import_sheet(db, site.config, write_csv(tmp_path / "b.csv", swapped))
        assert get_node(db, "SN00001").mac == "52:54:00:00:00:02"
        assert get_node(db, "SN00002").hostname == "node1"


def test_broken_sample_reports_every_problem(site: Site) -> None:
    with site.db() as db, pytest.raises(ValidationFailed) as err:
        import_sheet(db, site.config, SAMPLES / "purchases_broken.xlsx")
    text = "\n".join(map(str, err.value.problems))
    for expected in (
        "serial is blank",
        "placeholder serial",
        "not a valid serial",
        "duplicate serial",
        "not a MAC address",
        "multicast",
        "all-zero",
        "broadcast",
        "duplicate MAC",
        "not a valid host name",
        "duplicate host name",
        "control character",
        "rack unit",
        "BMC type",
        "IP address or host name",
        "OS name",
        "stored as a number",
        "too large to be exact",
    ):
        assert expected in text, expected
    assert counts(site) == (0, 0, 0)


def test_no_serial_column(site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [["MAC", "Model"], ["52:54:00:00:00:01", "x"]])
    with site.db() as db, pytest.raises(ValidationFailed, match="1 problem"):
        import_sheet(db, site.config, sheet)


def test_unknown_columns_are_reported_not_fatal(site: Site, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "p.csv", [["SN", "Colour"], ["SN1", "blue"]])
    with site.db() as db:
        plan = import_sheet(db, site.config, sheet)
    assert plan.unknown_columns == ["Colour"]


@pytest.mark.parametrize("name", ["missing.csv", "sheet.ods"])
def test_unreadable_files(site: Site, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".ods"):
        path.write_text("x")
    with site.db() as db, pytest.raises(InputError, match=name):
        import_sheet(db, site.config, path)


def test_non_utf8_csv_names_the_line(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"Serial,Notes\nSN1,caf\xe9\n")
    with site.db() as db, pytest.raises(InputError, match=r"latin.csv:2: not UTF-8"):
        import_sheet(db, site.config, path)


def test_leading_zeros_and_numeric_cells_in_xlsx(site: Site, tmp_path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Serial", "MAC", "Unit", "Asset Tag"])
    ws.append(["000123", "52:54:00:00:00:01", 15, 100000])  # text serial, numeric unit/asset
    ws.append([123456789012, "52:54:00:00:00:02", 16.0, "AT-2"])  # numeric serial
    path = tmp_path / "n.xlsx"
    wb.save(path)
    with site.db() as db:
        import_sheet(db, site.config, path)
        assert get_node(db, "000123").unit == 15
        assert get_node(db, "000123").asset_tag == "100000"
        assert get_node(db, "123456789012").unit == 16


def test_wrong_sheet_name(site: Site) -> None:
    with site.db() as db, pytest.raises(InputError, match="no sheet named 'Nope'"):
        import_sheet(db, site.config, SAMPLES / "purchases.xlsx", sheet="Nope")


good_rows = st.integers(0, 400).map(lambda i: ("good", i))
bad_rows = st.sampled_from(
    [
        ("bad", "mac", "01:00:5e:00:00:01"),
        ("bad", "mac", "aabbccddeef"),
        ("bad", "Serial", "To Be Filled By O.E.M."),
        ("bad", "Hostname", "bad_host"),
        ("bad", "Notes", "a\nb"),
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(good_rows, bad_rows), min_size=1, max_size=15))
@pytest.mark.sqlite_only  # 40 examples, each wiping the state through SQLite pragmas
def test_import_is_all_or_nothing(site: Site, tmp_path: Path, spec: list[tuple]) -> None:
    rows, used, has_bad = [HEADER], set(), False
    for n, item in enumerate(spec):
        if item[0] == "good":
            i = item[1]
            if i in used:
                continue
            used.add(i)
            rows.append(row(i))
        else:
            has_bad = True
            _, column, value = item
            i = 1000 + n
            rows.append(row(i, mac=value) if column == "mac" else row(i, **{column: value}))
    sheet = write_csv(tmp_path / "prop.csv", rows)
    with site.db() as db:
        db.conn.execute("PRAGMA foreign_keys = OFF")
        with db.atomic() as c:  # fresh state for every example
            c.execute("DELETE FROM macs")
            c.execute("DROP TRIGGER history_append_only_delete")
            c.execute("DELETE FROM history")
            c.execute("DELETE FROM nodes")
        db.conn.execute("PRAGMA foreign_keys = ON")
        try:
            import_sheet(db, site.config, sheet)
        except ValidationFailed:
            assert has_bad
            assert db.conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] == 0
        else:
            assert not has_bad
            assert db.conn.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] == len(rows) - 1
            before = db.conn.total_changes
            import_sheet(db, site.config, sheet)
            assert db.conn.total_changes == before
        with db.atomic() as c:
            c.execute(
                "CREATE TRIGGER IF NOT EXISTS history_append_only_delete BEFORE DELETE ON "
                "history BEGIN SELECT RAISE(ABORT, 'history is append-only'); END"
            )


def test_history_is_append_only(site: Site, tmp_path: Path) -> None:
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "a.csv", [HEADER, row(1)]))
        with pytest.raises((sqlite3.IntegrityError, StateError), match="append-only"):
            raw_sql(db, "UPDATE history SET reason = 'x'")
