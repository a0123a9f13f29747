"""The transition table and the advance engine (entry actions, failures, resume)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmprov import stages, states
from bmprov.errors import InputError, TransitionError
from bmprov.importing import import_sheet
from bmprov.lifecycle import advance
from bmprov.nodes import Node, Selection, get_node, history, list_nodes
from bmprov.stages import ActionContext, Outcome, StageAction
from bmprov.state_machine import TRANSITIONS, allowed_targets, check_transition, to_dot
from tests.conftest import Site, write_csv

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)


def test_table_refuses_every_pair_it_does_not_list() -> None:
    for frm, to in itertools.product(sorted(states.ALL_STAGES), repeat=2):
        if (frm, to) in TRANSITIONS:
            check_transition(frm, to)
        else:
            with pytest.raises(TransitionError) as err:
                check_transition(frm, to, "SN1")
            assert f"from {frm}: " in str(err.value)
            for allowed in allowed_targets(frm):
                assert allowed in str(err.value)


def test_main_pipeline_is_walkable_and_in_the_dot_graph() -> None:
    path = states.PROVISIONING_PIPELINE
    for frm, to in itertools.pairwise(path):
        check_transition(frm, to)
        assert f'"{frm}" -> "{to}"' in to_dot()


def test_every_stage_is_reachable_and_only_known_stages_are_used() -> None:
    initial = {states.PURCHASING, states.DISCOVERY}  # from a sheet, or from a discovery boot
    reached = {to for _, to in TRANSITIONS} | initial
    assert reached == states.ALL_STAGES
    assert {s for pair in TRANSITIONS for s in pair} <= states.ALL_STAGES


def _import(site: Site, tmp_path: Path, n: int = 4, notes: str = "provisioning_auto") -> None:
    rows = [["Serial", "MAC", "Rack", "Notes"]]
    rows += [
        [f"SN{i}", f"52:54:00:00:00:{i:02x}", "R01" if i % 2 else "R02", notes]
        for i in range(1, n + 1)
    ]
    with site.db() as db:
        import_sheet(db, site.config, write_csv(tmp_path / "p.csv", rows))


def _ctx(site: Site, db) -> ActionContext:
    return ActionContext(config=site.config, db=db, command="test")


def test_advance_records_history_and_skips_what_cannot_move(site: Site, tmp_path: Path) -> None:
    _import(site, tmp_path)
    with site.db() as db:
        ctx = _ctx(site, db)
        r1 = advance(ctx, Selection(rack="R01"), states.MOUNTING)
        assert r1.counts() == {"ok": 2}
        r2 = advance(ctx, Selection(all=True), states.MOUNTING)
        assert r2.counts() == {"ok": 2, "unchanged": 2}
        r3 = advance(ctx, Selection(all=True), states.INSTALLING)
        assert r3.counts() == {"skipped": 4} and r3.exit_code == 0
        r4 = advance(ctx, Selection(serials=("SN1",)), states.INSTALLING)
        assert r4.counts() == {"failed": 1} and r4.exit_code == 1
        steps = [(h["from_stage"], h["to_stage"], h["command"]) for h in history(db, "SN1")]
    assert steps == [(None, "purchasing", "import"), ("purchasing", "mounting", "test")]


def test_dry_run_changes_nothing(site: Site, tmp_path: Path) -> None:
    _import(site, tmp_path)
    with site.db() as db:
        batch = advance(_ctx(site, db), Selection(all=True), states.MOUNTING, dry_run=True)
        assert batch.counts() == {"planned": 4}
        assert get_node(db, "SN1").stage == states.PURCHASING


def test_unmarked_nodes_are_not_automated(site: Site, tmp_path: Path) -> None:
    """No broad selection moves an unmarked row, not even to mounting (issue 9, item 5)."""
    _import(site, tmp_path, notes="racked by vendor")
    with site.db() as db:
        ctx = _ctx(site, db)
        for broad in (
            Selection(all=True),
            Selection(rack="R01"),
            Selection(from_stage="purchasing"),
        ):
            batch = advance(ctx, broad, states.MOUNTING)
            assert set(batch.counts()) == {"skipped"}, broad
            assert "name it with --serial" in batch.results[0].message
        assert {n.stage for n in list_nodes(db)} == {states.PURCHASING}
        # naming it records the racking; the automated stages stay closed to it
        assert advance(ctx, Selection(serials=("SN1",)), states.MOUNTING).counts() == {"ok": 1}
        batch = advance(ctx, Selection(serials=("SN1",)), states.NETWORKING)
        assert batch.counts() == {"skipped": 1}
        assert "not marked for automation" in batch.results[0].message
        assert get_node(db, "SN1").stage == states.MOUNTING


def test_selection_errors(site: Site, tmp_path: Path) -> None:
    _import(site, tmp_path)
    with site.db() as db:
        with pytest.raises(InputError, match="--all"):
            advance(_ctx(site, db), Selection(), states.MOUNTING)
        with pytest.raises(InputError, match="unknown serial"):
            advance(_ctx(site, db), Selection(serials=("NOPE",)), states.MOUNTING)
        with pytest.raises(InputError, match="unknown stage"):
            advance(_ctx(site, db), Selection(all=True), "racking")


class FlakyNetworking(StageAction):
    """Fails SN2 until told otherwise; records what it was asked to do."""

    fail: set[str] = {"SN2"}
    seen: list[str] = []

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        for node in nodes:
            self.seen.append(node.serial)
            if node.serial in self.fail:
                yield Outcome(node, False, "pool exhausted", step="allocate")
            else:
                yield Outcome(node, True, "done", details={"ip": "10.0.0.1"})


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyNetworking]:
    monkeypatch.setattr(stages, "REGISTRY", {states.NETWORKING: FlakyNetworking})
    FlakyNetworking.fail = {"SN2"}
    FlakyNetworking.seen = []
    return FlakyNetworking


def test_entry_action_carries_on_and_failures_resume(site: Site, tmp_path: Path, flaky) -> None:
    _import(site, tmp_path, n=3)
    with site.db() as db:
        ctx = _ctx(site, db)
        advance(ctx, Selection(all=True), states.MOUNTING)
        batch = advance(ctx, Selection(all=True), states.NETWORKING)
        assert batch.exit_code == 1
        by_serial = {r.serial: r for r in batch.results}
        assert by_serial["SN1"].stage == states.OS_PROVISIONING
        assert by_serial["SN1"].details == {"ip": "10.0.0.1"}
        assert by_serial["SN2"].status == "failed" and by_serial["SN2"].step == "allocate"
        sn2 = get_node(db, "SN2")
        assert (sn2.stage, sn2.failed_stage, sn2.stage_reason) == (
            states.FAILED,
            states.NETWORKING,
            "allocate: pool exhausted",
        )
        # Re-run: only the failed node is picked up again, and now succeeds.
        flaky.fail = set()
        flaky.seen.clear()
        again = advance(ctx, Selection(all=True), states.NETWORKING)
        assert flaky.seen == ["SN2"]
        assert again.exit_code == 0
        assert again.counts() == {"ok": 1, "unchanged": 2}
        assert get_node(db, "SN2").stage == states.OS_PROVISIONING
        # Going back needs the node named explicitly.
        flaky.seen.clear()
        back = advance(ctx, Selection(serials=("SN1",)), states.NETWORKING)
        assert flaky.seen == ["SN1"] and back.exit_code == 0
        path = [h["to_stage"] for h in history(db, "SN2")]
    assert path == [
        "purchasing",
        "mounting",
        "networking",
        "failed",
        "networking",
        "os_provisioning",
    ]


def test_crashing_action_fails_the_batch_cleanly(site: Site, tmp_path: Path, flaky) -> None:
    def boom(self, ctx, nodes):
        raise RuntimeError("bug")
        yield  # pragma: no cover

    flaky.run = boom  # type: ignore[method-assign]
    _import(site, tmp_path, n=2)
    with site.db() as db:
        ctx = _ctx(site, db)
        advance(ctx, Selection(all=True), states.MOUNTING)
        batch = advance(ctx, Selection(all=True), states.NETWORKING)
    assert batch.counts() == {"failed": 2}
    assert "internal error" in batch.results[0].message
