"""``bmprov serve`` over real HTTP on loopback: tokens, the five stages, bad input, timeouts,
install files and iPXE scripts on request, two workers, SIGTERM, and no secret anywhere."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bmprov.install.check import parse_kickstart
from bmprov.store import StateDB
from tests.conftest import Site, write_csv
from tests.serveutil import BMPROV, Serve, serving, set_ip, token_of

NODES = [
    ("SV1", "52:54:00:5e:00:01", "rocky9"),
    ("SV2", "52:54:00:5e:00:02", "debian12"),
    ("SV3", "52:54:00:5e:00:03", "ubuntu-24.04"),
    ("SV4", "52:54:00:5e:00:04", "rocky9"),
]
IP = {serial: f"127.0.0.{10 + i}" for i, (serial, _, _) in enumerate(NODES)}
SERVE_CONFIG = """
[serve]
timeout_check_seconds = 1
"""


def provision(cli, site: Site, tmp_path: Path, nodes=NODES) -> None:
    rows = [["Serial", "MAC", "OS", "Notes"]] + [
        [s, m, o, "provisioning_auto"] for s, m, o in nodes
    ]
    assert cli("import", write_csv(tmp_path / "p.csv", rows)).exit_code == 0
    for stage in ("mounting", "networking"):
        assert cli("advance", "--stage", stage, "--all").exit_code == 0
    for i, (serial, _, _) in enumerate(nodes):
        ORIGINAL[serial] = set_ip(site.config_path, serial, IP.get(serial, f"127.0.1.{i + 1}"))


ORIGINAL: dict[str, str | None] = {}
"""serial → the address networking gave it (restored before networking runs again)."""


@pytest.fixture
def served(cli, site: Site, tmp_path: Path) -> Iterator[Serve]:
    provision(cli, site, tmp_path)
    site.write_config(SERVE_CONFIG)
    with serving(site.config_path, tmp_path / "serve.log") as serve:
        yield serve


def stages(events) -> list[str]:
    """The callbacks among a node's events (completion records its own steps too)."""
    return [e.kind for e in events if e.kind.startswith("stage")]


def node(site: Site, serial: str):
    with StateDB(site.config.state_path) as db:
        n = db.node_by_serial(serial)
        assert n is not None
        return n, db.current_installs([n.id]).get(n.id), db.events(n.id)


def test_token_failure_modes_are_refused_and_change_nothing(served: Serve, site: Site) -> None:
    good = token_of(site.config_path, "SV1")
    other = token_of(site.config_path, "SV2")
    before = node(site, "SV1")
    src = IP["SV1"]
    cases = [
        (None, 401, "missing"),
        ("nonsense", 401, "malformed"),
        (good[:-4] + "0000", 403, "wrong"),
        (other, 403, "another node"),
        ("999.ab", 403, "unknown"),
    ]
    for token, status, words in cases:
        reply = served.callback("SV1", 1, token, src)
        assert reply.status == status, (token, reply.text)
        assert words in reply.json()["error"]
    # the right token from another address (anyone can read TFTP): refused
    reply = served.callback("SV1", 1, good, "127.0.0.200")
    assert reply.status == 403 and "reserved IP" in reply.json()["error"]
    assert node(site, "SV1") == before  # nothing changed: stage, install, events
    # expired: an install whose time is over
    with StateDB(site.config.state_path) as db:
        n = db.node_by_serial("SV4")
        assert n is not None
        db.open_installs([(n.id, n.serial, n.os)], "2000-01-01T00:00:00+00:00")
    reply = served.callback("SV4", 1, token_of(site.config_path, "SV4"), IP["SV4"])
    assert reply.status == 403 and "expired" in reply.json()["error"]
    log = served.log.read_text()
    assert "POST /callback/SV1 401" in log and "refused: missing install token" in log
    assert "refused: request not from the node's reserved IP" in log
    assert good not in log and other not in log


