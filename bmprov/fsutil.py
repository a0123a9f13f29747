"""Atomic, change-aware file writes.

Every generated file (boot entries, install files, DHCP host files) goes through
:func:`write_if_changed` (or :func:`update_file`, its batch form): the content lands in a temp
file in the same directory and is renamed over the target, so a TFTP or HTTP client never reads
half a file, and nothing is written when the bytes are already there (mtimes and inotify stay
quiet for unchanged nodes).

The batch form costs few system calls, since a networking batch writes 40,000+ files: one
``open`` that fails for a new file (or ``open``/``fstat``/``read`` for an existing one), then
``open(O_TMPFILE)`` of an unnamed file in the target's directory, ``write``, ``fchmod``,
``linkat`` to a temp name, ``close`` and ``rename``. Paths are plain strings here: building
``Path`` objects cost more than the system calls.

A kill between write and rename must not leave a file behind (issue 8 found
``http/.boot.ipxe.15724.tmp``, which an HTTP server would serve). The content is therefore
written into an *unnamed* file (``O_TMPFILE``: the kernel frees it if the process dies) that
gets a name only for the two system calls between ``linkat`` and ``rename``. Where the file
system has no ``O_TMPFILE`` (or /proc is missing), a named temp file is written instead. Either
way the temp name is a dot-file ``.NAME.PID.tmp`` (``.NAME.PID.XXXXXXXX.tmp`` if taken), so
daemons that scan a directory skip it and :func:`remove_stale_temps` can tell a dead writer's
leftover from a live one's. The ``linkat`` cost ~20 µs per file on tmpfs (+25–30% of
NodeFileWriter's CPU for fresh files, docs/boot-files.md) while every write went through a temp
name; a file that does not exist yet (:func:`create_file`: a fresh boot tree, a new node) is now
linked straight under its own name, which costs no more than the named temp file and rename
did. Unchanged files cost nothing more.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_CLOEXEC
UNNAMED_TEMPS = hasattr(os, "O_TMPFILE")
"""Write into unnamed temp files (Linux); False: named ones only (also a switch for benches)."""
_UNNAMED = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC
_NO_UNNAMED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}
"""What ``open(O_TMPFILE)`` says where the file system cannot do it (ENOENT: no directory,
which callers handle by making it)."""
_named_only: set[str] = set()
"""Directories where unnamed temp files failed once: named ones from then on."""
TEMP_NAME = re.compile(r"\.(.+)\.([0-9]{1,10})(?:\.[0-9a-f]{8})?\.tmp")


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


def _open_unnamed(directory: str, mode: int) -> int:
    """An unnamed file (``O_TMPFILE``) in ``directory``, or -1 where it takes named temp files
    (switched off, or a file system without them: remembered for the directory)."""
    if not UNNAMED_TEMPS or directory in _named_only:
        return -1
    try:
        return os.open(directory, _UNNAMED, mode)
    except OSError as exc:
        if exc.errno not in _NO_UNNAMED:
            raise
        _named_only.add(directory)
        return -1


def replace_file(path: str, raw: bytes, mode: int = 0o644) -> None:
    """Write ``raw`` to a temp file beside ``path`` (mode ``mode``) and rename it over ``path``."""
    directory, name = os.path.split(path)
    directory = directory or "."
    fd = _open_unnamed(directory, mode)
    tmp = ""
    try:
        if fd < 0:
            fd, tmp = _named_temp(directory, name, mode)
        _write_all(fd, raw, mode)
        if not tmp:
            tmp = _link_unnamed(fd, directory, name)
        if not tmp:  # no /proc: this directory takes named temp files from now on
            _named_only.add(directory)
            os.close(fd)
            fd, tmp = _named_temp(directory, name, mode)
            _write_all(fd, raw, mode)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)  # noqa: PTH104
    except BaseException:
        if fd >= 0:
            os.close(fd)
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # noqa: PTH108
        raise


def create_file(path: str, raw: bytes, mode: int = 0o644) -> None:
    """:func:`replace_file` for a file that is not there yet (a fresh boot tree): the unnamed
    file is linked under its own name, so it never has a temp name and needs no rename. If the
    name was taken meanwhile (or the file system has no unnamed files), :func:`replace_file`.
    """
    directory = os.path.dirname(path) or "."  # noqa: PTH120  (str paths)
    fd = _open_unnamed(directory, mode)
    if fd < 0:
        replace_file(path, raw, mode)
        return
    try:
        _write_all(fd, raw, mode)
        proc = _proc_fd()
        if proc >= 0:
            with contextlib.suppress(FileExistsError):  # made meanwhile: replaced below
                os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
                return
    finally:
        os.close(fd)
    replace_file(path, raw, mode)


def _write_all(fd: int, raw: bytes, mode: int) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view) :]
    os.fchmod(fd, mode)  # whatever the umask: tftpd/httpd run as another user


def _temp_names(directory: str, name: str) -> Iterable[str]:
    """``.NAME.PID.tmp``, then random variants (another thread of this pid, a leftover)."""
    base = os.path.join(directory, f".{name}.{os.getpid()}")  # noqa: PTH118  (str paths)
    yield f"{base}.tmp"
    for _ in range(100):
        yield f"{base}.{secrets.token_hex(4)}.tmp"


def _named_temp(directory: str, name: str, mode: int) -> tuple[int, str]:
    for tmp in _temp_names(directory, name):
        try:
            return os.open(tmp, _NEW, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp name", os.path.join(directory, name))  # noqa: PTH118


_proc_fds: dict[int, int] = {}
"""pid → an open /proc/PID/fd directory (per pid: a forked worker has its own fd table)."""


def _link_unnamed(fd: int, directory: str, name: str) -> str:
    """Give the unnamed file a temp name (``linkat`` via /proc); "" if /proc is missing."""
    proc = _proc_fd()
    if proc < 0:
        return ""
    for tmp in _temp_names(directory, name):
        try:  # src_dir_fd makes CPython call linkat(..., AT_SYMLINK_FOLLOW), not link()
            os.link(str(fd), tmp, src_dir_fd=proc, follow_symlinks=True)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temp name", os.path.join(directory, name))  # noqa: PTH118


def _proc_fd() -> int:
    """This process's open /proc/PID/fd directory (-1 without /proc)."""
    pid = os.getpid()
    if pid not in _proc_fds:
        try:
            _proc_fds[pid] = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return -1
    return _proc_fds[pid]


def stale_temps(directory: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Temp files in ``directory`` left by bmprov processes that no longer exist (``names``:
    its listing, if the caller has one)."""
    if names is None:
        try:
            names = os.listdir(directory)  # noqa: PTH208  (names, not Paths: 10k entries)
        except (FileNotFoundError, NotADirectoryError):
            return []
    out = []
    for name in names:
        match = TEMP_NAME.fullmatch(name) if name[:1] == "." else None
        if match and not _alive(int(match.group(2))):
            out.append(directory / name)
    return out


def remove_stale_temps(
    directories: Iterable[Path], listed: Mapping[Path, Iterable[str]] | None = None
) -> list[Path]:
    """Delete dead writers' temp files; the paths removed. A live writer's are kept.
    ``listed``: directory → names, for directories the caller listed already."""
    removed = []
    for directory in directories:
        for path in stale_temps(directory, (listed or {}).get(directory)):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie (a killed writer not yet reaped: its parent,
    the killed batch, is gone too, and PID 1 reaps when it gets round to it)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: still look for a zombie
    except OverflowError:
        return True  # no such pid number: not ours to judge
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rpartition(b")")[2].split()[:1] != [b"Z"]


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames) to disk, once per batch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
