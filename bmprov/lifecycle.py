"""Moving nodes between stages, and the registry of stage entry actions.

``advance`` is the engine behind ``bmprov advance``: it checks each node's transition against
:mod:`bmprov.state_machine`, records every stage change in ``history``, runs the entry action
registered for the target stage (networking, power...), and carries successful nodes on through
transient stages (``networking → os_provisioning``). A node that fails is moved to ``failed``
with the stage and reason; the batch goes on; a re-run picks the node up where it stopped.

Later features plug in with :func:`register_action`::

    @register_action(states.NETWORKING)
    class NetworkingAction(StageAction):
        def run(self, ctx, nodes): ...
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bmprov import states as st
from bmprov.config import Config
from bmprov.db import StateDB, utcnow
from bmprov.errors import BmprovError
from bmprov.nodes import Node, Selection, check_stage, select_nodes
from bmprov.result import BatchResult, NodeResult
from bmprov.state_machine import AUTO_NEXT, allowed_targets, is_allowed, is_forward

log = logging.getLogger(__name__)

ProgressFn = Callable[[NodeResult], None]


@dataclass
class ActionContext:
    """What an entry action gets: the site config, the state file and the command's options."""

    config: Config
    db: StateDB
    command: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One node's outcome from an entry action."""

    node: Node
    ok: bool
    message: str = ""
    step: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class StageAction(ABC):
    """What happens when nodes enter a stage. Implementations must be idempotent."""

    stage: str = ""

    def check(self, ctx: ActionContext) -> None:
        """Refuse the whole batch before any node moves (a bad config would fail every node).

        :raises ConfigError: the settings this action needs are invalid; nothing is done.
        """
        del ctx

    @abstractmethod
    def run(self, ctx: ActionContext, nodes: list[Node]) -> Iterator[Outcome]:
        """Do the stage's work for a batch, yielding one :class:`Outcome` per node.

        A failure of one node is an ``Outcome(ok=False)``, never an exception; an exception
        escaping ``run`` fails every node that has no outcome yet.
        """


_ACTIONS: dict[str, type[StageAction]] = {}


def register_action(stage: str) -> Callable[[type[StageAction]], type[StageAction]]:
    """Class decorator: ``cls`` runs when nodes enter ``stage``."""

    def decorate(cls: type[StageAction]) -> type[StageAction]:
        cls.stage = stage
        _ACTIONS[stage] = cls
        return cls

    return decorate


def action_for(stage: str) -> StageAction | None:
    """A fresh instance of the action registered for ``stage``, if any."""
    _load_builtin_actions()
    cls = _ACTIONS.get(stage)
    return cls() if cls else None


def registered_stages() -> list[str]:
    """The stages that have an entry action, in registration order."""
    _load_builtin_actions()
    return list(_ACTIONS)


def _load_builtin_actions() -> None:
    """Import the modules that register the shipped actions (kept lazy for CLI start-up)."""
    import importlib  # noqa: PLC0415

    for module in BUILTIN_ACTION_MODULES:
        importlib.import_module(module)


BUILTIN_ACTION_MODULES: list[str] = [
    "bmprov.networking",
    "bmprov.power_hook",
    "bmprov.deployed_hook",
]
"""Modules whose import registers a shipped stage action."""