def test_superseded_token_is_refused(served: Serve, site: Site, cli) -> None:
    old = token_of(site.config_path, "SV2")
    set_ip(site.config_path, "SV2", ORIGINAL["SV2"])
    run = cli("advance", "--stage", "networking", "--serial", "SV2")
    assert run.exit_code == 0, run.stdout
    set_ip(site.config_path, "SV2", IP["SV2"])
    new = token_of(site.config_path, "SV2")
    assert new != old
    reply = served.callback("SV2", 1, old, IP["SV2"])
    assert reply.status == 403 and "superseded" in reply.json()["error"]
    assert served.callback("SV2", 1, new, IP["SV2"]).status == 200
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / "01-52-54-00-5e-00-02"
    assert f"bmprov.token={new}" in entry.read_text()  # the new token rewrote the boot entry


def test_five_stages_in_order_end_deployed_with_local_boot(served: Serve, site: Site) -> None:
    token, src = token_of(site.config_path, "SV1"), IP["SV1"]
    entry = site.dir / "tftpboot" / "pxelinux.cfg" / "01-52-54-00-5e-00-01"
    assert f"bmprov.token={token}" in entry.read_text()
    for stage in (1, 2, 3, 4):
        reply = served.callback("SV1", stage, token, src)
        assert reply.status == 200 and reply.json()["stage"] == "installing"
        assert node(site, "SV1")[1].progress == stage
    reply = served.callback("SV1", 5, token, src, log="first boot ok")
    assert reply.status == 200 and reply.json()["stage"] == "deployed", reply.text
    n, install, events = node(site, "SV1")
    assert n.stage == "deployed" and install is None  # the token is revoked
    assert stages(events) == [f"stage {i}" for i in range(1, 6)]
    assert "LOCALBOOT" in entry.read_text()
    # a retried stage 5 whose answer was lost: harmless
    assert served.callback("SV1", 5, token, src).json()["result"] == "duplicate"
    # any other stage on the completed install is refused
    assert served.callback("SV1", 3, token, src).status == 403
    with StateDB(site.config.state_path) as db:
        rows = [(h["from_stage"], h["to_stage"], h["reason"]) for h in db.history(n.id)]
    first = rows.index(("os_provisioning", "installing", "installer stage 1"))
    assert rows[first : first + 5] == [
        ("os_provisioning", "installing", "installer stage 1"),
        ("installing", "installing", "installer stage 2"),
        ("installing", "installing", "installer stage 3"),
        ("installing", "installing", "installer stage 4"),
        ("installing", "deployed", "advance --stage deployed"),
    ]
    api = served.get("/api/nodes/SV1/events").json()
    assert [k for e in api["events"] if (k := e["kind"]).startswith("stage")] == [
        f"stage {i}" for i in range(1, 6)
    ]


def test_out_of_order_and_duplicates_only_go_forward(served: Serve, site: Site) -> None:
    token, src = token_of(site.config_path, "SV2"), IP["SV2"]
    # stage 2 first: the node leaves os_provisioning (forward only)
    assert served.callback("SV2", 2, token, src).json()["stage"] == "installing"
    for stage, result in ((4, "recorded"), (3, "duplicate"), (4, "duplicate"), (1, "duplicate")):
        reply = served.callback("SV2", stage, token, src)
        assert reply.status == 200 and reply.json()["result"] == result, (stage, reply.text)
    n, install, events = node(site, "SV2")
    assert n.stage == "installing" and install is not None and install.progress == 4
    assert len(stages(events)) == 5  # every accepted callback is recorded, none lost or doubled
    # JSON body, token as a field
    reply = served.request(
        "POST", "/callback/SV2", json_body={"stage": 5, "token": token}, source=src
    )
    assert reply.status == 200 and reply.json()["stage"] == "deployed"


