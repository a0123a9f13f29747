"""Reinstall and complete: the operator's (and the API's) way into and out of an install.

:func:`reinstall` sends installed nodes back through PXE with a chosen OS: it checks the OS
applies to every node (:mod:`bmprov.catalogue`) and the batch's size (``[power] max_nodes``),
records the new OS and install options (an event names the options changed, never a value),
then moves the nodes to *networking* — which rewrites boot entry and install file (and issues
the install's new token) — and on to *os_provisioning*, which sets PXE and power-cycles them
through their BMC **whatever** ``[power] auto_on_provisioning`` says (a reinstall that waits
for someone to press the power button is not one), in waves. ``bmprov serve`` then tracks the
installer's callbacks through *installing* to *deployed*.

:func:`complete` is *deployed* for installers that cannot call back: a node in
*os_provisioning* is recorded as *installing* first (the transition table has no shortcut), a
node in *installing* enters *deployed* (completion: :mod:`bmprov.completion`), and a node
already *deployed* runs its completion steps again (a failed post-install task, retried).

Both are what ``bmprov serve``'s API calls: ``reinstall(ctx, serials, os, options)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bmprov import states as st
from bmprov.catalogue import check_applies
from bmprov.errors import InputError
from bmprov.install import options as opts
from bmprov.lifecycle import advance, move, reenter
from bmprov.nodes import Node, Selection, select_nodes
from bmprov.result import BatchResult, NodeResult
from bmprov.stages import ActionContext
from bmprov.store import Event, NodeUpdate
from bmprov.waves import check_blast_radius

ProgressFn = Callable[[NodeResult], None]

REINSTALL_FROM = (st.DEPLOYED, st.FAILED, st.OS_PROVISIONING)
"""Stages a reinstall starts from (a failed install, a node stuck waiting for PXE)."""

OPTION_PARSERS: dict[str, Callable[[str], Any]] = {
    "root_password_hash": opts.password_hash,
    "ssh_key": opts.ssh_key,
    "partition_scheme": opts.partition_scheme,
    "post_script": opts.post_script,
    "callback_url": opts.callback_url,
    "post_install_url": opts.post_install_url,
}
"""Install options a reinstall may change (``root_password``: a plain one, hashed here)."""


def install_changes(options: Mapping[str, str]) -> dict[str, Any]:
    """Validate reinstall options (``root_password`` plain → its SHA-512 crypt hash).

    :raises InputError: naming the option (never echoing a password).
    """
    checked: dict[str, Any] = {}
    for key, value in options.items():
        try:
            if key == "root_password":
                checked["root_password_hash"] = str.__str__(opts.hash_password(value))
            elif key in OPTION_PARSERS:
                checked[key] = OPTION_PARSERS[key](value)
            else:
                known = ", ".join(["root_password", *OPTION_PARSERS])
                raise InputError(f"unknown install option {key!r} (known: {known})")
        except ValueError as exc:
            raise InputError(f"install option {key}: {exc}") from None
    return checked


def password_from_env(name: str) -> str:
    """The plain root password in ``$name`` (``--root-password-env``).

    :raises InputError: the variable is unset or empty (naming it, not its value).
    """
    value = os.environ.get(name, "")
    if not value:
        raise InputError(f"--root-password-env: environment variable {name} is not set")
    return value


def reinstall(
    ctx: ActionContext,
    serials: Sequence[str],
    os_name: str,
    options: Mapping[str, str] | None = None,
    *,
    max_nodes: int | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> BatchResult:
    """Reinstall the named nodes with ``os_name`` (see the module docstring).

    :raises InputError: unknown serial, a node not in a stage a reinstall starts from or not
        marked for automation, an OS that does not apply, a bad option, or more nodes than
        ``[power] max_nodes`` without ``max_nodes``; nothing is done.
    """
    if not serials:
        raise InputError("name the nodes to reinstall (SERIAL...)")
    nodes = select_nodes(ctx.db, Selection(serials=tuple(serials)))
    _check_reinstallable(nodes)
    check_applies(ctx.config, nodes, os_name)
    changes = install_changes(options or {})
    for node in nodes:
        _check_scheme(ctx, node, changes)
    limit = ctx.config.settings.power.max_nodes
    check_blast_radius(len(nodes), limit, max_nodes, "reinstall")
    if dry_run:
        batch = BatchResult(action="reinstall (dry run)")
        for node in nodes:
            message = f"would reinstall with {os_name}: {node.stage} → networking → PXE"
            batch.add(NodeResult(node.serial, "planned", node.stage, message))
        return batch
    ctx.db.update_nodes(
        [NodeUpdate(n.id, fields={"os": os_name}, install=changes or None) for n in nodes]
    )
    named = ", ".join(sorted(changes)) or "none"
    ctx.db.add_events(
        [
            Event(
                n.id,
                "reinstall",
                f"OS {n.os or '-'} → {os_name}; options set: {named}",
                ctx.command,
            )
            for n in nodes
        ]
    )
    power_ctx = replace(ctx, auto_power=True)
    batch = advance(
        power_ctx,
        Selection(serials=tuple(n.serial for n in nodes)),
        st.NETWORKING,
        progress=progress,
        max_nodes=len(nodes),
        unlock=True,
    )
    batch.action = "reinstall"
    return batch


def _check_reinstallable(nodes: list[Node]) -> None:
    problems = [
        f"node {n.serial} is {n.stage} (a reinstall starts from {', '.join(REINSTALL_FROM)})"
        for n in nodes
        if n.stage not in REINSTALL_FROM
    ]
    problems += [
        f"node {n.serial} is not marked for automation (see [import] marker_pattern)"
        for n in nodes
        if not n.automated
    ]
    if problems:
        raise InputError("nothing was reinstalled:\n  " + "\n  ".join(problems))


def _check_scheme(ctx: ActionContext, node: Node, changes: dict[str, Any]) -> None:
    """A new partition scheme must fit the node's disks (stored count, else ``[install]``)."""
    scheme = changes.get("partition_scheme")
    if scheme is None:
        return
    disks = node.install_options.get("disks") or opts.InstallDefaults.from_config(ctx.config).disks
    try:
        opts.check_scheme_fits(scheme, int(disks))
    except ValueError as exc:
        raise InputError(f"node {node.serial}: {exc}") from None


