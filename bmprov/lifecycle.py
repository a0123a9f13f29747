"""Moving nodes between stages and running their entry actions.

``advance`` is the engine behind ``bmprov advance``: it checks each node's transition against
:mod:`bmprov.state_machine`, records every stage change in ``history``, runs the entry action
registered for the target stage (networking, power...), and carries successful nodes on through
transient stages (``networking → os_provisioning``). A node that fails is moved to ``failed``
with the stage and reason; the batch goes on; a re-run picks the node up where it stopped.

Which action runs on entering which stage is the explicit registry in :mod:`bmprov.stages`;
one instance per stage serves the whole batch, for its pre-run check and its run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from bmprov import states as st
from bmprov.errors import BmprovError
from bmprov.nodes import Node, Selection, check_stage, select_nodes
from bmprov.result import BatchResult, NodeResult
from bmprov.runlock import site_lock
from bmprov.stages import ActionContext, Outcome, StageAction, action_for
from bmprov.state_machine import AUTO_NEXT, allowed_targets, is_allowed, is_forward
from bmprov.store import Store
from bmprov.waves import check_blast_radius

log = logging.getLogger(__name__)

ProgressFn = Callable[[NodeResult], None]


class _Actions:
    """The entry actions of one batch: each built once, used for its check and its run."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self._made: dict[str, StageAction | None] = {}

    def get(self, stage: str) -> StageAction | None:
        if stage not in self._made:
            self._made[stage] = action_for(stage, self.ctx)
        return self._made[stage]


def move(
    db: Store,
    nodes: Iterable[Node],
    to: str,
    command: str,
    reason: str | None = None,
    failed_stage: str | None = None,
    reasons: dict[int, str] | None = None,
) -> list[Node]:
    """Move nodes to ``to`` in one transaction, with one history row each.

    Compare-and-set on the node's current stage: a node another process moved meanwhile is
    left alone and not returned. ``reasons`` overrides ``reason`` per node id.
    """
    wanted: dict[int, tuple[Node, str | None]] = {}
    for node in nodes:
        why = reasons.get(node.id, reason) if reasons else reason
        wanted.setdefault(node.id, (node, why))
    done = db.move_nodes(list(wanted.values()), to, command, failed_stage)
    moved = [(node, why) for node, why in wanted.values() if node.id in done]
    return [_with_stage(node, to, why, failed_stage) for node, why in moved]


def _with_stage(node: Node, stage: str, reason: str | None, failed_stage: str | None) -> Node:
    from dataclasses import replace  # noqa: PLC0415

    return replace(node, stage=stage, stage_reason=reason, failed_stage=failed_stage)


@dataclass
class _Plan:
    enter: list[Node] = field(default_factory=list)  # nodes that make the transition
    resume: list[Node] = field(default_factory=list)  # already in a transient target: re-run


def advance(
    ctx: ActionContext,
    selection: Selection,
    target: str,
    *,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    on_total: Callable[[int], None] | None = None,
    max_nodes: int | None = None,
    unlock: bool = False,
) -> BatchResult:
    """Move the selected nodes to ``target`` and run its entry actions. Never raises per node.

    A deployed node is locked: only ``unlock`` (a reinstall, :mod:`bmprov.workflow`) sends it
    back to *networking* and PXE. A batch that would power-cycle more than ``[power]
    max_nodes`` nodes needs ``max_nodes`` covering them.

    A real run holds the site lock (:mod:`bmprov.runlock`) shared throughout, so a
    ``reconcile`` never interleaves its reads and repairs with this batch's writes.

    :raises InputError: unknown stage, empty selection, or too many nodes to power-cycle.
    """
    check_stage(target, "--stage")
    run = partial(
        _advance,
        ctx,
        selection,
        target,
        dry_run=dry_run,
        progress=progress,
        on_total=on_total,
        max_nodes=max_nodes,
        unlock=unlock,
    )
    if dry_run:
        return run()
    with site_lock(ctx.db, ctx.config.busy_timeout_ms / 1000, shared=True, site=ctx.config.site):
        return run()


