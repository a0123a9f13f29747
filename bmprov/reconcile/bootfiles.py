"""The boot plane: every node's per-MAC entries and install file against the state file.

What each node should have is decided exactly as ``bmprov pxe render`` decides it
(:func:`bmprov.boot.sync.wants_install`, the render fingerprint, :class:`NodeFileWriter`
rendering in memory); each expected file is then read once and compared byte for byte. A node
whose rendering inputs are those of its last render (:mod:`bmprov.boot.digests`) is not
rendered: its recorded files are read and hashed instead, and only a digest that differs makes
it rendered and compared as above. Kinds:

* ``missing`` / ``stale`` (inputs changed since the last render) / ``edited`` (same inputs,
  other bytes): fixed by rendering the node again, as ``pxe render`` does;
* ``install_entry``: a node that must boot its disk (deployed, cleared, leaving) has an entry
  that boots the installer, the reinstall-loop risk: fixed by switching it to local boot;
* ``install_file_left``: such a node still has its install file (it carries the root password
  hash): fixed by deleting it;
* ``orphan``: per-MAC or install files of MACs/serials bmprov does not know (``--prune``);
* ``error``: the node's files cannot be rendered (its value or template is refused).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from bmprov import tokens
from bmprov.boot import digests
from bmprov.boot.sync import fingerprint, stale_files, wants_install
from bmprov.boot.tokenctx import InstallTokens
from bmprov.boot.writer import NodeFileWriter
from bmprov.errors import BmprovError, ConfigError
from bmprov.fsutil import fsync_dir
from bmprov.nodes import Node
from bmprov.reconcile.findings import Context, Finding
from bmprov.serve.settings import serve_url
from bmprov.store import BootRecord, FileDigest, RenderRow

PLANE = "boot"
_CLOUD_INIT = ("user-data", "meta-data")


def check_boot_files(ctx: Context) -> Iterator[Finding]:
    """Expected vs present boot files; see the module docstring."""
    writer = NodeFileWriter(ctx.config)
    writer.check()
    digest = writer.digest()
    base = digests.base_key(writer)
    prior = ctx.db.boot_records()
    records = ctx.db.file_digests()
    recorder = digests.attach(writer) if ctx.fix else None
    writer.tokens = _tokens(ctx)
    installs = writer.tokens.installs if writer.tokens else {}
    serials = {n.serial for n in ctx.nodes}
    rows = [r for r in ctx.db.render_rows() if r.serial in serials and r.macs]
    install_dir = writer.settings.http_root / writer.settings.install_dir
    present = _names(install_dir)
    done: list[tuple[int, BootRecord]] = []
    written: list[Path] = []
    for row in rows:
        before = prior.get(row.id)
        cleared = before.cleared_at if before else None
        install = wants_install(row, cleared)
        current = installs.get(row.id) if install else None
        new = fingerprint(digest, install, row, current.id if current else None)
        record = records.get(row.id)
        key = _inputs(base, writer, row, install)
        if record and record.inputs == key and _as_rendered(record, row, install, present):
            continue
        # no record: never rendered (or by a writer that does not record)
        changed = (before is not None and before.fingerprint != new) or bool(
            record and record.inputs != key
        )
        node = _node(row)
        found = list(_node_findings(writer, node, install, changed, present, install_dir))
        if found and ctx.fix and all(f.kind != "error" for f in found):
            written += _repair(ctx, writer, node, install, found)
            if all(f.fixed for f in found):
                done.append((row.id, BootRecord(new, cleared)))
        yield from found
    for directory in {path.parent for path in written}:
        fsync_dir(directory)  # the renames survive a crash, as pxe render's do
    if done:
        ctx.db.save_boot_records(done)
    if recorder is not None:
        recorder.save(ctx.db)
    known_macs = {m for n in ctx.all_nodes for m in n.macs}
    known_serials = {n.serial for n in ctx.all_nodes}
    for path in stale_files(writer.settings, known_macs, known_serials):
        yield _orphan(ctx, path)


def _tokens(ctx: Context) -> InstallTokens | None:
    """The tokens the files were rendered with: each node's open install (never a new one,
    and the site secret is not created: a read-only run writes nothing)."""
    try:
        secret = tokens.load_secret(ctx.config, create=False)
    except ConfigError:
        return None  # no secret yet: no token was ever issued
    return InstallTokens(serve_url(ctx.config), secret, ctx.db.current_installs())


def _node_findings(
    writer: NodeFileWriter,
    node: Node,
    install: bool,
    changed: bool,
    present: set[str],
    install_dir: Path,
) -> Iterator[Finding]:
    try:
        if install and not node.ip:
            return  # pxe render reports it (no address yet): not drift of the boot tree
        # the writer's own string-keyed rendering: a Path per file cost 1 s per 40,000 files
        files = (
            writer._render_install(node, node.ip or "") if install else writer._render_local(node)
        )
    except BmprovError as exc:
        yield Finding(node.serial, PLANE, "error", "renderable files", str(exc))
        return
    if writer.on_render is not None:  # --fix: what was rendered, so the next run only hashes
        writer.on_render(node, node.ip if install else None, files)
    for path, text in files.items():
        data = digests.read(path)
        if data is None:
            yield Finding(node.serial, PLANE, "missing", str(path), None)
        elif data != text.encode():
            if not install and b"initrd" in data:
                yield Finding(
                    node.serial,
                    PLANE,
                    "install_entry",
                    f"{path}: local boot",
                    f"boots the installer (node is {node.stage})",
                )
            else:
                kind = "stale" if changed else "edited"
                yield Finding(node.serial, PLANE, kind, f"{path}: as rendered", "other content")
    if not install:
        yield from _left(node.serial, node.stage, present, install_dir)


def _left(serial: str, stage: str, present: set[str], install_dir: Path) -> Iterator[Finding]:
    """A local-boot node's install file(s) still there."""
    left = [install_dir / f"{serial}.cfg"] if f"{serial}.cfg" in present else []
    if serial in present:
        left += [install_dir / serial / n for n in _CLOUD_INIT]
    for leftover in left:
        if leftover.is_file():
            yield Finding(
                serial,
                PLANE,
                "install_file_left",
                "no install file",
                f"{leftover} (holds the root password hash; node is {stage})",
            )


