"""The state plane: nodes stuck in a stage past its timeout, and install tokens that expired.

Both come from ``bmprov serve``'s bookkeeping (:mod:`bmprov.serve.timeouts`, the installs
table). A stuck node is the issue's "an install that never called back": reported, and with
``--fix`` moved to *failed* exactly as ``bmprov timeouts`` does (its install ended, an event and
a history row). An expired token on a node still waiting for its installer is only reported:
the fix (a new install and re-rendered boot files) is ``bmprov advance --stage networking
--serial S`` or a reinstall, which an operator chooses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from bmprov import states as st
from bmprov.reconcile.findings import Context, Finding
from bmprov.serve.timeouts import fail_late, find_late, reasons_text

WAITING = frozenset({st.NETWORKING, st.OS_PROVISIONING, st.INSTALLING})
"""Stages whose nodes still need their install token."""


def check_timeouts(ctx: Context) -> Iterator[Finding]:
    """Nodes past ``[serve.timeouts]``; ``--fix`` fails them. Only on a site with a ``[serve]``
    section: without serve no installer calls back, and a node waiting in *os_provisioning* for
    a person to power it on is not stuck."""
    if not ctx.config.section("serve") and "serve" not in ctx.config.raw:
        return
    scope = {n.id for n in ctx.nodes}
    late = [(node, t) for node, t in find_late(ctx.config, ctx.db) if node.id in scope]
    failed = {t.serial for t in fail_late(ctx.db, late)} if ctx.fix else set()
    for node, t in late:
        yield Finding(
            node.serial,
            "state",
            "timed_out",
            f"stage {t.waiting_for} reported in time ({t.stage})",
            f"{reasons_text(t)} since {t.since}",
            fixed=node.serial in failed,
        )


def check_tokens(ctx: Context) -> Iterator[Finding]:
    """Nodes still waiting for their installer whose install token has expired."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    waiting = {n.id: n for n in ctx.nodes if n.stage in WAITING}
    for node_id, install in ctx.db.current_installs(list(waiting)).items():
        if install.expires_at <= now:
            yield Finding(
                waiting[node_id].serial,
                "state",
                "token_expired",
                "a valid install token",
                f"install {install.id} expired at {install.expires_at}",
                note="re-run networking for the node (or reinstall it) to issue a new one",
            )
