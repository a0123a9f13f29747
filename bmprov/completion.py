"""Completion: what happens when a node's install is done and it enters *deployed*.

In this order, per batch, each step recorded as an event of the node (:meth:`Store.add_events`):

1. **boot device → disk**, persistently, through the power driver — when bmprov drives the
   node's power (``[power] auto_on_provisioning`` or ``provisioning_persistent``). A node
   without a BMC is reported, not failed: its PXE entries (step 2) make it boot its disk anyway;
2. every per-MAC boot artefact (pxelinux, GRUB, iPXE) → **local boot**, and the install file
   (with the root password hash) removed. A node whose entries cannot be switched **fails**
   (it could reinstall on its next boot) and no later step runs for it;
3. the node's open install ends as ``completed`` (its install token stops working);
4. the **post-install task** (:mod:`bmprov.posttask`), if ``[post_install] command`` is set;
5. the node's **post-install URL** (install option ``post_install_url``, else
   ``[post_install] url``) is POSTed a JSON summary, with retries (:mod:`bmprov.notify`).

A failure in step 1, 4 or 5 does **not** un-deploy the node: the OS is installed and boots from
its disk. The node stays *deployed*, the batch reports it ``failed`` with the step, and
``bmprov complete SERIAL`` runs the steps again (each is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bmprov.boot import digests
from bmprov.boot.writer import NodeFileWriter
from bmprov.drivers import BootDevice
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.notify import notify_all
from bmprov.posttask import TaskResult, run_tasks
from bmprov.power import PowerRequest, default_uefi, run_power
from bmprov.result import ResultCode
from bmprov.stages.base import ActionContext, Outcome
from bmprov.store import Event

BOOT_DEVICE, LOCAL_BOOT, POST_TASK, POST_URL = "boot device", "local boot", "post-install", "url"


@dataclass
class _Node:
    """One node's way through completion: what was done, and the first step that failed."""

    node: Node
    done: list[str] = field(default_factory=list)
    failed: tuple[str, str] | None = None  # (step, reason)
    details: dict[str, Any] = field(default_factory=dict)

    def fail(self, step: str, reason: str) -> None:
        if self.failed is None:
            self.failed = (step, reason)


class Completion:
    """The completion steps for one batch (see the module docstring)."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.task = ctx.config.settings.post_task
        self.notify = ctx.config.settings.post_url
        self.events: list[Event] = []

    def check(self) -> None:
        """Settings are checked when built (the constructor); nothing else to refuse."""

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """One outcome per node; events are written once, at the end."""
        states = [_Node(node) for node in nodes]
        try:
            self._boot_device(states)
            switched = self._local_boot(states)
            self._end_installs(switched)
            task_results = self._post_task(switched)
            self._notify(switched, task_results)
        finally:
            self.ctx.db.add_events(self.events)
        for s in states:
            yield _outcome(s)

    def _event(self, s: _Node, kind: str, detail: str) -> None:
        self.events.append(Event(s.node.id, kind, detail, self.ctx.command))

    def _boot_device(self, states: list[_Node]) -> None:
        config = self.ctx.config
        settings = config.settings.power
        if not (settings.auto_on_provisioning or settings.provisioning_persistent):
            return  # bmprov never touched these nodes' boot device
        request = PowerRequest(bootdev=BootDevice.DISK, persistent=True, uefi=default_uefi(config))
        runner = self.ctx.services.power or run_power
        by_serial = {s.node.serial: s for s in states}
        for result in runner(config, [s.node for s in states], request).results:
            s = by_serial[result.serial]
            if result.status == "failed":
                s.fail(BOOT_DEVICE, result.message)
                s.details.update(result.details)
                self._event(s, "complete.boot_device", f"failed: {result.message}")
            elif result.code is ResultCode.NO_BMC:
                s.done.append("no BMC to set back to disk")
                self._event(s, "complete.boot_device", "no BMC: boot device not changed")
            else:
                s.done.append(f"boot device: {result.message}")
                self._event(s, "complete.boot_device", result.message)

    def _local_boot(self, states: list[_Node]) -> list[_Node]:
        writer = NodeFileWriter(self.ctx.config)
        recorder = digests.attach(writer)
        switched = []
        for s in states:
            try:
                writer.local_boot(s.node)
            except BmprovError as exc:
                s.failed = (LOCAL_BOOT, str(exc))  # overrides: this one un-deploys the node
                self._event(s, "complete.local_boot", f"failed: {exc}")
                continue
            s.done.insert(0, "PXE entries switched to local boot, install file removed")
            self._event(s, "complete.local_boot", "every per-MAC entry is local boot")
            switched.append(s)
        recorder.save(self.ctx.db)
        return switched

    def _end_installs(self, switched: list[_Node]) -> None:
        if not switched:
            return
        installs = self.ctx.db.current_installs([s.node.id for s in switched])
        self.ctx.db.end_installs(list(installs), "completed")
        for s in switched:
            if s.node.id in installs:
                self._event(s, "complete.install", f"install {installs[s.node.id].id} completed")

    def _post_task(self, switched: list[_Node]) -> dict[int, TaskResult]:
        results: dict[int, TaskResult] = {}
        by_serial = {s.node.serial: s for s in switched}
        for result in run_tasks(self.task, [s.node for s in switched]):
            s = by_serial[result.serial]
            results[s.node.id] = result
            self._event(s, "post_install.task", result.detail())
            s.details["post_install"] = {"exit": result.exit_status, "seconds": result.seconds}
            if result.ok:
                s.done.append(f"post-install task: {result.message}")
            else:
                s.fail(POST_TASK, f"post-install task: {result.message}")
        return results

    def _notify(self, switched: list[_Node], tasks: dict[int, TaskResult]) -> None:
        todo = [(s.node, tasks.get(s.node.id)) for s in switched]
        by_serial = {s.node.serial: s for s in switched}
        for serial, ok, message in notify_all(self.notify, todo):
            s = by_serial[serial]
            self._event(s, "post_install.url", message)
            if ok:
                s.done.append(f"post-install URL: {message}")
            else:
                s.fail(POST_URL, f"post-install URL: {message}")


def _outcome(s: _Node) -> Outcome:
    if s.failed is None:
        return Outcome(s.node, True, "; ".join(s.done), details=s.details)
    step, reason = s.failed
    message = "; ".join([reason, *s.done]) if s.done else reason
    return Outcome(s.node, False, message, step, s.details, stay=step != LOCAL_BOOT)
