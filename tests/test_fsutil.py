"""Atomic, change-aware writes: the few-syscall batch path keeps every safety property."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bmprov import fsutil


def test_update_file_writes_0644_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "f"
    old = os.umask(0o077)
    try:
        assert fsutil.update_file(str(target), b"one\n")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"one\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["f"]  # no temp file left behind


def test_update_file_only_when_the_bytes_differ(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f"
    target.parent.mkdir()
    assert fsutil.update_file(str(target), b"abc")
    mtime = target.stat().st_mtime_ns
    os.utime(target, ns=(0, 0))
    assert not fsutil.update_file(str(target), b"abc")
    assert target.stat().st_mtime_ns == 0 != mtime  # untouched
    old = tmp_path / "old"
    os.link(target, old)  # a reader holding the old file
    assert fsutil.update_file(str(target), b"abd")  # same size, other bytes
    assert fsutil.update_file(str(target), b"abcd")
    assert target.read_bytes() == b"abcd"
    assert old.read_bytes() == b"abc"  # renamed over, never rewritten in place


def test_a_stale_temp_file_does_not_block_the_write(tmp_path: Path) -> None:
    target = tmp_path / "f"
    stale = tmp_path / f".f.{os.getpid()}.tmp"
    stale.write_bytes(b"half")
    assert fsutil.update_file(str(target), b"whole")
    assert target.read_bytes() == b"whole"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == [stale.name, "f"]


def test_update_file_needs_its_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fsutil.update_file(str(tmp_path / "missing" / "f"), b"x")
    assert fsutil.write_if_changed(tmp_path / "made" / "f", "x")  # makes it
    assert not fsutil.write_if_changed(tmp_path / "made" / "f", "x")


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    def broken(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(fsutil.os, "rename", broken)
    with pytest.raises(OSError, match="disk on fire"):
        fsutil.update_file(str(tmp_path / "f"), b"x")
    assert os.listdir(tmp_path) == []


def test_holds(tmp_path: Path) -> None:
    target = tmp_path / "f"
    assert not fsutil.holds(str(target), b"")
    target.write_bytes(b"")
    assert fsutil.holds(str(target), b"")
    target.write_bytes(b"x" * 100_000)
    assert fsutil.holds(str(target), b"x" * 100_000)
    assert not fsutil.holds(str(target), b"x" * 99_999 + b"y")
    assert not fsutil.holds(str(target / "below-a-file"), b"")


@pytest.mark.parametrize("unnamed", [True, False])
def test_create_file_links_a_new_file_under_its_name(tmp_path: Path, monkeypatch, unnamed) -> None:
    """A new file appears whole under its own name, 0644; a name taken meanwhile is replaced
    (atomically), never written into; no temp file is left either way."""
    monkeypatch.setattr(fsutil, "UNNAMED_TEMPS", unnamed)
    old = os.umask(0o077)
    try:
        fsutil.create_file(str(tmp_path / "new"), b"one\n")
    finally:
        os.umask(old)
    assert (tmp_path / "new").read_bytes() == b"one\n"
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o644
    (tmp_path / "taken").write_bytes(b"someone else's\n")
    reader = tmp_path / "reader"
    os.link(tmp_path / "taken", reader)
    fsutil.create_file(str(tmp_path / "taken"), b"two\n")
    assert (tmp_path / "taken").read_bytes() == b"two\n"
    assert reader.read_bytes() == b"someone else's\n"  # renamed over, not rewritten
    assert sorted(os.listdir(tmp_path)) == ["new", "reader", "taken"]
    with pytest.raises(FileNotFoundError):
        fsutil.create_file(str(tmp_path / "missing" / "f"), b"x")
