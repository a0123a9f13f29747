"""The networking stage's entry action: allocate → reserve → boot/install files → os_provisioning.

Per batch, not per node:

1. every node without a MAC fails at ``allocate`` (a serial-only sheet row cannot PXE-boot);
2. the batch's addresses are chosen in **one** transaction (:func:`bmprov.ipam.allocate`);
   nodes that already hold one keep it, so a re-run picks up where it stopped;
3. **one** backend connection reserves every node; each successful reservation is queued to
   :class:`~bmprov.filejobs.FileJobs`, which renders the node's boot and install files in a
   worker while the main thread does the next DHCP round trip;
4. a node whose reservation fails gets its freshly chosen address back (released in one
   transaction), so the state never holds an IP without its reservation; a node whose files
   fail keeps IP and reservation (consistent) and is failed at that step; re-running resumes.

Leaving service (``decommissioning``) removes the reservation and releases the address.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from bmprov import ipam
from bmprov import states as st
from bmprov.bootfiles import NodeFileWriter
from bmprov.dhcp import DhcpBackend, DhcpSettings, Reservation, open_backend
from bmprov.errors import BmprovError
from bmprov.filejobs import FileJobs, FileResult
from bmprov.lifecycle import ActionContext, Outcome, StageAction, register_action
from bmprov.nodes import Node
from bmprov.pxe import clean_temps

log = logging.getLogger(__name__)

ALLOCATE, RESERVE, RELEASE = "allocate", "reserve", "release"


@dataclass
class _Batch:
    """Book-keeping for one run: what failed where, and what each node got."""

    failed: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (step, reason)
    ips: dict[int, str] = field(default_factory=dict)
    files: dict[int, FileResult] = field(default_factory=dict)
    reserved: set[int] = field(default_factory=set)  # ids the server holds after commit

    def fail(self, node: Node, step: str, reason: str) -> None:
        self.failed.setdefault(node.id, (step, reason))


@register_action(st.NETWORKING)
class NetworkingAction(StageAction):
    """allocate → reserve → files, batched; see the module docstring.

    ``ctx.options`` may carry ``dhcp_backend`` (a :class:`DhcpBackend`) and ``file_writer``
    (a :class:`~bmprov.filejobs.FileWriter`) to replace the configured ones (tests).
    """

    def check(self, ctx: ActionContext) -> None:
        """Pools, DHCP backend settings (OMAPI key...) and site templates, before any move."""
        _check_dhcp(ctx)
        if ctx.options.get("file_writer") is None:
            NodeFileWriter(ctx.config).check()  # settings, profiles, site templates

    def run(self, ctx: ActionContext, nodes: list[Node]) -> Iterator[Outcome]:
        """Set up every node's network and boot files, yielding one outcome per node."""
        settings = DhcpSettings.from_config(ctx.config)
        backend = ctx.options.get("dhcp_backend") or open_backend(settings)
        batch = _Batch()
        ready = []
        for node in nodes:
            if node.mac is None:
                batch.fail(node, ALLOCATE, "no MAC address known yet (serial-only sheet row)")
            else:
                ready.append(node)
        allocation = ipam.allocate(ctx.db, list(settings.pools), ready)
        for node in ready:
            if node.id in allocation.errors:
                batch.fail(node, ALLOCATE, allocation.errors[node.id])
            else:
                batch.ips[node.id] = allocation.ips[node.id]
        todo = [n for n in ready if n.id in batch.ips]
        try:
            if todo:
                files = FileJobs(ctx.config, ctx.options.get("file_writer"), len(todo), todo)
                _reserve_and_write(ctx, settings, backend, files, todo, batch)
        finally:  # even on a crash: no address without its reservation
            undo = allocation.new - batch.reserved
            if undo:
                ipam.release(ctx.db, sorted(undo))
        if todo and ctx.options.get("file_writer") is None:
            _write_defaults(ctx)
        for node in nodes:
            yield _outcome(node, batch)


def _write_defaults(ctx: ActionContext) -> None:
    """The loaders' fallback files (local boot, iPXE's boot.ipxe), so a site that never ran
    `bmprov pxe render` still boots unknown machines to disk, and no dead run's temp file.
    Unchanged files are not rewritten; a failure here is logged, not charged to the nodes
    (their own entries are in place)."""
    from bmprov.bootfiles import NodeFileWriter  # noqa: PLC0415

    try:
        writer = NodeFileWriter(ctx.config)
        clean_temps(writer.settings)  # what a killed run left between linkat and rename
        writer.write_defaults()
    except BmprovError as exc:
        log.warning("default boot files not written: %s", exc)