def _advance(
    ctx: ActionContext,
    selection: Selection,
    target: str,
    *,
    dry_run: bool,
    progress: ProgressFn | None,
    on_total: Callable[[int], None] | None,
    max_nodes: int | None,
    unlock: bool,
) -> BatchResult:
    batch = BatchResult(action=f"advance:{target}")
    report = _reporter(batch, progress)
    nodes = select_nodes(ctx.db, selection)
    log.info("advance → %s: %d node(s) selected", target, len(nodes))
    explicit = bool(selection.serials)
    plan = _plan(nodes, target, explicit, dry_run, report, unlock)
    if _power_cycles(ctx, target):
        limit = ctx.config.settings.power.max_nodes
        check_blast_radius(len(plan.enter) + len(plan.resume), limit, max_nodes, "power-cycle")
    actions = _Actions(ctx)
    log.info(
        "advance → %s: %d to move, %d to resume%s",
        target,
        len(plan.enter),
        len(plan.resume),
        " (dry run: nothing moves)" if dry_run else "",
    )
    if plan.enter or plan.resume:
        check_actions(actions, target)
    if on_total:
        on_total(len(nodes))
    if dry_run:
        return batch
    entered = move(ctx.db, plan.enter, target, ctx.command, reason=f"advance --stage {target}")
    lost = {n.id for n in plan.enter} - {n.id for n in entered}
    for node in plan.enter:
        if node.id in lost:
            report(NodeResult(node.serial, "skipped", node.stage, "moved by another bmprov"))
    _enter(actions, target, entered + plan.resume, report)
    return batch


def _power_cycles(ctx: ActionContext, target: str) -> bool:
    """True when entering ``target`` carries nodes into *os_provisioning* with power control."""
    stage: str | None = target
    while stage is not None and stage != st.OS_PROVISIONING:
        stage = AUTO_NEXT.get(stage)
    if stage is None:
        return False
    auto = ctx.auto_power
    return ctx.config.settings.power.auto_on_provisioning if auto is None else auto


def check_actions(actions: _Actions, target: str) -> None:
    """Run the :meth:`StageAction.check` of ``target`` and of the stages it carries nodes on to."""
    stage: str | None = target
    while stage is not None:
        action = actions.get(stage)
        if action is not None:
            action.check()
        stage = AUTO_NEXT.get(stage)


def _reporter(batch: BatchResult, progress: ProgressFn | None) -> ProgressFn:
    def report(result: NodeResult) -> None:
        batch.add(result)
        if progress:
            progress(result)

    return report


def _plan(
    nodes: list[Node],
    target: str,
    explicit: bool,
    dry_run: bool,
    report: ProgressFn,
    unlock: bool = False,
) -> _Plan:
    plan = _Plan()
    for node in nodes:
        if not node.automated and not (explicit and target in MANUAL_STAGES):
            report(NodeResult(node.serial, "skipped", node.stage, _unmarked(target)))
        elif node.stage == st.DEPLOYED and target == st.NETWORKING and not unlock:
            message = (
                f"deployed nodes are locked: only a reinstall sends one back to PXE "
                f"(bmprov reinstall {node.serial} --os OS)"
            )
            report(
                NodeResult(node.serial, "failed" if explicit else "skipped", node.stage, message)
            )
        elif node.stage == target and target in st.TRANSIENT_STAGES:
            plan.resume.append(node)
            if dry_run:
                report(NodeResult(node.serial, "planned", target, f"resume {target}"))
        elif node.stage == target:
            report(NodeResult(node.serial, "unchanged", node.stage, f"already {target}"))
        elif is_allowed(node.stage, target) and (
            explicit or is_forward(node.stage, target, node.failed_stage)
        ):
            plan.enter.append(node)
            if dry_run:
                report(NodeResult(node.serial, "planned", target, f"{node.stage} → {target}"))
        elif is_allowed(node.stage, target) and node.stage == st.FAILED:
            # Not "go back": a failed node is retried only at the stage it failed in.
            message = (
                f"failed in {node.failed_stage}; a broad selection retries it only there "
                f"(name it with --serial to move it to {target})"
            )
            report(NodeResult(node.serial, "skipped", node.stage, message))
        elif is_allowed(node.stage, target):
            report(
                NodeResult(
                    node.serial,
                    "unchanged",
                    node.stage,
                    f"already {node.stage}; name it with --serial to go back to {target}",
                )
            )
        else:
            allowed = ", ".join(allowed_targets(node.stage)) or "none"
            message = f"cannot go from {node.stage} to {target} (from {node.stage}: {allowed})"
            report(
                NodeResult(node.serial, "failed" if explicit else "skipped", node.stage, message)
            )
    return plan


