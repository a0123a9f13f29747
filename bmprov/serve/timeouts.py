"""Stage timeouts: a node whose installer stops reporting is failed, not left waiting forever.

``[serve.timeouts]`` gives minutes per stage: *os_provisioning* waits for stage 1 (counted from
entering the stage), *installing* for the next stage (counted from the last one reported, or
from entering *installing*). A node past its time moves to *failed* ("timed out waiting for
stage N") and its install ends, so a late callback of that install is refused. ``bmprov serve``
checks every ``timeout_check_seconds``; ``bmprov timeouts`` does the same once, for cron.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bmprov import lifecycle
from bmprov import states as st
from bmprov.config import Config
from bmprov.nodes import Node
from bmprov.store import Event, Store

log = logging.getLogger(__name__)

COMMAND = "timeouts"


@dataclass(frozen=True)
class TimedOut:
    """One node failed for waiting too long."""

    serial: str
    stage: str
    waiting_for: int
    since: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "serial": self.serial,
            "stage": self.stage,
            "waiting_for": self.waiting_for,
            "since": self.since,
        }


def check_timeouts(config: Config, db: Store, now: datetime | None = None) -> list[TimedOut]:
    """Fail every node past its stage's timeout; the nodes failed (none moved twice)."""
    return fail_late(db, find_late(config, db, now))


def find_late(
    config: Config, db: Store, now: datetime | None = None
) -> list[tuple[Node, TimedOut]]:
    """The nodes past their stage's timeout, and what they wait for (reads only)."""
    limits = config.settings.serve.timeouts
    moment = now or datetime.now(UTC)
    installs = db.current_installs()
    late: list[tuple[Node, TimedOut]] = []
    for stage in (st.OS_PROVISIONING, st.INSTALLING):
        limit = limits.get(stage)
        if limit is None:
            continue
        for node in db.load_nodes(stage=stage):
            install = installs.get(node.id)
            progress = install.progress if install else 0
            since = node.stage_changed_at
            if install and install.progress_at and install.progress_at > since:
                since = install.progress_at
            if since and moment - _parse(since) > limit:
                late.append((node, TimedOut(node.serial, stage, progress + 1, since)))
    return late


def fail_late(db: Store, late: list[tuple[Node, TimedOut]]) -> list[TimedOut]:
    """Move late nodes to *failed* and end their installs, in one transaction (compare-and-set:
    a node that moved meanwhile, say its callback just arrived, is left alone)."""
    if not late:
        return []
    reasons = {node.id: reasons_text(t) for node, t in late}
    failed: list[TimedOut] = []
    with db.atomic():
        for stage in (st.OS_PROVISIONING, st.INSTALLING):
            group = [node for node, t in late if t.stage == stage]
            moved = lifecycle.move(db, group, st.FAILED, COMMAND, None, stage, reasons)
            ids = {node.id for node in moved}
            db.end_installs(ids, "failed")
            db.add_events([Event(i, "timeout", reasons[i], COMMAND) for i in sorted(ids)])
            failed += [t for node, t in late if node.id in ids]
    for t in failed:
        log.warning("node %s: %s in %s (since %s)", t.serial, reasons_text(t), t.stage, t.since)
    return failed


def reasons_text(t: TimedOut) -> str:
    """The reason recorded for a timed-out node."""
    return f"timed out waiting for stage {t.waiting_for}"


def _parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