def move(
    db: StateDB,
    nodes: Iterable[Node],
    to: str,
    command: str,
    reason: str | None = None,
    failed_stage: str | None = None,
    reasons: dict[int, str] | None = None,
) -> list[Node]:
    """Move nodes to ``to`` in one transaction, with one history row each.

    Compare-and-set on the node's current stage: a node another process moved meanwhile is
    left alone and not returned. ``reasons`` overrides ``reason`` per node id. One ``UPDATE
    … RETURNING`` per (current stage, reason) group and one ``executemany`` for the history,
    not two statements per node.
    """
    now = utcnow()
    wanted: dict[int, tuple[Node, str | None]] = {}
    for node in nodes:
        why = reasons.get(node.id, reason) if reasons else reason
        wanted.setdefault(node.id, (node, why))
    groups: dict[tuple[str, str | None], list[int]] = {}
    for node, why in wanted.values():
        groups.setdefault((node.stage, why), []).append(node.id)
    done: set[int] = set()
    with db.atomic() as conn:
        for (stage, why), ids in groups.items():
            rows = conn.execute(
                "UPDATE nodes SET stage = ?, stage_reason = ?, failed_stage = ?,"
                " stage_changed_at = ?, updated_at = ?"
                " WHERE stage = ? AND id IN (SELECT value FROM json_each(?)) RETURNING id",
                (to, why, failed_stage, now, now, stage, json.dumps(ids)),
            )
            done.update(row[0] for row in rows)
        moved = [(node, why) for node, why in wanted.values() if node.id in done]
        conn.executemany(
            "INSERT INTO history(node_id, serial, from_stage, to_stage, at, reason, command)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(node.id, node.serial, node.stage, to, now, why, command) for node, why in moved],
        )
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
) -> BatchResult:
    """Move the selected nodes to ``target`` and run its entry actions. Never raises per node."""
    check_stage(target, "--stage")
    batch = BatchResult(action=f"advance:{target}")
    report = _reporter(batch, progress)
    nodes = select_nodes(ctx.db, selection)
    log.info("advance → %s: %d node(s) selected", target, len(nodes))
    explicit = bool(selection.serials)
    plan = _plan(nodes, target, explicit, dry_run, report)
    log.info(
        "advance → %s: %d to move, %d to resume%s",
        target,
        len(plan.enter),
        len(plan.resume),
        " (dry run: nothing moves)" if dry_run else "",
    )
    if plan.enter or plan.resume:
        check_actions(ctx, target)
    if on_total:
        on_total(len(nodes))
    if dry_run:
        return batch
    entered = move(ctx.db, plan.enter, target, ctx.command, reason=f"advance --stage {target}")
    lost = {n.id for n in plan.enter} - {n.id for n in entered}
    for node in plan.enter:
        if node.id in lost:
            report(NodeResult(node.serial, "skipped", node.stage, "moved by another bmprov"))
    _enter(ctx, target, entered + plan.resume, report)
    return batch


def check_actions(ctx: ActionContext, target: str) -> None:
    """Run the :meth:`StageAction.check` of ``target`` and of the stages it carries nodes on to."""
    stage: str | None = target
    while stage is not None:
        action = action_for(stage)
        if action is not None:
            action.check(ctx)
        stage = AUTO_NEXT.get(stage)


def _reporter(batch: BatchResult, progress: ProgressFn | None) -> ProgressFn:
    def report(result: NodeResult) -> None:
        batch.add(result)
        if progress:
            progress(result)

    return report


def _plan(
    nodes: list[Node], target: str, explicit: bool, dry_run: bool, report: ProgressFn
) -> _Plan:
    plan = _Plan()
    for node in nodes:
        if not node.automated and not (explicit and target in MANUAL_STAGES):
            report(NodeResult(node.serial, "skipped", node.stage, _unmarked(target)))
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


def _enter(ctx: ActionContext, stage: str, nodes: list[Node], report: ProgressFn) -> None:
    """Run ``stage``'s entry action on nodes now in it; carry them on or fail them."""
    if not nodes:
        return
    action = action_for(stage)
    log.info("entering %s: %d node(s)%s", stage, len(nodes), "" if action else " (no action)")
    if action is None:
        for node in nodes:
            report(NodeResult(node.serial, "ok", stage, f"now {stage}"))
        return
    outcomes = _run_action(ctx, action, nodes)
    succeeded = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
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
    _enter_carried(ctx, nxt, carried, details, report)


def _enter_carried(
    ctx: ActionContext,
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

    _enter(ctx, stage, nodes, merged)


def _reason(outcome: Outcome) -> str:
    return f"{outcome.step}: {outcome.message}" if outcome.step else outcome.message


def _run_action(ctx: ActionContext, action: StageAction, nodes: list[Node]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    try:
        outcomes.extend(action.run(ctx, nodes))
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
