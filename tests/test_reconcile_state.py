"""reconcile's state plane: stuck nodes (reported; --fix fails them) and expired tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bmprov import states as st
from bmprov.importing import import_sheet
from bmprov.nodes import get_node
from bmprov.reconcile import reconcile
from tests.conftest import Site, write_csv


def _waiting(site: Site, db, stage: str, minutes_ago: int) -> None:
    sheet = write_csv(site.dir / "s.csv", [["serial", "mac"], ["SN1", "02:31:00:00:00:01"]])
    import_sheet(db, site.config, sheet)
    then = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")
    db.conn.execute("UPDATE nodes SET stage = ?, stage_changed_at = ?", (stage, then))


def _state(report) -> list:
    return [f for f in report.findings if f.plane == "state"]


def test_a_stuck_node_is_reported_and_fixed_only_with_fix(site: Site) -> None:
    site.write_config("[serve]\ntimeouts = { os_provisioning = 30 }")
    with site.db() as db:
        _waiting(site, db, st.OS_PROVISIONING, minutes_ago=45)
        (finding,) = _state(reconcile(site.config, db, bmc=False))
        assert (finding.node, finding.kind, finding.fixed) == ("SN1", "timed_out", False)
        assert "waiting for stage 1" in (finding.actual or "")
        assert get_node(db, "SN1").stage == st.OS_PROVISIONING  # read-only: nothing moved
        (fixed,) = _state(reconcile(site.config, db, fix=True, bmc=False))
        assert fixed.fixed and get_node(db, "SN1").stage == st.FAILED
        assert not _state(reconcile(site.config, db, bmc=False))  # clean afterwards


def test_no_serve_section_no_timeouts(site: Site) -> None:
    with site.db() as db:
        _waiting(site, db, st.OS_PROVISIONING, minutes_ago=600)  # waiting for a manual power-on
        assert not _state(reconcile(site.config, db, bmc=False))


def test_an_expired_token_is_reported_never_fixed(site: Site) -> None:
    with site.db() as db:
        _waiting(site, db, st.OS_PROVISIONING, minutes_ago=1)
        node = get_node(db, "SN1")
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        db.open_installs([(node.id, node.serial, None)], past)
        report = reconcile(site.config, db, fix=True, bmc=False)
        (finding,) = [f for f in _state(report) if f.kind == "token_expired"]
        assert finding.node == "SN1" and not finding.fixed and "networking" in (finding.note or "")
