"""What a render gave, kept so a clean node's files are checked by a read and a hash.

``bmprov reconcile`` must tell whether every node's boot entries and install file are what a
render would write now. Rendering 10,000 install-mode nodes costs ~2 s of CPU; reading and
hashing their files costs a fraction of that. So whenever a writer renders a node (networking,
``pxe render``/``clear``, the deployed hook, ``reconcile --fix``) it records, per node, a
:class:`~bmprov.store.FileDigest` in the state (table ``file_digests``):

* ``inputs``: a fingerprint of *everything* the rendered bytes depend on: the settings, install
  defaults and every template (:meth:`NodeFileWriter.digest`), the rendering code itself (the
  source of :data:`CODE_MODULES` and the Jinja version, so an upgrade of bmprov counts as a
  change), the mode (install or local boot), the node's serial, MACs, OS, host name, address
  and install options, and in install mode serve's URL and the node's token (hashed: no secret
  is stored);
* ``paths`` and ``digest``: the files rendered, and one SHA-256 over their contents.

A record states a fact about a pure function (these inputs render to those bytes), so it stays
true whatever happens to the files later, and whether the write itself succeeded. Reconcile
recomputes a node's inputs fingerprint (cheap: no rendering) and, when it equals the record's,
reads the recorded paths and compares the digest: equal means the files are exactly what a
render would write. Any difference (other inputs, a missing, edited or foreign file, no record)
falls back to rendering the node and comparing byte for byte, which names the drift. A writer
that renders without recording only costs speed, never correctness.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import jinja2

from bmprov.nodes import Node
from bmprov.store import FileDigest, RenderRow, Store

CODE_MODULES = (
    "bmprov.boot.writer",
    "bmprov.boot.render",
    "bmprov.boot.settings",
    "bmprov.boot.osprofiles",
    "bmprov.boot.names",
    "bmprov.boot.tokenctx",
    "bmprov.install",
    "bmprov.tokens",
    "bmprov.validate",
)
"""Modules (a package: all its ``.py`` files) whose code shapes the rendered bytes."""


class _Writer(Protocol):
    """What the digests need of :class:`bmprov.boot.writer.NodeFileWriter`."""

    tokens: Any

    def digest(self) -> str:
        """Settings, install defaults and templates."""
        ...


@functools.cache
def code_digest() -> str:
    """A digest of the rendering code (:data:`CODE_MODULES`) and the Jinja version."""
    sha = hashlib.sha256(jinja2.__version__.encode())
    for name in CODE_MODULES:
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "")
        files = sorted(origin.parent.glob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def base_key(writer: _Writer) -> str:
    """What every node's inputs fingerprint starts with (settings, templates, code)."""
    return hashlib.sha256(f"{writer.digest()}\x1f{code_digest()}".encode()).hexdigest()


def inputs_key(
    base: str, node: Node | RenderRow, ip: str | None, tokens: dict[str, Any] | None
) -> str:
    """The inputs fingerprint of one node's files: install mode with ``ip`` (and ``tokens``,
    the writer's ``bmprov_url``/``install_token`` context), local boot with None."""
    parts = [base, node.serial, ",".join(node.macs)]
    if ip is None:
        parts.append("local")
    else:
        if isinstance(node, RenderRow):
            options = node.options_json
            if options != "{}":
                options = json.dumps(json.loads(options), sort_keys=True)
        else:
            options = json.dumps(node.install_options, sort_keys=True)
        tok = tokens or {}
        parts += ["install", ip, node.os or "", node.hostname or "", options]
        parts += [str(tok.get("bmprov_url", "")), str(tok.get("install_token", ""))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def content_digest(contents: Iterable[bytes]) -> str:
    """One SHA-256 over files' contents, each length-prefixed."""
    sha = hashlib.sha256()
    for data in contents:
        sha.update(len(data).to_bytes(8, "big"))
        sha.update(data)
    return sha.hexdigest()


def matches(record: FileDigest) -> bool:
    """True if every recorded file exists and together they hold the recorded digest."""
    contents = []
    for path in record.paths:
        data = read(path)
        if data is None:
            return False
        contents.append(data)
    return content_digest(contents) == record.digest


def read(path: str) -> bytes | None:
    """The file's bytes; None if it (or a directory on its path) is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)


class Recorder:
    """The writer's render hook: a :class:`FileDigest` per node rendered, saved by the caller
    (:meth:`save`) or carried back from a forked file worker (:meth:`take`)."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self._base: str | None = None
        self.records: dict[int, FileDigest] = {}

    def __call__(self, node: Node, ip: str | None, files: dict[str, str]) -> None:
        """Record one node's rendered ``files`` (``ip`` None: local boot)."""
        if self._base is None:
            self._base = base_key(self.writer)
        tokens = None
        if ip is not None and self.writer.tokens is not None:
            tokens = self.writer.tokens.context(node.id)
        key = inputs_key(self._base, node, ip, tokens)
        digest = content_digest(text.encode() for text in files.values())
        self.records[node.id] = FileDigest(key, tuple(files), digest)

    def take(self, node_id: int) -> FileDigest | None:
        """The node's record, removed from this recorder."""
        return self.records.pop(node_id, None)

    def save(self, db: Store) -> None:
        """Store every record (one transaction) and forget them."""
        if self.records:
            db.save_file_digests(self.records.items())
            self.records = {}


def attach(writer: Any) -> Recorder:
    """A :class:`Recorder` installed as ``writer``'s render hook."""
    recorder = Recorder(writer)
    writer.on_render = recorder
    return recorder