def _as_rendered(record: FileDigest, row: RenderRow, install: bool, present: set[str]) -> bool:
    """True if the recorded files hold what was rendered (the inputs are the same) and a
    local-boot node has no install file left."""
    if install:
        return bool(row.ip) and digests.matches(record)
    return not {row.serial, f"{row.serial}.cfg"} & present and digests.matches(record)


def _inputs(base: str, writer: NodeFileWriter, row: RenderRow, install: bool) -> str:
    """The node's rendering-inputs fingerprint now (as :class:`digests.Recorder` makes it)."""
    if not install:
        return digests.inputs_key(base, row, None, None)
    tokens = writer.tokens.context(row.id) if writer.tokens else None
    return digests.inputs_key(base, row, row.ip or "", tokens)


def _repair(
    ctx: Context, writer: NodeFileWriter, node: Node, install: bool, found: list[Finding]
) -> list[Path]:
    """Render the node again, as ``pxe render`` would; mark its findings fixed."""
    try:
        # local boot: the entries first, then the install file goes
        paths = writer.write(node, node.ip or "") if install else writer.local_boot(node)
    except BmprovError as exc:
        for finding in found:
            finding.note = f"not repaired: {exc}"
        return []
    mode = "install entries rewritten" if install else "local boot, install file removed"
    kinds = ", ".join(sorted({f.kind for f in found}))
    for finding in found:
        finding.fixed, finding.note = True, mode
    ctx.fixed(node, f"boot files ({kinds}): {mode}")
    return paths


def _orphan(ctx: Context, path: Path) -> Finding:
    finding = Finding(None, PLANE, "orphan", None, str(path))
    if not ctx.prune:
        finding.note = "remove with --prune"
        return finding
    try:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        finding.note = f"not removed: {exc.strerror or exc}"
        return finding
    finding.fixed, finding.note = True, "removed (--prune)"
    return finding


def _names(directory: Path) -> set[str]:
    try:
        return set(os.listdir(directory))  # noqa: PTH208  (one listing, not a stat per node)
    except FileNotFoundError:
        return set()


def _node(row: RenderRow) -> Node:
    from bmprov.boot.sync import _node as node_of  # noqa: PLC0415  (pxe render's own conversion)

    return node_of(row)
