"""Completion on entering deployed: boot device, local boot, install ended, post-install task
(a real script, with timeout and concurrency) and URL (a real HTTP server), and the lock."""

from __future__ import annotations

import http.server
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from bmprov.drivers.base import BootDevice
from bmprov.drivers.fake import LAB
from bmprov.nodes import get_node
from bmprov.store import Event
from tests.conftest import Site, write_csv
from tests.sims.fixtures import configure_fake_bmc

TASK = r"""
import json, os, subprocess, sys, time
out, serial = sys.argv[1], sys.argv[2]
start = time.time()
record = {"argv": sys.argv[2:], "env": sorted(os.environ), "start": start}
if serial == "SNSLOW":  # a task that hangs, with a child of its own
    child = subprocess.Popen(["sleep", "60"])
    open(os.path.join(out, "child.pid"), "w").write(str(child.pid))
    time.sleep(60)
time.sleep(float(os.environ.get("TASK_SLEEP", "0")))
record["end"] = time.time()
json.dump(record, open(os.path.join(out, serial + ".json"), "w"))
print("configured", serial, "\x1b[31mcolour\x1b[0m")
sys.exit(3 if serial == "SNBAD" and not os.path.exists(os.path.join(out, "fixed")) else 0)
"""

pytestmark = pytest.mark.usefixtures("clean_lab")


def _mac(i: int) -> str:
    return f"52:54:00:dd:00:{i:02x}"


def _site(site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, post: str) -> Path:
    """Fake BMCs with automatic power; the task script and [post_install] ``post``."""
    configure_fake_bmc(site, monkeypatch, "auto_on_provisioning = true\nwave_interval = 0\n")
    text = site.config_path.read_text()
    site.config_path.write_text(_without_table(text, "post_install"))
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "task.py").write_text(TASK)
    site.write_config(
        "[post_install]\n"
        f'command = ["{sys.executable}", "{tmp_path / "task.py"}", "{out}", "{{serial}}", '
        '"ip={ip}", "{mac}"]\n' + post
    )
    monkeypatch.setenv("TASK_SLEEP", "0")
    return out


