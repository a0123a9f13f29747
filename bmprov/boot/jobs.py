"""Boot/install file writing that runs *beside* the DHCP round trips of a networking batch.

Rendering and writing a node's four or five files costs about twice the CPU of its pipelined
OMAPI add (~210 µs against ~110 µs per node on the 2-core bench box), so overlapping the two
decides the batch's speed. A thread cannot do it: the writer is pure Python and holds the GIL,
and every OMAPI reply would then wait for the switch interval. Large batches therefore write in
forked worker processes (one per core, in chunks of nodes so the pipe is not crossed per node;
the nodes and the batch's writer are inherited through fork, a job is just an id and an IP),
niced so that the DHCP ping-pong between the main process and dhcpd is woken first; small
batches, and writers given by the caller (tests), use one thread, which is cheaper to start.

Results come back per node id: the paths written, or the step and reason that failed.

A worker dies with the batch: a ``kill -9`` of bmprov used to leave both workers running for
good, re-parented to PID 1, holding the state file open (issue 8, 7 trials in 10). Each worker
asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), checks right after
that the parent is still the one that forked it (it may have died before the ``prctl``), and
checks again before every node, so it never writes a file once the batch is gone.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from bmprov.boot.digests import Recorder
from bmprov.errors import BmprovError, StepFailed
from bmprov.fsutil import fsync_dir
from bmprov.nodes import Node
from bmprov.store import FileDigest

log = logging.getLogger(__name__)

PROCESS_MIN_NODES = 200
"""Below this many nodes a worker process costs more to start than it saves."""
CHUNK = 64
MAX_WORKERS = 4
"""Worker processes: one per core, at most this many (the main process mostly waits on
pipelined DHCP replies; measured on 2 cores, 2 workers beat 1 by ~15%)."""
WORKER_NICENESS = 10
"""Workers yield the CPU to the main process and dhcpd: the DHCP round trips are the critical
path; file work fills the cores around them and finishes just after (measured on 2 cores)."""
FILES_STEP = "boot files"


class FileWriter(Protocol):
    """What networking needs from :class:`bmprov.boot.writer.NodeFileWriter`."""

    def write(self, node: Node, ip: str) -> list[Path]:
        """Write the node's boot and install files; StepFailed on a bad value."""
        ...


@dataclass(frozen=True)
class FileResult:
    """One node's files: the paths, or the step and reason that failed.

    Paths travel as strings (cheap to pickle) and become :class:`~pathlib.Path` on demand.
    """

    files: tuple[str, ...] = ()
    step: str | None = None
    reason: str = ""
    digest: FileDigest | None = None  # what was rendered (bmprov.boot.digests), if recorded

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files written."""
        return tuple(Path(f) for f in self.files)

    @property
    def ok(self) -> bool:
        """True when the files were written."""
        return self.step is None


Job = tuple[int, Node | None, str]  # node id, the node (None: a shared one), its IP

_WORKER: FileWriter | None = None
_SHARED: dict[int, Node] = {}
_PARENT = 0
"""In a worker: the batch's pid (0 in the batch itself)."""
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies; exit now if it is already gone.

    The death signal fires when the *thread* that forked us exits: ProcessPoolExecutor forks
    from the thread that submits (here the batch's main thread), so that is the process.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the per-node check below still holds
        log.debug("PR_SET_PDEATHSIG unavailable")
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def _init_worker(writer: FileWriter, shared: dict[int, Node], parent: int) -> None:
    global _WORKER, _SHARED, _PARENT  # noqa: PLW0603  (one writer per worker process)
    die_with_parent(parent)
    _PARENT = parent
    os.nice(WORKER_NICENESS)
    _WORKER = writer  # the batch's writer, templates compiled: inherited through fork
    _SHARED = shared  # inherited through fork, never pickled


def _write_chunk(
    jobs: list[Job], writer: FileWriter | None = None, shared: dict[int, Node] | None = None
) -> list[tuple[int, FileResult]]:
    """Write a chunk of nodes; never raises (results cross a process boundary as data)."""
    use = writer or _WORKER
    assert use is not None  # noqa: S101  (set by the initializer)
    known = _SHARED if shared is None else shared
    out: list[tuple[int, FileResult]] = []
    for node_id, given, ip in jobs:
        if _PARENT and os.getppid() != _PARENT:
            os._exit(1)  # the batch is gone: write nothing more (~0.1 µs per node)
        node = given or replace(known[node_id], ip=ip)
        try:
            written = tuple(_write_str(use, node, ip))
            hook = getattr(use, "on_render", None)
            record = hook.take(node_id) if isinstance(hook, Recorder) else None
            out.append((node_id, FileResult(written, digest=record)))
        except StepFailed as exc:
            out.append((node_id, FileResult(step=exc.step, reason=exc.reason)))
        except BmprovError as exc:
            out.append((node_id, FileResult(step=FILES_STEP, reason=str(exc))))
        except Exception as exc:
            log.exception("writing files for %s crashed", node.serial)
            reason = f"internal error: {type(exc).__name__}"
            out.append((node_id, FileResult(step=FILES_STEP, reason=reason)))
    return out


def _write_str(writer: FileWriter, node: Node, ip: str) -> list[str]:
    """The writer's paths as strings (NodeFileWriter makes them without ``Path`` objects)."""
    fast = getattr(writer, "write_str", None)
    if fast is not None:
        return list(fast(node, ip))
    return [os.fspath(p) for p in writer.write(node, ip)]


class FileJobs:
    """Queue nodes as their reservation succeeds; collect every result at the end."""

    def __init__(
        self, writer: FileWriter, expected: int, nodes: Iterable[Node] = (), *, fork: bool = True
    ) -> None:
        """``nodes``: those that will be submitted, if known; forked workers inherit them (and
        ``writer``), so a job crosses the pipe as (id, IP) instead of a pickled node.
        ``fork=False`` keeps the work on one thread (tests' writers record what they saw)."""
        self._writer: FileWriter | None = writer
        self._shared = {node.id: node for node in nodes}
        self._pending: list[Job] = []
        self._futures: list[Future[list[tuple[int, FileResult]]]] = []
        self._executor: Executor
        if fork and expected >= PROCESS_MIN_NODES:
            context = multiprocessing.get_context("fork")
            workers = min(MAX_WORKERS, os.cpu_count() or 2)
            init = (writer, self._shared, os.getpid())
            self._writer = None  # the workers have theirs
            self._executor = ProcessPoolExecutor(workers, context, _init_worker, init)
            self._chunk = CHUNK
            self._pass: dict[int, Node] | None = None  # the workers have their own copy
        else:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="bmprov-files")
            self._chunk = 1 if expected < PROCESS_MIN_NODES else CHUNK
            self._pass = self._shared

    def submit(self, node: Node, ip: str) -> None:
        """Write ``node``'s files with address ``ip`` (soon, elsewhere)."""
        shared = self._shared.get(node.id) is node
        self._pending.append((node.id, None if shared else replace(node, ip=ip), ip))
        if len(self._pending) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            jobs, self._pending = self._pending, []
            future = self._executor.submit(_write_chunk, jobs, self._writer, self._pass)
            self._futures.append(future)

    def results(self) -> dict[int, FileResult]:
        """Wait for every queued node; node id → result. Shuts the worker down."""
        self._flush()
        out: dict[int, FileResult] = {}
        try:
            for future in self._futures:
                out.update(future.result())
        finally:
            self._executor.shutdown()
        directories = {f.rpartition("/")[0] for result in out.values() for f in result.files}
        for directory in directories:
            fsync_dir(Path(directory))  # once per directory and batch: the renames survive a crash
        return out
