"""Faults that lost data (issue 8), with the file backend: concurrent batches, kill -9, temps.

The process-level tests run real ``bmprov`` processes (tests/faults.py); the others pin each
mechanism on its own: the store lock, the edit-by-another-program check, dead writers' temps.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bmprov import fsutil
from bmprov.boot import jobs as filejobs
from bmprov.dhcp import DhcpSettings, Reservation, open_backend
from bmprov.errors import DriverError
from tests import faults
from tests.hostile import bmprov, unprivileged

RES_A = Reservation("02:31:00:00:07:01", "10.20.0.7")
RES_B = Reservation("02:31:00:00:07:02", "10.20.0.8")


def held_in_file(site) -> list[tuple[str, str]]:
    doc = json.loads((site.dir / "dhcp-reservations.json").read_text())
    return [(r["mac"], r["ip"]) for r in doc["reservations"]]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_second_batch_waits_for_the_first_and_reads_its_result(site) -> None:
    settings = DhcpSettings.from_config(site.config)
    first = open_backend(settings)
    first.open()
    first.add(RES_A)
    second_saw: list[list[Reservation]] = []

    def second() -> None:
        with open_backend(settings) as backend:
            second_saw.append(backend.list())
            backend.add(RES_B)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert second_saw == []  # blocked on the lock, not reading a stale table
    first.commit()
    first.close()
    thread.join(5)
    assert [r.mac for r in second_saw[0]] == [RES_A.mac]
    assert sorted(held_in_file(site)) == [(RES_A.mac, RES_A.ip), (RES_B.mac, RES_B.ip)]


def test_a_lock_held_past_state_timeout_is_a_clear_error(site) -> None:
    site.config_path.write_text("state_timeout = 0.2\n" + site.config_path.read_text())
    with open_backend(DhcpSettings.from_config(site.config)):
        waiting = open_backend(DhcpSettings.from_config(site.config))
        with pytest.raises(DriverError, match="another bmprov has been changing reservations"):
            waiting.open()
    with open_backend(DhcpSettings.from_config(site.config)) as backend:  # released
        assert backend.list() == []


def test_another_program_editing_the_file_meanwhile_is_never_overwritten(site) -> None:
    path = site.dir / "dhcp-reservations.json"
    backend = open_backend(DhcpSettings.from_config(site.config))
    backend.open()
    backend.add(RES_A)
    edit = '{"reservations": [{"mac": "02:31:00:00:07:09", "ip": "10.20.0.9"}]}\n'
    path.write_text(edit)  # an operator's editor: no lock taken
    with pytest.raises(DriverError, match="changed by another program while this batch ran"):
        backend.commit()
    backend.close()
    assert path.read_text() == edit


def test_dead_writers_temps_are_removed_live_ones_kept(site, cli) -> None:
    http = site.dir / "http"
    http.mkdir(exist_ok=True)
    dead = http / f".boot.ipxe.{dead_pid()}.tmp"
    dead_random = http / "ipxe" / f".mac-02-31-00-00-00-01.ipxe.{dead_pid()}.0a1b2c3d.tmp"
    live = http / f".boot.ipxe.{os.getppid()}.tmp"
    for path in (dead, dead_random, live):
        path.parent.mkdir(exist_ok=True)
        path.write_text("#!ipxe\n")
    run = cli("pxe", "render", "--prune", "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["stale"] == []  # never listed as a stale boot file
    assert faults.temp_files(site.dir) == [live]


def test_a_zombie_writers_temp_is_stale(tmp_path) -> None:
    """A killed worker stays a zombie until PID 1 reaps it; its temp file is stale already."""
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    leftover = tmp_path / f".grub.cfg-01-02-32-00-01-00-81.{proc.pid}.tmp"
    leftover.write_text("x")
    try:
        assert fsutil.remove_stale_temps([tmp_path]) == [leftover]
    finally:
        proc.wait()


def test_named_temp_fallback_writes_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fsutil, "UNNAMED_TEMPS", False)
    target = tmp_path / "boot.ipxe"
    (tmp_path / f".boot.ipxe.{os.getpid()}.tmp").write_text("a leftover with our pid")
    fsutil.replace_file(str(target), b"#!ipxe\n", 0o644)
    assert target.read_text() == "#!ipxe\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert len(faults.temp_files(tmp_path)) == 1  # the leftover only; ours was renamed


def test_unnamed_temp_is_invisible_while_written(tmp_path, monkeypatch) -> None:
    seen: list[list[str]] = []
    real = fsutil._write_all

    def spy(fd: int, raw: bytes, mode: int) -> None:
        seen.append(os.listdir(tmp_path))
        real(fd, raw, mode)

    monkeypatch.setattr(fsutil, "_write_all", spy)
    fsutil.replace_file(str(tmp_path / "default"), b"LOCALBOOT 0\n")
    assert seen == [[]]  # nothing named in the directory while the bytes go in
    assert os.listdir(tmp_path) == ["default"]


@pytest.fixture
def big(site):
    """The site with a /20 pool, so rounds of new nodes never exhaust it."""
    site.write_config(faults.POOL.format(subnet="10.24.0.0/20"))
    return site


@pytest.mark.parametrize("attempt", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_concurrent_batches_keep_every_reservation(big, attempt) -> None:
    """Eight batches at once on overlapping selections: exactly one reservation per node.

    With the unlocked store this setup lost reservations in 7 rounds of 8, so the two
    attempts together miss such a race once in 64 runs.
    """
    faults.concurrent_round(big.config, attempt, faults.CONCURRENT)
    faults.check_consistent(big.config, lambda: held_in_file(big))


@pytest.mark.slow
def test_kill_at_random_points_then_rerun(big) -> None:
    """kill -9 of a networking batch, four times at random moments, each followed by a re-run.

    The issue saw workers survive in 7 kills of 10 and this test aims two kills at them:
    with the old workers it failed (two survivors) in the trial run.
    """
    rng = random.Random(8)
    with_workers = 0
    rounds = 4
    for round_ in range(rounds):
        faults.load_round(big.config, round_, faults.WORKERS_AT)
        with_workers += faults.kill_round(big.config, rng, round_)["workers_at_kill"] > 0
        assert faults.temp_files(big.dir) == []
        last = round_ == rounds - 1
        faults.check_consistent(big.config, lambda: held_in_file(big), files=last)
    assert with_workers >= 1  # a kill did hit live file workers (two rounds aim at them)


def test_temp_files_outside_boot_dirs_are_left(tmp_path: Path) -> None:
    (tmp_path / "notes.tmp").write_text("x")
    (tmp_path / f".x.{dead_pid()}.tmp.bak").write_text("x")
    assert fsutil.remove_stale_temps([tmp_path]) == []


def test_a_missing_directory_is_reported_and_keeps_unnamed_temps(tmp_path) -> None:
    target = tmp_path / "later" / "default"
    with pytest.raises(FileNotFoundError):
        fsutil.replace_file(str(target), b"x")
    assert str(target.parent) not in fsutil._named_only  # made by the caller, then retried
    target.parent.mkdir()
    fsutil.replace_file(str(target), b"x")
    assert os.listdir(target.parent) == ["default"]


def test_a_worker_whose_parent_is_already_gone_exits_at_once() -> None:
    pid = os.fork()
    if pid == 0:  # the race: the parent died between fork and prctl
        filejobs.die_with_parent(dead_pid())
        os._exit(0)
    assert os.waitpid(pid, 0)[1] >> 8 == 1


def test_a_worker_dies_when_its_parent_is_killed() -> None:
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:
        me = os.getpid()  # taken before the fork, as FileJobs does: killed before or after
        worker = os.fork()  # the worker's prctl, it must go
        if worker == 0:
            filejobs.die_with_parent(me)
            time.sleep(30)
            os._exit(0)
        os.write(write, f"{worker}\n".encode())
        time.sleep(30)
        os._exit(0)
    worker = int(os.read(read, 64))
    os.close(read)
    os.close(write)
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 5
    while fsutil._alive(worker) and time.monotonic() < deadline:
        time.sleep(0.01)  # until gone, or a zombie waiting for PID 1
    survived = fsutil._alive(worker)
    if survived:
        os.kill(worker, signal.SIGKILL)
    assert not survived, "the worker outlived its killed parent"


def test_a_lock_file_made_by_another_user_still_locks(site) -> None:
    with open_backend(DhcpSettings.from_config(site.config)):
        pass
    lock = site.dir / ".dhcp-reservations.json.lock"
    lock.chmod(0o444)
    done = subprocess.run(
        [*unprivileged(), "python3", "-c", f"import os; os.open({str(lock)!r}, os.O_RDWR)"],
        capture_output=True,
        check=False,
    )
    if done.returncode == 0:
        pytest.skip("cannot drop the permission override here")
    run = bmprov("--config", site.config_path, "dhcp", "list", prefix=unprivileged())
    assert run.exit_code == 0, run.stderr