def _without_table(text: str, name: str) -> str:
    """The config without the starter's ``[name]`` table (the test writes its own)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == f"[{name}]"
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _installing(cli, tmp_path: Path, serials: list[str]) -> None:
    rows = [["Serial", "MAC", "OS", "BMC Address", "Notes"]]
    rows += [
        [s, _mac(i), "rocky9", f"10.0.2.{i}:623", "provisioning_auto"]
        for i, s in enumerate(serials, 1)
    ]
    assert cli("import", write_csv(tmp_path / "p.csv", rows)).exit_code == 0
    for stage in ("mounting", "networking", "installing"):
        run = cli("advance", "--stage", stage, "--all", "--json")
        assert run.exit_code == 0, run.stdout


def _events(site: Site, serial: str) -> list[Event]:
    with site.db() as db:
        return db.events(get_node(db, serial).id)


def test_completion_in_order_with_a_real_task(cli, site: Site, tmp_path, monkeypatch) -> None:
    out = _site(site, monkeypatch, tmp_path, 'env = ["TASK_SLEEP"]\n')
    _installing(cli, tmp_path, ["SNOK"])
    bmc = LAB.bmc("10.0.2.1:623")
    assert (bmc.bootdev, bmc.persistent) == (BootDevice.PXE, False)
    with site.db() as db:
        node = get_node(db, "SNOK")
        (install,) = db.open_installs(
            [(node.id, node.serial, node.os)], "2999-01-01T00:00:00+00:00"
        ).values()
    run = cli("complete", "SNOK", "--json")
    assert run.exit_code == 0, run.stdout
    (result,) = json.loads(run.stdout)["results"]
    assert result["stage"] == "deployed"
    assert "post-install task: exit 0" in result["message"]
    assert (bmc.bootdev, bmc.persistent) == (BootDevice.DISK, True)
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / ("01-" + _mac(1).replace(":", "-"))
    assert "LOCALBOOT" in entry.read_text()
    assert not (site.dir / "http" / "ks" / "SNOK.cfg").exists()
    kinds = [e.kind for e in _events(site, "SNOK")]
    assert kinds == [
        "complete.boot_device",
        "complete.local_boot",
        "complete.install",
        "post_install.task",
    ]
    with site.db() as db:
        ended = db.install(install.id)
        assert ended is not None and ended.end_reason == "completed"
        history = db.history(get_node(db, "SNOK").id)
    assert history[-1]["to_stage"] == "deployed" and history[-1]["command"] == "complete"
    # the task got validated values as separate arguments, and no secret in its environment
    record = json.loads((out / "SNOK.json").read_text())
    assert record["argv"][0] == "SNOK" and record["argv"][1].startswith("ip=10.")
    assert record["argv"][2] == _mac(1)
    assert "BMPROV_TEST_BMC_PASSWORD" not in record["env"]
    assert {"BMPROV_SERIAL", "BMPROV_IP", "TASK_SLEEP"} <= set(record["env"])
    task = _events(site, "SNOK")[-1].detail or ""
    assert task.startswith("exit 0 in ") and "configured SNOK" in task
    assert "\x1b" not in task  # control characters are not recorded
    shown = json.loads(cli("events", "SNOK", "--json").stdout)
    assert [e["kind"] for e in shown] == kinds and shown[-1]["source"] == "complete"
    table = cli("events", "SNOK")
    assert table.exit_code == 0 and "post_install.task" in table.stdout


def test_failing_task_keeps_the_node_deployed_and_complete_retries(
    cli, site: Site, tmp_path, monkeypatch
) -> None:
    out = _site(site, monkeypatch, tmp_path, "")
    _installing(cli, tmp_path, ["SNBAD", "SNOK"])
    run = cli("advance", "--stage", "deployed", "--all", "--json")
    assert run.exit_code == 1
    by = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    assert by["SNOK"]["status"] == "ok"
    assert by["SNBAD"]["status"] == "failed" and by["SNBAD"]["step"] == "post-install"
    assert by["SNBAD"]["stage"] == "deployed"
    assert by["SNBAD"]["message"].startswith("post-install task: exit 3")
    with site.db() as db:
        assert get_node(db, "SNBAD").stage == "deployed"
    (out / "fixed").touch()
    run = cli("complete", "SNBAD", "--json")
    assert run.exit_code == 0, run.stdout
    assert [e.kind for e in _events(site, "SNBAD")].count("post_install.task") == 2


def test_task_timeout_kills_the_group_and_concurrency_is_bounded(
    cli, site: Site, tmp_path, monkeypatch
) -> None:
    out = _site(
        site, monkeypatch, tmp_path, 'timeout = 1.5\nconcurrency = 2\nenv = ["TASK_SLEEP"]\n'
    )
    serials = ["SNA", "SNB", "SNC", "SND", "SNSLOW"]
    _installing(cli, tmp_path, serials)
    monkeypatch.setenv("TASK_SLEEP", "0.4")
    start = time.monotonic()
    run = cli("advance", "--stage", "deployed", "--all", "--json")
    elapsed = time.monotonic() - start
    assert run.exit_code == 1
    by = {r["serial"]: r for r in json.loads(run.stdout)["results"]}
    assert (
        by["SNSLOW"]["status"] == "failed"
        and "killed after the 1.5 s timeout" in by["SNSLOW"]["message"]
    )
    assert all(by[s]["status"] == "ok" for s in serials[:4])
    assert elapsed < 15, elapsed
    child = int((out / "child.pid").read_text())
    time.sleep(0.2)
    assert (
        not Path(f"/proc/{child}").exists()
        or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    )
    spans = [json.loads((out / f"{s}.json").read_text()) for s in serials[:4]]
    # Tasks running at each task's start (the most at once is reached at some start). Not "how
    # many spans overlap a span": under load B may overlap A before it and C after it, three
    # spans, while never more than two ran at once (that count failed this test once).
    most = max(sum(1 for o in spans if o["start"] <= s["start"] < o["end"]) for s in spans)
    assert most <= 2  # never more than `concurrency` tasks at once


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        code = 503 if len(type(self).bodies) <= type(self).fail_first else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_post_install_url_is_retried(cli, site: Site, tmp_path, monkeypatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/deployed"
        _site(site, monkeypatch, tmp_path, f'url = "{url}"\nurl_attempts = 3\n')
        _installing(cli, tmp_path, ["SNURL"])
        run = cli("complete", "SNURL", "--json")
        assert run.exit_code == 0, run.stdout
    finally:
        server.shutdown()
    assert len(_Hook.bodies) == 2
    body = json.loads(_Hook.bodies[-1])
    assert body["serial"] == "SNURL" and body["stage"] == "deployed"
    assert body["post_install"] == {"ok": True, "exit": 0}
    assert "$6$" not in _Hook.bodies[-1].decode()
    url_event = _events(site, "SNURL")[-1]
    assert (
        url_event.kind == "post_install.url" and url_event.detail == "HTTP 200 after 2 attempt(s)"
    )


def test_bad_command_template_is_refused_before_anything_moves(
    cli, site: Site, tmp_path, monkeypatch
) -> None:
    _site(site, monkeypatch, tmp_path, "")
    text = site.config_path.read_text().replace("{mac}", "{mac.__class__}")
    site.config_path.write_text(text)
    _installing(cli, tmp_path, ["SNX"])
    run = cli("advance", "--stage", "deployed", "--all")
    assert run.exit_code == 2
    assert "unknown placeholder {mac.__class__}" in run.stderr
    check = cli("check")  # `bmprov check` says so before any run
    assert check.exit_code == 2 and "problem entering deployed" in check.stdout
    with site.db() as db:
        assert get_node(db, "SNX").stage == "installing"


def test_deployed_is_locked_and_complete_covers_silent_installers(
    cli, site: Site, tmp_path, monkeypatch
) -> None:
    _site(site, monkeypatch, tmp_path, "")
    _installing(cli, tmp_path, ["SNL"])
    assert cli("complete", "SNL").exit_code == 0
    run = cli("advance", "--stage", "networking", "--serial", "SNL", "--json")
    assert run.exit_code == 1
    (result,) = json.loads(run.stdout)["results"]
    assert "bmprov reinstall SNL --os OS" in result["message"]
    with site.db() as db:
        assert get_node(db, "SNL").stage == "deployed"
        db.conn.execute("UPDATE nodes SET stage = 'os_provisioning' WHERE serial = 'SNL'")
    run = cli("complete", "SNL", "--json")
    assert run.exit_code == 0, run.stdout
    with site.db() as db:
        history = db.history(get_node(db, "SNL").id)
    assert [h["to_stage"] for h in history[-2:]] == ["installing", "deployed"]
    assert "does not call back" in history[-2]["reason"]
    assert cli("complete", "NOPE").exit_code == 2