def test_failed_marks_the_node_failed_with_the_reason(served: Serve, site: Site) -> None:
    token, src = token_of(site.config_path, "SV4"), IP["SV4"]
    assert served.callback("SV4", 1, token, src).status == 200
    tail = "anaconda: ...\nerror: no disk matched sda\n" + f"token was {token}\n"
    reply = served.request(
        "POST", "/callback/SV4", form={"stage": "failed", "token": token, "log": tail}, source=src
    )
    assert reply.status == 200
    n, install, events = node(site, "SV4")
    assert n.stage == "failed" and n.failed_stage == "installing" and install is None
    assert "installer reported failure" in (n.stage_reason or "")
    assert token not in (events[-1].detail or "")  # a token in the log tail is masked
    assert served.callback("SV4", 2, token, src).status == 403  # the install ended


def test_bad_input_gets_a_short_4xx(served: Serve, site: Site) -> None:
    token, src = token_of(site.config_path, "SV1"), IP["SV1"]
    auth = {"Authorization": f"Bearer {token}"}
    big = served.request(
        "POST", "/callback/SV1", form={"stage": "1", "log": "x" * 70000}, headers=auth, source=src
    )
    assert big.status == 413
    bad_json = served.request(
        "POST",
        "/callback/SV1",
        body=b'{"stage": 1,',
        headers={**auth, "Content-Type": "application/json"},
        source=src,
    )
    assert bad_json.status == 400 and "malformed JSON" in bad_json.json()["error"]
    array = served.request("POST", "/callback/SV1", json_body=[1], headers=auth, source=src)
    assert array.status == 400
    for stage in ("6", "0", "done", ""):
        reply = served.callback("SV1", stage, token, src)
        assert reply.status == 400 and "stage must be" in reply.json()["error"]
    assert served.callback("NOPE", 1, token, src).status == 404
    assert served.get("/api/nodes/NOPE").status == 404
    assert served.get("/boot/zz.ipxe").status == 404
    assert node(site, "SV1")[2] == []  # nothing recorded


def test_install_files_and_ipxe_rendered_on_request(served: Serve, site: Site) -> None:
    token = token_of(site.config_path, "SV1")
    assert served.get("/install/SV1", source=IP["SV1"]).status == 401
    assert served.get(f"/install/SV1?token={token}", source="127.0.0.1").status == 403
    reply = served.get(f"/install/SV1?token={token}", source=IP["SV1"])
    assert reply.status == 200
    parse_kickstart(reply.text, "RHEL9")  # still a valid kickstart for pykickstart
    preseed = served.get(
        f"/install/SV2?token={token_of(site.config_path, 'SV2')}", source=IP["SV2"]
    )
    assert preseed.status == 200 and "d-i " in preseed.text
    t3 = token_of(site.config_path, "SV3")
    user = served.get(f"/install/SV3/{t3}/user-data", source=IP["SV3"])
    assert user.status == 200 and user.text.startswith("#cloud-config")
    assert served.get(f"/install/SV3/meta-data?token={t3}", source=IP["SV3"]).status == 200
    assert served.get(f"/install/SV3/{t3}", source=IP["SV3"]).status == 404  # masked in the log
    script = served.get("/boot/mac-52-54-00-5e-00-01.ipxe", source=IP["SV1"])
    assert script.status == 200 and f"bmprov.token={token}" in script.text
    assert f"bmprov.url=http://10.20.0.1:{served.port}" in script.text
    assert served.get("/boot/52:54:00:5e:00:01.ipxe", source="127.0.0.1").status == 403
    log = served.log.read_text()
    assert "GET /install/SV1 " in log and "?token" not in log and token not in log
    assert t3 not in log