def _reserve_and_write(
    ctx: ActionContext,
    settings: DhcpSettings,
    backend: DhcpBackend,
    files: FileJobs,
    todo: list[Node],
    batch: _Batch,
) -> None:
    try:
        backend.open()
    except BmprovError as exc:
        for node in todo:
            batch.fail(node, RESERVE, str(exc))
        files.results()
        return
    try:
        backend.claim(_owners(ctx))
        wanted: list[tuple[Node, Reservation]] = []
        for node in todo:
            try:
                wanted.append((node, _reservation(settings, node, batch.ips[node.id])))
            except BmprovError as exc:
                batch.fail(node, RESERVE, str(exc))
        results = backend.add_many(res for _, res in wanted)
        for (node, _), (res, error) in zip(wanted, results, strict=True):
            if error is not None:
                batch.fail(node, RESERVE, str(error))
                continue
            batch.reserved.add(node.id)
            files.submit(node, res.ip)
        failure = _commit(backend)
    finally:
        batch.files = files.results()
        backend.close()
    if failure is not None:
        _undo_batch(todo, batch, failure)


def _commit(backend: DhcpBackend) -> BmprovError | None:
    """Apply buffered reservations (file, Kea); the error, if that fails."""
    try:
        backend.commit()
    except BmprovError as exc:
        return exc
    return None


def _undo_batch(todo: list[Node], batch: _Batch, error: BmprovError) -> None:
    """The commit failed: no node of the batch is reserved; remove the files written."""
    for node in todo:
        if node.id in batch.failed:
            continue
        batch.fail(node, RESERVE, str(error))
        batch.reserved.discard(node.id)
        for path in batch.files.pop(node.id, FileResult()).paths:
            path.unlink(missing_ok=True)


def _reservation(settings: DhcpSettings, node: Node, ip: str) -> Reservation:
    assert node.mac is not None  # noqa: S101  (filtered before allocation)
    return settings.reservation(node.mac, ip, node.serial, node.hostname)


def _owners(ctx: ActionContext) -> dict[str, str]:
    """ip → boot MAC of every node holding an address (one query)."""
    rows = ctx.db.query(
        "SELECT n.ip, m.mac FROM nodes n JOIN macs m ON m.node_id = n.id"
        " WHERE n.ip IS NOT NULL ORDER BY m.position DESC"
    )
    return {r["ip"]: r["mac"] for r in rows}  # lowest position wins (written last)


def _outcome(node: Node, batch: _Batch) -> Outcome:
    result = batch.files.get(node.id)
    if node.id not in batch.failed and result is not None and not result.ok:
        batch.fail(node, result.step or "boot files", result.reason)
    if node.id in batch.failed:
        step, reason = batch.failed[node.id]
        ip = None if step in (ALLOCATE, RESERVE) else batch.ips.get(node.id)
        return Outcome(node, False, reason, step, {"ip": ip})
    ip = batch.ips[node.id]
    return Outcome(node, True, f"{ip} reserved, boot files written", details={"ip": ip})


@register_action(st.DECOMMISSIONING)
class DecommissionAction(StageAction):
    """Leaving service: local boot, no install file, no DHCP reservation, address released.

    The boot entries go first: a leaving machine that PXE-boots must find its disk, never an
    installer (the same rule as *deployed*). A node whose files cannot be switched keeps its
    reservation and address, so a re-run starts it again from the top.
    """

    def check(self, ctx: ActionContext) -> None:
        """The DHCP backend settings and boot settings it needs, before any node moves."""
        _check_dhcp(ctx)
        NodeFileWriter(ctx.config)

    def run(self, ctx: ActionContext, nodes: list[Node]) -> Iterator[Outcome]:
        """One backend connection for the batch; the IP is released only once unreserved."""
        failed: dict[int, tuple[str, str]] = {}
        writer = NodeFileWriter(ctx.config)
        for node in nodes:
            try:
                writer.local_boot(node)
                writer.remove_install(node)
            except BmprovError as exc:
                failed[node.id] = (str(exc), getattr(exc, "step", None) or "local boot")
        settings = DhcpSettings.from_config(ctx.config)
        backend = ctx.options.get("dhcp_backend") or open_backend(settings)
        done: list[Node] = []
        with backend:
            for node in nodes:
                if node.id in failed:
                    continue
                try:
                    for mac in node.macs:
                        backend.remove(mac)
                    done.append(node)
                except BmprovError as exc:
                    failed[node.id] = (str(exc), RELEASE)
        ipam.release(ctx.db, [n.id for n in done])
        for node in nodes:
            if node.id in failed:
                yield Outcome(node, False, *failed[node.id])
            else:
                yield Outcome(node, True, "local boot; install file, reservation and address gone")


def _check_dhcp(ctx: ActionContext) -> None:
    """Pools and the DHCP backend's settings (OMAPI key, dnsmasq/Kea paths); connects to nothing."""
    settings = DhcpSettings.from_config(ctx.config)
    if ctx.options.get("dhcp_backend") is None:
        open_backend(settings).check()
