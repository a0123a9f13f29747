"""Atomic, change-aware file writes.

Every generated file (boot entries, install files, DHCP host files) goes through
:func:`write_if_changed` (or :func:`update_file`, its batch form): the content lands in a temp
file in the same directory and is renamed over the target, so a TFTP or HTTP client never reads
half a file, and nothing is written when the bytes are already there (mtimes and inotify stay
quiet for unchanged nodes).

The batch form costs few system calls, since a networking batch writes 40,000+ files: one
``open`` that fails for a new file (or ``open``/``fstat``/``read`` for an existing one), then
``open(O_EXCL)`` of a temp name derived from the target and the pid, ``write``, ``fchmod``,
``close`` and ``rename``. The temp name is a dot-file (daemons that scan a directory skip
dot-files); if it exists already (a crashed run, another thread), a random one is used.
Paths are plain strings here: building ``Path`` objects cost more than the system calls.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_CLOEXEC


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename), readable by daemons."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(os.fspath(path), raw, mode)


def write_if_changed(path: Path, data: bytes | str, mode: int = 0o644) -> bool:
    """Write atomically unless ``path`` already holds exactly ``data``. Returns True if written."""
    raw = data.encode() if isinstance(data, str) else data
    if holds(os.fspath(path), raw):
        return False
    atomic_write(path, raw, mode)
    return True


def update_file(path: str, raw: bytes, mode: int = 0o644) -> bool:
    """:func:`write_if_changed` for a file whose directory exists (FileNotFoundError if not)."""
    if holds(path, raw):
        return False
    replace_file(path, raw, mode)
    return True


def holds(path: str, raw: bytes) -> bool:
    """True if the file at ``path`` exists and holds exactly ``raw``."""
    try:
        fd = os.open(path, _READ)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        if os.fstat(fd).st_size != len(raw):
            return False
        chunks = []
        size = 0
        while size <= len(raw):  # read to EOF (one read for a regular file)
            chunk = os.read(fd, len(raw) + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) == raw
    finally:
        os.close(fd)


def replace_file(path: str, raw: bytes, mode: int = 0o644) -> None:
    """Write ``raw`` to a temp file beside ``path`` (mode ``mode``) and rename it over ``path``."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")  # noqa: PTH118  (str paths: see above)
    try:
        fd = os.open(tmp, _NEW, mode)
    except FileExistsError:
        fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)  # whatever the umask: tftpd/httpd run as another user
        finally:
            os.close(fd)
        os.rename(tmp, path)  # noqa: PTH104
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # noqa: PTH108
        raise


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames) to disk, once per batch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
