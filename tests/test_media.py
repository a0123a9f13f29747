"""``bmprov media add``: kernel and initrd read out of real ISO 9660 images (made by xorriso)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("xorriso") is None, reason="needs xorriso")


def make_iso(tmp: Path, files: dict[str, bytes], *names: str) -> Path:
    """An ISO with ``files``; ``names``: xorriso's name spaces (-R Rock Ridge, -J Joliet)."""
    tree = tmp / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    iso = tmp / "media.iso"
    iso.unlink(missing_ok=True)
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", *names, "-V", "TEST", "-o", str(iso), str(tree)],
        check=True, capture_output=True,
    )  # fmt: skip
    return iso


RHEL = {"images/pxeboot/vmlinuz": b"K" * 5000, "images/pxeboot/initrd.img": b"I" * 7000,
        "BaseOS/repodata/repomd.xml": b"<repomd/>"}  # fmt: skip


@pytest.mark.parametrize("names", [("-R", "-J"), ("-J",), ()], ids=["rockridge", "joliet", "iso"])
def test_kernel_and_initrd_from_the_iso(cli, site, tmp_path: Path, names) -> None:
    iso = make_iso(tmp_path, RHEL, *names)
    run = cli("media", "add", "rocky9", "--iso", iso, "--json")
    assert run.exit_code == 0, run.stdout + run.stderr
    out = json.loads(run.stdout)
    tftp = site.dir / "tftpboot"
    assert (tftp / "rocky9/vmlinuz").read_bytes() == RHEL["images/pxeboot/vmlinuz"]
    assert (tftp / "rocky9/initrd.img").read_bytes() == RHEL["images/pxeboot/initrd.img"]
    assert out["from"] == ["images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"]
    manifest = json.loads((tftp / "rocky9/media.json").read_text())
    assert manifest["iso"] == "media.iso" and len(manifest["sha256"]) == 64
    again = cli("media", "add", "rocky9", "--iso", iso, "--json")  # the same bytes: no write
    assert json.loads(again.stdout)["written"] == []


def test_debian_layout_profile_paths_and_tree(cli, site, tmp_path: Path) -> None:
    files = {"install.amd/vmlinuz": b"k", "install.amd/initrd.gz": b"i", "pool/main/a.deb": b"d"}
    iso = make_iso(tmp_path, files, "-R")
    run = cli("media", "add", "debian12", "--iso", iso, "--tree")
    assert run.exit_code == 0, run.stdout + run.stderr
    tftp = site.dir / "tftpboot"
    assert (tftp / "debian12/linux").read_bytes() == b"k"  # the profile's own names
    assert (tftp / "debian12/initrd.gz").read_bytes() == b"i"
    assert (site.dir / "http/repo/debian12/pool/main/a.deb").read_bytes() == b"d"
    assert "3 file(s) of the tree" in run.stdout


def test_named_paths_for_an_unknown_layout(cli, site, tmp_path: Path) -> None:
    iso = make_iso(tmp_path, {"boot/x/k": b"k", "boot/x/i": b"i"}, "-R")
    run = cli("media", "add", "alma9", "--iso", iso)
    assert run.exit_code == 2
    assert "no kernel and initrd found" in run.stderr and "--kernel" in run.stderr
    run = cli(
        "media", "add", "alma9", "--iso", iso, "--kernel", "boot/x/k", "--initrd", "/boot/x/i"
    )
    assert run.exit_code == 0, run.stderr
    assert (site.dir / "tftpboot/alma9/vmlinuz").read_bytes() == b"k"


def test_bad_input(cli, site, tmp_path: Path) -> None:
    iso = make_iso(tmp_path, RHEL, "-R")
    run = cli("media", "add", "rocky8", "--iso", iso)
    assert run.exit_code == 2 and "unknown OS 'rocky8'" in run.stderr
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"not an image" * 1000)
    run = cli("media", "add", "rocky9", "--iso", junk)
    assert run.exit_code == 2 and "not a readable ISO 9660 image" in run.stderr
    run = cli("media", "add", "rocky9", "--iso", tmp_path / "missing.iso")
    assert run.exit_code == 2 and "no such file" in run.stderr
    assert not (site.dir / "tftpboot/rocky9").exists()
