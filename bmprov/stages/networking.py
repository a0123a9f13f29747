"""The networking stage's entry action: allocate → reserve → boot/install files → os_provisioning.

Per batch, not per node:

1. every node without a MAC fails at ``allocate`` (a serial-only sheet row cannot PXE-boot),
   and every node whose OS has no profile fails at ``os`` (never installed as another OS;
   :mod:`bmprov.boot.osprofiles`), before either gets an address;
2. the batch's addresses are chosen in **one** transaction (:func:`bmprov.ipam.allocate`);
   nodes that already hold one keep it, so a re-run picks up where it stopped;
3. **one** backend connection reserves every node; each successful reservation is queued to
   :class:`~bmprov.boot.jobs.FileJobs`, which renders the node's boot and install files in a
   worker while the main thread does the next DHCP round trip;
4. a node whose reservation fails gets its freshly chosen address back (released in one
   transaction), so the state never holds an IP without its reservation; a node whose files
   fail keeps IP and reservation (consistent) and is failed at that step; re-running resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bmprov import ipam
from bmprov import states as st
from bmprov.boot import digests, tokenctx
from bmprov.boot.jobs import FileJobs, FileResult, FileWriter
from bmprov.boot.osprofiles import site_profiles, unknown_os
from bmprov.boot.sync import clean_temps
from bmprov.boot.writer import NodeFileWriter
from bmprov.dhcp import DhcpBackend, DhcpSettings, Reservation, open_backend
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.stages.base import ActionContext, Outcome, StageAction

log = logging.getLogger(__name__)

ALLOCATE, RESERVE, RELEASE, OS = "allocate", "reserve", "release", "os"


@dataclass
class _Batch:
    """Book-keeping for one run: what failed where, and what each node got."""

    failed: dict[int, tuple[str, str]] = field(default_factory=dict)  # id → (step, reason)
    ips: dict[int, str] = field(default_factory=dict)
    files: dict[int, FileResult] = field(default_factory=dict)
    reserved: set[int] = field(default_factory=set)  # ids the server holds after commit

    def fail(self, node: Node, step: str, reason: str) -> None:
        self.failed.setdefault(node.id, (step, reason))


class NetworkingAction(StageAction):
    """allocate → reserve → files, batched; see the module docstring.

    ``ctx.services`` may give a DHCP backend and a file writer instead of the configured ones.
    The DHCP settings and the file writer (templates compiled once) serve check and run.
    """

    stage = st.NETWORKING

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        self.settings = ctx.config.settings.dhcp
        self.own_writer = ctx.services.file_writer is None
        self.writer: FileWriter = ctx.services.file_writer or NodeFileWriter(ctx.config)
        if isinstance(self.writer, NodeFileWriter):
            digests.attach(self.writer)

    def check(self) -> None:
        """Pools, DHCP backend settings (OMAPI key...) and site templates, before any move."""
        check_dhcp(self.ctx, self.settings)
        if isinstance(self.writer, NodeFileWriter):
            self.writer.check()  # settings, profiles, site templates

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """Set up every node's network and boot files, yielding one outcome per node."""
        ctx, settings = self.ctx, self.settings
        backend = ctx.services.dhcp_backend or open_backend(settings)
        batch = _Batch()
        ready = []
        profiles = _profile_names(ctx)
        for node in nodes:
            if node.mac is None:
                batch.fail(node, ALLOCATE, "no MAC address known yet (serial-only sheet row)")
            elif node.os and profiles is not None and node.os not in profiles:
                batch.fail(node, OS, unknown_os(node.os, profiles))
            else:
                ready.append(node)
        allocation = ipam.allocate(ctx.db, list(settings.pools), ready)
        log.info(
            "networking: allocate: %d address(es) for %d node(s) with a MAC, %d refused",
            len(allocation.ips),
            len(ready),
            len(allocation.errors),
        )
        for node in ready:
            if node.id in allocation.errors:
                batch.fail(node, ALLOCATE, allocation.errors[node.id])
            else:
                batch.ips[node.id] = allocation.ips[node.id]
        todo = [n for n in ready if n.id in batch.ips]
        try:
            if todo:
                files = FileJobs(self.writer, len(todo), todo, fork=self.own_writer)
                _reserve_and_write(ctx, settings, backend, files, todo, batch, self._issue_tokens)
        finally:  # even on a crash: no address without its reservation
            undo = allocation.new - batch.reserved
            if undo:
                ipam.release(ctx.db, sorted(undo))
        if todo and isinstance(self.writer, NodeFileWriter):
            _write_defaults(self.writer)
            rendered = [(i, r.digest) for i, r in batch.files.items() if r.ok and r.digest]
            ctx.db.save_file_digests(rendered)  # reconcile then checks them by hash
        for node in nodes:
            yield _outcome(node, batch)

    def _issue_tokens(self, todo: list[Node]) -> None:
        """A fresh install (token) per node, one transaction, before the file workers fork
        (at the first file job): they inherit the writer with the installs, the site secret
        and serve's URL. Called once the DHCP store is locked: two batches on the same nodes
        then open and write in turn, so the files hold the token of the install that stays
        open (issued before the lock, a losing batch's files kept a superseded token)."""
        installs = tokenctx.for_networking(self.ctx.config, self.ctx.db, todo)
        log.info("networking: tokens: %d new install(s)", len(installs))
        if isinstance(self.writer, NodeFileWriter):
            self.writer.tokens = tokenctx.InstallTokens.load(self.ctx.config, installs)


def _profile_names(ctx: ActionContext) -> set[str] | None:
    """The site's OS profile names (None: a bad ``[boot.os]``, which the file step reports)."""
    try:
        return set(site_profiles(ctx.config)[0])
    except BmprovError:
        return None


def _write_defaults(writer: NodeFileWriter) -> None:
    """The loaders' fallback files (local boot, iPXE's boot.ipxe), so a site that never ran
    `bmprov pxe render` still boots unknown machines to disk, and no dead run's temp file.
    Unchanged files are not rewritten; a failure here is logged, not charged to the nodes
    (their own entries are in place)."""
    try:
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
    issue_tokens: Callable[[list[Node]], None],
) -> None:
    try:
        backend.open()
    except BmprovError as exc:
        for node in todo:
            batch.fail(node, RESERVE, str(exc))
        files.results()
        return
    try:
        issue_tokens(todo)
        backend.claim(_owners(ctx))
        wanted: list[tuple[Node, Reservation]] = []
        for node in todo:
            try:
                wanted.append((node, _reservation(settings, node, batch.ips[node.id])))
            except BmprovError as exc:
                batch.fail(node, RESERVE, str(exc))
        log.info("networking: reserve: %d reservation(s) on %s", len(wanted), settings.backend)
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
        log.info("networking: files: boot and install files for %d node(s)", len(batch.files))
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
    return {a.ip: a.mac for a in ctx.db.addressed()}


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


def check_dhcp(ctx: ActionContext, settings: DhcpSettings) -> None:
    """Pools and the DHCP backend's settings (OMAPI key, dnsmasq/Kea paths); connects to nothing.

    Networking and decommissioning share it (both use the DHCP backend)."""
    if ctx.services.dhcp_backend is None:
        open_backend(settings).check()