def complete(
    ctx: ActionContext, serials: Sequence[str], *, progress: ProgressFn | None = None
) -> BatchResult:
    """Record the named nodes' installs as done and run completion (module docstring).

    :raises InputError: unknown serial or none named.
    """
    if not serials:
        raise InputError("name the nodes to complete (SERIAL...)")
    nodes = select_nodes(ctx.db, Selection(serials=tuple(serials)))
    batch = BatchResult(action="complete")

    def report(result: NodeResult) -> None:
        batch.add(result)
        if progress:
            progress(result)

    waiting = [n for n in nodes if n.stage == st.OS_PROVISIONING]
    reason = "bmprov complete: the installer does not call back"
    moved = move(ctx.db, waiting, st.INSTALLING, ctx.command, reason=reason)
    installing = [n for n in nodes if n.stage == st.INSTALLING] + moved
    deployed = [n for n in nodes if n.stage == st.DEPLOYED]
    for node in nodes:
        if node.stage not in (st.OS_PROVISIONING, st.INSTALLING, st.DEPLOYED):
            message = (
                f"cannot complete a node in {node.stage} (os_provisioning, installing or deployed)"
            )
            report(NodeResult(node.serial, "failed", node.stage, message))
    if installing:
        chosen = Selection(serials=tuple(n.serial for n in installing))
        for result in advance(ctx, chosen, st.DEPLOYED).results:
            report(result)
    reenter(ctx, st.DEPLOYED, deployed, report)
    batch.results.sort(key=lambda r: r.serial)
    return batch
