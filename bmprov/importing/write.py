"""Writing an import plan through the state layer, in bulk."""

from __future__ import annotations

import json
from pathlib import Path

from bmprov import states
from bmprov.importing.columns import NODE_COLUMNS, NODE_INDEX
from bmprov.importing.plan import Change, ImportPlan
from bmprov.store import NodeUpdate, Store


def apply_plan(db: Store, plan: ImportPlan, command: str = "import") -> None:
    """Write a plan in bulk. Call inside the same transaction as :func:`plan_import`."""
    if plan.new:
        db.insert_nodes(
            (*NODE_COLUMNS, "serial", "install_options", "automated"),
            [
                (
                    *r.node,
                    r.serial,
                    json.dumps(r.install, sort_keys=True) if r.install else "{}",
                    int(r.automated),
                )
                for r in plan.new
            ],
            [r.macs or () for r in plan.new],
            states.PURCHASING,
            f"imported from {Path(plan.file).name}",
            command,
        )
    if plan.changed:
        db.update_nodes([_update(c) for c in plan.changed])
    plan.written = bool(plan.new or plan.changed)


def _update(change: Change) -> NodeUpdate:
    """The state layer's form of a changed row."""
    fields = {k: new for k, (_, new) in change.changes.items() if k in NODE_INDEX}
    if "automated" in change.changes:
        fields["automated"] = int(change.changes["automated"][1])
    install = change.row.install if any(k.startswith("install.") for k in change.changes) else None
    macs = tuple(change.row.macs or ()) if "macs" in change.changes else None
    return NodeUpdate(change.node_id, fields, macs, install)
