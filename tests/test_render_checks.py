"""Render-time install checks: once per template variant, remembered across processes."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import pytest

from bmprov.boot.writer import NodeFileWriter
from bmprov.config import load_config
from bmprov.errors import StepFailed
from bmprov.install import check as installcheck
from bmprov.install.checkcache import FILE_NAME
from bmprov.nodes import Node
from bmprov.setup_site import init_site


def node(i: int, os_name: str, **options: object) -> Node:
    return Node(
        id=i,
        serial=f"SN{i}",
        stage="os_provisioning",
        macs=(f"52:54:00:12:34:{i:02x}",),
        os=os_name,
        hostname=f"web{i}",
        install_options=dict(options),
    )


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = installcheck.check

    def counting(kind: str, text: str, *args: object) -> None:
        seen.append(kind)
        real(kind, text, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(installcheck, "check", counting)
    return seen


def test_a_variant_is_checked_once_across_writers(tmp_path: Path, calls) -> None:
    config = load_config(init_site(tmp_path / "site").config_path)
    first = NodeFileWriter(config)
    first.render_install(node(1, "rocky9"), "10.20.0.50")
    first.render_install(node(2, "alma9"), "10.20.0.51")  # the same template and layout
    first.render_install(node(3, "debian12"), "10.20.0.52")
    assert calls == ["kickstart", "preseed"]
    assert (tmp_path / "site" / ".bmprov-cache" / FILE_NAME).is_file()
    again = NodeFileWriter(load_config(config.path))  # another process, as pxe render is
    again.render_install(node(4, "rocky9"), "10.20.0.53")
    assert calls == ["kickstart", "preseed"]
    mirrored = {"partition_scheme": "LVM_RAID1", "disks": 2}
    again.render_install(node(5, "rocky9", **mirrored), "10.20.0.54")  # another layout
    assert calls == ["kickstart", "preseed", "kickstart"]


def test_a_changed_template_is_checked_again_and_a_failure_never_remembered(
    tmp_path: Path, calls
) -> None:
    site = init_site(tmp_path / "site")
    NodeFileWriter(load_config(site.config_path)).render_install(node(1, "rocky9"), "10.0.0.5")
    copy = tmp_path / "site" / "tpl" / "kickstart" / "partitions" / "kickstart.j2"
    copy.parent.mkdir(parents=True)
    shipped = Path(installcheck.data_dir("kickstart")) / "partitions" / "kickstart.j2"
    copy.write_text(shipped.read_text().replace("logvol swap", "# logvol swap"))
    text = site.config_path.read_text().replace("dirs = []", 'dirs = ["tpl"]')
    site.config_path.write_text(text)
    for _ in range(2):
        writer = NodeFileWriter(load_config(site.config_path))
        with pytest.raises(StepFailed, match="no root"):
            writer.render_install(node(1, "rocky9"), "10.0.0.5")
    assert calls == ["kickstart"] * 3


def test_an_unusable_cache_never_fails_a_render(tmp_path: Path, monkeypatch) -> None:
    """Damaged compiled templates and a cache that cannot be written (full disk, another
    user's directory) only cost compiling again."""
    config = load_config(init_site(tmp_path / "site").config_path)
    NodeFileWriter(config).render_install(node(1, "debian12"), "10.20.0.50")
    cache = tmp_path / "site" / ".bmprov-cache"
    compiled = [p for p in cache.iterdir() if p.name.endswith(".cache")]
    assert compiled
    for path in compiled:
        path.write_bytes(path.read_bytes()[:40])  # truncated
    files = NodeFileWriter(config).render_install(node(2, "debian12"), "10.20.0.51")
    assert any("SN2" in text for text in files.values())

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", full)
    files = NodeFileWriter(config).render_install(node(3, "ubuntu-24.04"), "10.20.0.52")
    assert any("SN3" in text for text in files.values())
