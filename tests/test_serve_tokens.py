"""Tokens in the boot files: networking issues one per node, `pxe render` issues one for an
install-mode node without any, and a new token rewrites the node's files (fingerprint)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bmprov.store import StateDB
from tests.conftest import Site, write_csv

MAC = "52:54:00:7a:00:01"
TOKEN = re.compile(r"bmprov\.url=(\S+) bmprov\.token=(\d+\.[0-9a-f]{64})")


def entry(site: Site) -> str:
    return (site.dir / "tftpboot" / "pxelinux.cfg" / ("01-" + MAC.replace(":", "-"))).read_text()


def test_tokens_on_the_command_line_follow_the_install(cli, site: Site, tmp_path: Path) -> None:
    rows = [["Serial", "MAC", "OS", "Notes"], ["TK1", MAC, "rocky9", "provisioning_auto"]]
    assert cli("import", write_csv(tmp_path / "p.csv", rows)).exit_code == 0
    for stage in ("mounting", "networking"):
        assert cli("advance", "--stage", stage, "--all").exit_code == 0
    match = TOKEN.search(entry(site))
    assert match is not None
    url, first = match.groups()
    assert url == "http://10.20.0.1:8081"  # [network] server_address, serve's default port
    assert cli("pxe", "render").exit_code == 0
    assert f"bmprov.token={first}" in entry(site)  # re-rendered: the same token
    with StateDB(site.config.state_path) as db:
        node = db.node_by_serial("TK1")
        assert node is not None
        db.end_installs([node.id], "revoked")
    run = cli("pxe", "render", "--json")
    assert run.exit_code == 0
    assert json.loads(run.stdout)["files_written"] >= 3  # the new token rewrote the entries
    second = TOKEN.search(entry(site))
    assert second is not None and second.group(2) != first
    assert json.loads(cli("pxe", "render", "--json").stdout)["files_written"] == 0
    # deployed: local boot, no token anywhere
    assert cli("advance", "--stage", "installing", "--all").exit_code == 0
    assert cli("advance", "--stage", "deployed", "--all").exit_code == 0
    assert "bmprov.token" not in entry(site)