MANUAL_STAGES = (st.PURCHASING, st.MOUNTING)
"""Stages that only record what people did: an unmarked node enters them by ``--serial``."""


def _unmarked(target: str) -> str:
    """Why a node without the automation marker was skipped (and how to move it anyway)."""
    why = "not marked for automation (see [import] marker_pattern)"
    if target in MANUAL_STAGES:
        return f"{why}; name it with --serial to record it as {target}"
    return why


def reenter(ctx: ActionContext, stage: str, nodes: list[Node], report: ProgressFn) -> None:
    """Run ``stage``'s entry action again on nodes already in it (``bmprov complete`` of a
    deployed node: its completion steps, retried). No move unless the action fails a node."""
    if nodes:
        actions = _Actions(ctx)
        check_actions(actions, stage)
        _enter(actions, stage, nodes, report)


def _enter(actions: _Actions, stage: str, nodes: list[Node], report: ProgressFn) -> None:
    """Run ``stage``'s entry action on nodes now in it; carry them on or fail them."""
    if not nodes:
        return
    ctx = actions.ctx
    action = actions.get(stage)
    log.info("entering %s: %d node(s)%s", stage, len(nodes), "" if action else " (no action)")
    if action is None:
        for node in nodes:
            report(NodeResult(node.serial, "ok", stage, f"now {stage}"))
        return
    outcomes = _run_action(action, nodes)
    succeeded = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok and not o.stay]
    for o in outcomes:
        if not o.ok and o.stay:  # e.g. a post-install task failed: still deployed
            report(NodeResult(o.node.serial, "failed", stage, o.message, o.step, o.details))
    log.info("%s: %d succeeded, %d failed", stage, len(succeeded), len(failed))
    if failed:
        reasons = {o.node.id: _reason(o) for o in failed}
        move(ctx.db, [o.node for o in failed], st.FAILED, ctx.command, None, stage, reasons)
        for o in failed:
            report(NodeResult(o.node.serial, "failed", st.FAILED, o.message, o.step, o.details))
    nxt = AUTO_NEXT.get(stage)
    if nxt is None:
        for o in succeeded:
            report(
                NodeResult(
                    o.node.serial, "ok", stage, o.message or f"now {stage}", details=o.details
                )
            )
        return
    carried = move(ctx.db, [o.node for o in succeeded], nxt, ctx.command, reason=f"{stage} done")
    details = {o.node.id: o for o in succeeded}
    for node_id in set(details) - {n.id for n in carried}:
        o = details[node_id]
        report(NodeResult(o.node.serial, "skipped", stage, "moved by another bmprov"))
    _enter_carried(actions, nxt, carried, details, report)


def _enter_carried(
    actions: _Actions,
    stage: str,
    nodes: list[Node],
    earlier: dict[int, Outcome],
    report: ProgressFn,
) -> None:
    """Enter the next stage, merging the earlier stage's details into each node's result."""

    by_serial = {o.node.serial: o for o in earlier.values()}

    def merged(result: NodeResult) -> None:
        before = by_serial.get(result.serial)
        if before is not None and before.details:
            details = {**before.details, **result.details}
            result = NodeResult(
                result.serial, result.status, result.stage, result.message, result.step, details
            )
        report(result)

    _enter(actions, stage, nodes, merged)


def _reason(outcome: Outcome) -> str:
    return f"{outcome.step}: {outcome.message}" if outcome.step else outcome.message


def _run_action(action: StageAction, nodes: list[Node]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        outcomes.extend(action.run(nodes))
    except BmprovError as exc:
        message, step = str(exc), getattr(exc, "step", None)
        seen = {o.node.id for o in outcomes}
        outcomes += [Outcome(n, False, message, step) for n in nodes if n.id not in seen]
    except Exception as exc:
        log.exception("entry action for %s crashed", action.stage)
        seen = {o.node.id for o in outcomes}
        outcomes += [
            Outcome(n, False, f"internal error in {action.stage}: {type(exc).__name__}")
            for n in nodes
            if n.id not in seen
        ]
    return outcomes
