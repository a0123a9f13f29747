"""The deadline machinery on its own: bounded calls, and the supervised batch map."""

from __future__ import annotations

import threading
import time

import pytest

from bmprov.drivers.deadline import DeadlineExceeded, Watch, bounded, supervised_map


def test_bounded_alone_runs_in_a_thread_and_gives_up() -> None:
    assert bounded(lambda: "done", 1.0, "quick") == "done"
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        bounded(lambda: time.sleep(2), 0.2, "slow")
    assert time.monotonic() - start < 0.5


def test_supervised_map_bounds_concurrency_and_cuts_a_stuck_item() -> None:
    running, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def work(item: int) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            if item == 3:
                return bounded(release.wait, 0.3, "hang", "item 3 timed out")
            return bounded(lambda: time.sleep(0.05) or f"ok {item}", 5, "work")
        except DeadlineExceeded:
            return "late"  # dropped: the supervisor already reported item 3
        finally:
            with lock:
                running[0] -= 1

    def timed_out(item: int, watch: Watch) -> str:
        return f"{item}: {watch.message}"

    start = time.monotonic()
    results = list(supervised_map(list(range(12)), work, 4, timed_out))
    took = time.monotonic() - start
    release.set()
    assert sorted(results) == sorted(
        [f"ok {i}" for i in range(12) if i != 3] + ["3: item 3 timed out"]
    )
    assert peak[0] <= 5  # 4 workers, plus the stuck one while its replacement runs
    assert took < 1.0
