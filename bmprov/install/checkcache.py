"""Render-time install checks done once per template variant, not once per process.

:class:`~bmprov.install.check.RenderCheck` checks the first install file of each *variant*
(template, install kind, syntax version, disk layout, callbacks on or off) a writer renders:
later files of the variant differ only in values the render filters guard. A check costs
50-300 ms (pykickstart, the autoinstall schema; both firmwares), and every ``pxe render`` and
every forked file worker of a networking batch is a process of its own: checked per process,
a one-node ``pxe render`` spent most of its time there and each file worker repeated every
check of the batch.

So a pass is remembered in a small file in the site's cache beside its config
(``.bmprov-cache/render-checks``, :func:`bmprov.boot.render.cache_dir`), one key per line. A
key hashes the variant with everything the file's structure depends on: the writer's digest
(settings, install defaults, every template), the validators (their source, the schema,
pykickstart's and jsonschema's versions). Only passes are stored; a
failure is checked (and reported) again every time. Processes that need the same key wait for
each other on a lock, so the workers of a batch check each variant once between them.
A site without a config file, or a directory bmprov cannot write, checks per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

from bmprov.resources import data_dir

log = logging.getLogger(__name__)

FILE_NAME = "render-checks"
MAX_BYTES = 64 * 1024
"""Past this size the file is started afresh (old digests pile up as templates change)."""
_VALIDATORS = ("check.py", "partman.py", "disklayout.py")


@cache
def validators_digest() -> str:
    """The validators' own inputs: a new pykickstart or an edited check re-checks everything."""
    sha = hashlib.sha256()
    here = Path(__file__).parent
    for path in [
        *(here / name for name in _VALIDATORS),
        data_dir("schemas") / "autoinstall.schema.json",
    ]:
        sha.update(path.read_bytes() + b"\0")
    for package in ("pykickstart", "jsonschema", "PyYAML"):
        try:
            sha.update(f"{package} {metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            sha.update(f"{package} -\0".encode())
    return sha.hexdigest()


class CheckCache:
    """The passes recorded in ``path`` (None: remember nothing beyond this process)."""

    def __init__(self, path: Path | None, digest: Callable[[], str]) -> None:
        self.path = path
        self._digest = digest
        self._salt: str | None = None
        self._known: set[str] | None = None

    def key(self, variant: tuple[object, ...]) -> str:
        """The stored key of one variant under the current templates and validators."""
        if self._salt is None:
            self._salt = f"{self._digest()}\0{validators_digest()}"
        return hashlib.sha256(f"{self._salt}\0{variant!r}".encode()).hexdigest()

    def passed(self, key: str, *, reread: bool = False) -> bool:
        """True if ``key`` passed before (in this process or, if recorded, in another)."""
        if self._known is None or (reread and key not in self._known):
            self._known = self._read()
        return key in self._known

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file's lock (another process checking waits here); no-op without a file."""
        fd = -1
        if self.path is not None:
            try:
                fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                log.debug("render checks: no lock at %s (%s)", self.path, exc)
        try:
            yield
        finally:
            if fd >= 0:
                os.close(fd)  # releases the flock

    def add(self, key: str) -> None:
        """Record a pass (one short ``O_APPEND`` write: concurrent writers never mix lines)."""
        if self._known is None:
            self._known = set()
        self._known.add(key)
        if self.path is None:
            return
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            if self.path.exists() and self.path.stat().st_size > MAX_BYTES:
                flags |= os.O_TRUNC
            fd = os.open(self.path, flags, 0o644)
            try:
                os.write(fd, f"{key}\n".encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("render checks: cannot record at %s (%s)", self.path, exc)

    def _read(self) -> set[str]:
        if self.path is None:
            return set(self._known or ())
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except OSError:
            text = ""
        return {line for line in text.split("\n") if len(line) == 64} | (self._known or set())
