"""The status page in headless Chromium (Debian's ``chromium``): it shows every node, its
stage and install sub-stage, with serials and stages whole; a screenshot is kept as an artefact
(``BMPROV_ARTEFACTS``, default ``test-artefacts/`` in the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Site
from tests.serveutil import serving, token_of
from tests.test_serve import IP, NODES, SERVE_CONFIG, provision

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (bootstrap.sh)")


def chromium(url: str, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_status_page_in_chromium_shows_nodes_and_stages(cli, site: Site, tmp_path: Path) -> None:
    provision(cli, site, tmp_path)
    site.write_config(SERVE_CONFIG)
    with serving(site.config_path, tmp_path / "serve.log") as serve:
        token = token_of(site.config_path, "SV1")
        for stage in (1, 2, 3):
            assert serve.callback("SV1", stage, token, IP["SV1"]).status == 200
        url = f"http://127.0.0.1:{serve.port}/"
        dom = chromium(url, tmp_path / "profile", "--dump-dom")
        artefacts = Path(os.environ.get("BMPROV_ARTEFACTS", REPO / "test-artefacts"))
        artefacts.mkdir(parents=True, exist_ok=True)
        shot = artefacts / "serve-status-page.png"
        chromium(url, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,600")
        filtered = chromium(url + "?stage=installing", tmp_path / "profile3", "--dump-dom")
    assert shot.is_file() and shot.stat().st_size > 1000
    for serial, _, _ in NODES:
        assert f'<td class="serial">{serial}</td>' in dom
    assert '<td class="stage">installing</td>' in dom
    assert dom.count('<td class="stage">os_provisioning</td>') == len(NODES) - 1
    assert "<b>installing</b> 1" in dom and f"<b>os_provisioning</b> {len(NODES) - 1}" in dom
    assert "<td>3</td>" in dom  # SV1's install sub-stage
    assert "SV1" in filtered and "SV2" not in filtered
    assert token not in dom
