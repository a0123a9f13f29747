"""GRUB's own parser (grub-script-check, from grub-common) accepts every GRUB file bmprov writes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from bmprov.boot.writer import NodeFileWriter
from bmprov.nodes import Node

pytestmark = pytest.mark.peer

OSES = ("rocky9", "debian12", "ubuntu-24.04")


def grub_check(path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("grub-script-check") or "/usr/bin/grub-script-check"
    return subprocess.run([binary, str(path)], capture_output=True, text=True, check=False)


def test_grub_accepts_install_local_and_default_files(site) -> None:
    writer = NodeFileWriter(site.config)
    paths = list(writer.write_defaults())
    for i, os_name in enumerate(OSES):
        node = Node(
            id=i,
            serial=f"SN{i}",
            stage="os_provisioning",
            macs=(f"52:54:00:00:01:{i:02x}",),
            os=os_name,
            hostname=f"web{i}",
        )
        paths += writer.write(node, f"10.20.0.{50 + i}")
        local = Node(
            id=10 + i, serial=f"LB{i}", stage="deployed", macs=(f"52:54:00:00:02:{i:02x}",)
        )
        paths += writer.local_boot(local)
    grub_files = [p for p in paths if p.parent.name == "grub"]
    assert len(grub_files) == 7
    for path in grub_files:
        run = grub_check(path)
        assert run.returncode == 0, f"{path}: {run.stdout}{run.stderr}"


def test_grub_check_does_reject_a_broken_file(tmp_path) -> None:
    bad = tmp_path / "grub.cfg"
    bad.write_text("menuentry 'x' {\n  linux /vmlinuz 'unterminated\n}\n")
    assert grub_check(bad).returncode != 0