def test_timeouts_fail_nodes_from_cron_and_from_serve(cli, site: Site, tmp_path: Path) -> None:
    provision(cli, site, tmp_path, NODES[:2])
    site.write_config(
        "[serve]\ntimeout_check_seconds = 1\n[serve.timeouts]\nos_provisioning = 0.02\n"
    )
    time.sleep(1.5)
    run = subprocess.run(
        [str(BMPROV), "timeouts", "--json"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert {t["serial"] for t in doc["timed_out"]} == {"SV1", "SV2"}
    n, install, events = node(site, "SV1")
    assert n.stage == "failed" and n.stage_reason == "timed out waiting for stage 1"
    assert install is None and events[-1].kind == "timeout"
    # serve's own check: a node back in os_provisioning times out again with serve running
    set_ip(site.config_path, "SV1", ORIGINAL["SV1"])
    assert cli("advance", "--stage", "networking", "--serial", "SV1").exit_code == 0
    with serving(site.config_path, tmp_path / "serve.log") as serve:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if serve.get("/api/nodes/SV1").json()["stage"] == "failed":
                break
            time.sleep(0.3)
        assert serve.get("/api/nodes/SV1").json()["stage_reason"] == "timed out waiting for stage 1"


def test_two_workers_hammered_lose_and_double_nothing(cli, site: Site, tmp_path: Path) -> None:
    nodes = [(f"HM{i:03d}", f"52:54:00:6e:01:{i:02x}", "rocky9") for i in range(40)]
    provision(cli, site, tmp_path, nodes)
    site.write_config("[serve]\ncallbacks_from_reserved_ip = false\n")
    tokens = {s: token_of(site.config_path, s) for s, _, _ in nodes}
    with serving(site.config_path, tmp_path / "serve.log", "--workers", "2") as serve:
        errors: list[str] = []

        def installer(serial: str) -> None:
            for stage in (1, 2, 3, 4, 5):
                reply = serve.callback(serial, stage, tokens[serial], "127.0.0.1")
                if reply.status != 200:
                    errors.append(f"{serial} {stage}: {reply.status} {reply.text}")

        threads = [threading.Thread(target=installer, args=(s,)) for s, _, _ in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert serve.stop() == 0  # SIGTERM: a clean stop
    pids = set(re.findall(r"bmprov\.serve\.\w+: .*", (tmp_path / "serve.log").read_text()))
    assert pids  # it logged
    for serial, _, _ in nodes:
        n, _, events = node(site, serial)
        assert n.stage == "deployed", (serial, n.stage_reason)
        assert stages(events) == [f"stage {i}" for i in range(1, 6)], serial


def test_no_secret_in_pages_api_or_log(served: Serve, site: Site) -> None:
    secrets = [token_of(site.config_path, s) for s, _, _ in NODES]
    secrets.append((site.dir / "serve.secret").read_text().strip())
    served.callback("SV1", 1, secrets[0], IP["SV1"])
    served.get(f"/install/SV1?token={secrets[0]}", source=IP["SV1"])
    texts = [
        served.get("/").text,
        served.get("/api/nodes").text,
        served.get("/api/nodes/SV1").text,
        served.get("/api/nodes/SV1/events").text,
        served.log.read_text(),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "$6$" not in text  # no root password hash
        assert "install_options" not in text


def test_write_api_needs_the_admin_token(cli, site: Site, tmp_path: Path) -> None:
    provision(cli, site, tmp_path, NODES[:1])
    admin = "an-admin-token-of-enough-length"
    (site.dir / "admin.token").write_text(admin + "\n")
    site.write_config('[serve]\nadmin_token_file = "admin.token"\nprotect_reads = true\n')
    with serving(site.config_path, tmp_path / "serve.log") as serve:
        assert serve.get("/api/nodes").status == 401
        assert serve.get("/").status == 401
        auth = {"Authorization": f"Bearer {admin}"}
        assert serve.get("/api/nodes", headers=auth).status == 200
        path = "/api/nodes/SV1/reinstall"
        assert serve.request("POST", path, form={"os": "rocky9"}).status == 403
        wrong = {"Authorization": "Bearer not-the-admin-token-at-all"}
        assert serve.request("POST", path, form={"os": "rocky9"}, headers=wrong).status == 403
        reply = serve.request("POST", path, form={"os": "rocky9"}, headers=auth)
        assert reply.status in (200, 400, 501), reply.text
        assert admin not in serve.log.read_text()
