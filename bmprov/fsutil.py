"""Atomic, change-aware file writes.

Every generated file (boot entries, install files, DHCP host files) goes through
:func:`write_if_changed`: the content lands in a temp file in the same directory and is renamed
over the target, so a TFTP or HTTP client never reads half a file, and nothing is written when
the bytes are already there (mtimes and inotify stay quiet for unchanged nodes).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temp file + ``os.replace``), readable by daemons."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        Path(tmp).chmod(mode)  # mkstemp makes 0600; tftpd/httpd run as another user
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def write_if_changed(path: Path, data: bytes | str, mode: int = 0o644) -> bool:
    """Write atomically unless ``path`` already holds exactly ``data``. Returns True if written."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if path.stat().st_size == len(raw) and path.read_bytes() == raw:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, raw, mode)
    return True


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames) to disk, once per batch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
