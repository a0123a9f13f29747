"""Hard deadlines around BMC calls, alone or in a supervised batch.

A call into a BMC library cannot be interrupted (pyghmi may retry for seconds, or forever), so
a deadline means *stop waiting for it*:

* alone, :func:`bounded` runs the call in a daemon thread and waits at most ``seconds``;
* in a batch, :func:`supervised_map` runs each item inline in a worker thread, and the
  caller's thread watches every worker's current call. A worker whose call passes its deadline
  is given up on: its item is reported with the timeout message at once, a fresh worker takes
  its place, and the stuck one stops at its next call boundary (whatever it returns later is
  dropped). This keeps the per-call deadline without a thread hand-off per call, which under a
  busy GIL cost ~40 % of a 200-BMC batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (an item)
R = TypeVar("R")

_LOCAL = threading.local()
TICK = 0.02  # how often a supervisor checks deadlines (the precision of a batch deadline)


class DeadlineExceeded(Exception):  # a signal, turned into a DriverError
    """A bounded call did not finish in time (or its worker was given up on)."""


class Watch:
    """One supervised worker: its current call's deadline, and whether it was given up on."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.item: Any = None
        self.started = 0.0
        self.deadline: float | None = None
        self.what = ""
        self.message = ""
        self.abandoned = False
        self.depth = 0

    def begin(self, seconds: float, what: str, message: str) -> None:
        """A call starts: it must end within ``seconds``."""
        with self.lock:
            if self.abandoned:
                raise DeadlineExceeded(what)
            self.depth += 1
            if self.depth == 1:
                self.deadline = time.monotonic() + seconds
                self.what, self.message = what, message

    def end(self) -> None:
        """The call returned (or raised)."""
        with self.lock:
            self.depth -= 1
            if self.depth == 0:
                self.deadline = None
            if self.abandoned:
                raise DeadlineExceeded(self.what)


def bounded(call: Callable[[], T], seconds: float, what: str, message: str = "") -> T:
    """Run ``call`` with a hard deadline of ``seconds``.

    Inside :func:`supervised_map` the call runs inline and the supervisor enforces the
    deadline (reporting ``message``); elsewhere it runs in a daemon thread.

    :raises DeadlineExceeded: it did not finish in time.
    """
    watch: Watch | None = getattr(_LOCAL, "watch", None)
    if watch is None:
        return call_with_deadline(call, seconds, what)
    watch.begin(seconds, what, message)
    try:
        return call()
    finally:
        watch.end()


def call_with_deadline(call: Callable[[], T], seconds: float, name: str = "bmc-call") -> T:
    """Run ``call`` in a daemon thread; return its result or re-raise its exception.

    :raises DeadlineExceeded: it did not finish within ``seconds`` (the thread is abandoned).
    """
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"bmprov:{name}"[:60], daemon=True)
    thread.start()
    if not done.wait(seconds):
        raise DeadlineExceeded(name)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def supervised_map(
    items: list[I],
    work: Callable[[I], R],
    concurrency: int,
    timed_out: Callable[[I, Watch], R],
) -> Iterator[R]:
    """``work(item)`` for every item, ``concurrency`` at a time; yield results as they finish.

    An item whose current bounded call passes its deadline yields ``timed_out(item, watch)``
    instead, at the deadline. ``work`` must not raise.
    """
    lock = threading.Lock()
    todo: queue.SimpleQueue[I] = queue.SimpleQueue()
    done: queue.SimpleQueue[R] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    watches: list[Watch] = []

    def worker(watch: Watch) -> None:
        _LOCAL.watch = watch
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            with lock:
                watch.item, watch.started = item, time.monotonic()
            result = work(item)
            with lock:
                if watch.abandoned:
                    return
            done.put(result)

    def spawn() -> None:
        watch = Watch(lock)
        watches.append(watch)
        threading.Thread(target=worker, args=(watch,), name="bmprov-worker", daemon=True).start()

    for _ in range(min(concurrency, len(items))):
        spawn()
    remaining, checked = len(items), time.monotonic()
    while remaining:
        try:
            yield done.get(timeout=TICK)
            remaining -= 1
        except queue.Empty:
            pass
        if time.monotonic() - checked < TICK:
            continue
        checked = time.monotonic()
        for watch in _expire(watches, lock, checked):
            remaining -= 1
            yield timed_out(watch.item, watch)
            spawn()  # keep the concurrency; it exits at once when nothing is left


def _expire(watches: list[Watch], lock: threading.Lock, now: float) -> list[Watch]:
    """Give up on every worker whose call is past its deadline; return them."""
    expired = []
    with lock:
        for watch in watches:
            if watch.deadline is not None and now >= watch.deadline and not watch.abandoned:
                watch.abandoned = True
                expired.append(watch)
        watches[:] = [w for w in watches if not w.abandoned]
    return expired
