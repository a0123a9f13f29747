"""The shipped install templates call ``bmprov serve`` back (docs/install-callbacks.md).

Every OS profile is rendered with a serve URL and token and without: without, no callback is
rendered at all; with, the file still passes its installer's checks (pykickstart, the
autoinstall schema, ``debconf-set-selections``), every shell fragment passes ``sh -n`` (dash and
busybox ash), and the callback script it carries is **run for real** against a receiver on
127.0.0.1 through each transport it can use (curl; GNU and busybox wget; busybox nc, which is
all d-i's busybox can POST with): exact requests, retries on 503 and connection refused, no
retry on 403, never a failed script. The first-boot script is installed and run in a private
mount namespace (tmpfs over /etc/systemd/system and /var/lib) and must remove itself.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from bmprov.boot.osprofiles import BUILTIN_OS
from bmprov.boot.render import install_token, serve_url
from bmprov.boot.writer import NodeFileWriter
from bmprov.config import load_config
from bmprov.errors import StepFailed
from bmprov.install import check as installcheck
from bmprov.install import disklayout
from bmprov.nodes import Node
from bmprov.setup_site import init_site
from tests.callbackutil import (
    BUSYBOX,
    CALLBACK_PORT,
    TOKEN,
    Receiver,
    busybox_bin,
    callback_scripts,
    kickstart_sections,
    late_scripts,
    online_install,
    online_script,
)
from tests.test_install_layouts import node as layout_node

PROFILES = sorted(BUILTIN_OS)
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="needs busybox")


def make_node(os_name: str, **extra: str) -> Node:
    return layout_node(os_name, "LVM_RAID1", 2, **extra)


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> NodeFileWriter:
    site = init_site(tmp_path_factory.mktemp("callbacks") / "site")
    return NodeFileWriter(load_config(site.config_path))


def render(
    writer: NodeFileWriter,
    os_name: str,
    url: str | None = "http://127.0.0.1:33600",
    token: str | None = TOKEN,
    **extra: str,
) -> str:
    writer.callbacks = (lambda n: {"bmprov_url": url, "install_token": token}) if url else None
    try:
        files = writer.render_install(make_node(os_name, **extra), "10.20.0.50")
    finally:
        writer.callbacks = None
    return next(t for p, t in files.items() if "/ks/" in str(p) and p.name != "meta-data")


# ---- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize("os_name", PROFILES)
def test_without_serve_no_callback_is_rendered(writer, os_name) -> None:
    for url, token in ((None, None), ("", ""), ("http://127.0.0.1:33600", "")):
        text = render(writer, os_name, url, token, callback_url="http://10.20.0.1/cb")
        assert "bmprov-callback.sh" not in text and "bmprov-online" not in text
        assert "Bearer" not in text
    # the plain "installed" notification of [install] callback_url is still there
    scripts = [text, *late_scripts(text)]
    assert any("--data-urlencode event=installed" in s for s in scripts)


@pytest.mark.parametrize("os_name", PROFILES)
def test_with_serve_every_file_passes_its_checks(writer, os_name) -> None:
    profile = BUILTIN_OS[os_name]
    text = render(writer, os_name, callback_url="http://10.20.0.1/cb", post_script="example")
    layout = disklayout.plan(writer.install_options(make_node(os_name)))
    installcheck.check_with_tools(profile.install, text, layout, profile.ks_version)
    scripts = callback_scripts(text)
    assert len(scripts) == 1  # written once (first %pre / early command), used by the rest
    helper = scripts[0].split("bmprov_callback() {")[1].split("\n}\n")[0]
    assert helper in online_script(text)  # the same helper on the first boot
    assert "http://127.0.0.1:33600/callback/SN1" in scripts[0] and TOKEN in scripts[0]
    # the installer's plain "installed" GET is kept (serve's notice is post_install_url)
    assert "--data-urlencode event=installed" in text + "".join(late_scripts(text))
    assert "ExecStart=/bin/sh /var/lib/bmprov/online.sh" in _unit(text)


def _unit(text: str) -> str:

    match = re.search(
        r"echo (\S+) \| base64 -d > /etc/systemd/system/bmprov-online", online_install(text)
    )
    assert match
    return base64.b64decode(match.group(1)).decode()


def test_stage_order_per_installer(writer) -> None:
    ks = kickstart_sections(render(writer, "rocky9", post_script="example"))
    order = [
        stage
        for body in ks.values()
        for stage in re.findall(r"\bsh /tmp/bmprov-callback\.sh (\w+)", body)
    ]
    assert order == ["1", "2", "failed", "3", "4", "failed"]
    assert "%onerror" in list(ks)[-1] and "/tmp/anaconda.log" in list(ks.values())[-1]
    preseed = render(writer, "debian12")
    early = next(line for line in preseed.splitlines() if "preseed/early_command" in line)
    late = next(line for line in preseed.splitlines() if "preseed/late_command" in line)
    assert early.endswith("sh /tmp/bmprov-callback.sh 1")
    assert late.index(" 2;") < late.index("in-target") < late.index(" 3;") < late.index(" 4;")
    assert late.endswith("failed /var/log/syslog; false; fi")  # the install still stops
    auto = yaml.safe_load(render(writer, "ubuntu-24.04"))["autoinstall"]
    assert auto["early-commands"][0].endswith("bmprov-callback.sh 1'")
    assert [c.split()[-1] for c in auto["late-commands"][2:]] == ["3", "4"]
    assert "failed /var/log/installer/" in auto["error-commands"][0]


def _shells() -> list[list[str]]:
    return [["sh", "-n"]] + ([[BUSYBOX, "sh", "-n"]] if BUSYBOX else [])


@pytest.mark.parametrize("os_name", PROFILES)
def test_every_generated_script_parses(writer, os_name, tmp_path) -> None:
    text = render(writer, os_name, post_script="example")
    fragments = [*callback_scripts(text), online_script(text), online_install(text)]
    fragments += late_scripts(text)
    if BUILTIN_OS[os_name].install == "kickstart":
        fragments += list(kickstart_sections(text).values())
    for line in text.splitlines():  # preseed's one-line commands
        if line.startswith("d-i preseed/") and "_command string " in line:
            fragments.append(line.split(" string ", 1)[1].replace("in-target ", ""))
    if BUILTIN_OS[os_name].install == "autoinstall":
        section = yaml.safe_load(text)["autoinstall"]
        for key in ("early-commands", "late-commands", "error-commands"):
            fragments += section[key]
    for i, fragment in enumerate(fragments):
        path = tmp_path / f"f{i}.sh"
        path.write_text(fragment)
        for shell in _shells():
            run = subprocess.run([*shell, str(path)], capture_output=True, text=True, check=False)
            assert run.returncode == 0, f"{shell}: {run.stderr}\n{fragment[:400]}"


@pytest.mark.parametrize(
    "token",
    [
        "7.abc'def0123456789xyz",
        "7.abc\ndef0123456789xyz",
        "$(reboot).abcdefghijklmnopq",
        "7.abcdefghijklm nopq",
        "abc.defghijklmnopqrstuv",
        "7.abcdefghijklmnopq;x",
        "",
    ],
)
def test_a_bad_token_is_refused_at_render(writer, token) -> None:
    if not token:
        return  # "" is "no token": no callbacks (test_without_serve_no_callback_is_rendered)
    for os_name in ("rocky9", "debian12", "ubuntu-22.04"):
        with pytest.raises(StepFailed, match="install token is not"):
            render(writer, os_name, token=token)
    with pytest.raises(ValueError, match="value not shown") as exc:
        install_token(token)
    assert token not in str(exc.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:80'/x",
        "http://10.0.0.1/$(reboot)",
        "http://10.0.0.1\n",
        "http://serve:8080",
        "https://10.0.0.1",
        "http://10.0.0.1:99999",
        "http://10.0.0.1/path",
        "http://10.0.0.1:80 x",
        "http://[::1",
        "ftp://10.0.0.1",
        "http://999.0.0.1",
    ],
)
def test_a_bad_serve_url_is_refused_at_render(writer, url) -> None:
    with pytest.raises(StepFailed):
        render(writer, "rocky9", url=url)
    with pytest.raises(ValueError, match="serve's base URL"):
        serve_url(url)


def test_serve_url_accepts_ip_urls() -> None:
    assert serve_url("http://10.0.0.1:8080/") == "http://10.0.0.1:8080"
    assert serve_url("http://[2001:db8::1]:8080") == "http://[2001:db8::1]:8080"
    assert serve_url("http://10.0.0.1") == "http://10.0.0.1"


# ---- running the callback script ----------------------------------------------------------


TRANSPORTS = ["curl", "gnu-wget", "busybox-wget", "busybox-nc"]


def _env(tmp_path: Path, transport: str, **extra: str) -> tuple[list[str], dict[str, str]]:
    """The shell and environment that make the script use ``transport``."""
    env = {"BMPROV_CB_LOG": str(tmp_path / "cb.log"), "BMPROV_CB_DELAY": "0", **extra}
    if transport == "curl":
        return ["sh"], {**os.environ, **env}
    if transport == "gnu-wget":
        bindir = tmp_path / "gnu"
        bindir.mkdir(exist_ok=True)
        for tool in (
            "wget",
            "sh",
            "awk",
            "sed",
            "cat",
            "mktemp",
            "tail",
            "head",
            "wc",
            "tr",
            "sleep",
            "date",
            "rm",
            "mkdir",
            "dirname",
            "grep",
            "timeout",
        ):
            link = bindir / tool
            if not link.exists() and shutil.which(tool):
                link.symlink_to(shutil.which(tool) or "")
        return ["sh"], {**env, "PATH": str(bindir)}
    if BUSYBOX is None:
        pytest.skip("needs busybox")
    extra_applet = "wget" if transport == "busybox-wget" else "nc"
    bindir = busybox_bin(tmp_path / transport, extra_applet)
    return [BUSYBOX, "sh"], {**env, "PATH": str(bindir)}


def run_callback(
    script: str, tmp_path: Path, transport: str, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bmprov-callback.sh"
    path.write_text(script)
    shell, environment = _env(tmp_path, transport, **env)
    return subprocess.run(
        [*shell, str(path), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def script_for(writer: NodeFileWriter, url: str) -> str:
    return callback_scripts(render(writer, "debian12", url=url))[0]


@pytest.fixture
def receiver():
    servers: list[Receiver] = []

    def start(statuses: list[int] | None = None, port: int = CALLBACK_PORT) -> Receiver:
        server = Receiver(port, statuses)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_exact_request_with_a_log_tail(writer, receiver, tmp_path, transport) -> None:
    server = receiver()
    log = tmp_path / "installer.log"
    lines = [f"line {i} a&b=c %41 'q' \"d\" $(x) ü\t;" for i in range(700)]
    log.write_bytes(("\n".join(lines) + "\n").encode())
    run = run_callback(script_for(writer, server.url), tmp_path, transport, "failed", str(log))
    assert run.returncode == 0, run.stderr
    assert len(server.requests) == 1, run.stderr
    request = server.requests[0]
    assert (request.method, request.path) == ("POST", "/callback/SN1")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form["stage"] == ["failed"]
    assert request.form["log"][0].encode("latin-1") == log.read_bytes()[-16384:]
    assert "recorded (HTTP 200, try 1)" in (tmp_path / "cb.log").read_text()
    assert TOKEN not in run.stderr + (tmp_path / "cb.log").read_text()  # never logged


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_503_is_retried_then_recorded(writer, receiver, tmp_path, transport) -> None:
    server = receiver([503, 503, 200])
    run = run_callback(script_for(writer, server.url), tmp_path, transport, "2")
    assert run.returncode == 0, run.stderr
    assert [r.form["stage"] for r in server.requests] == [["2"]] * 3
    assert "try 2 failed (HTTP 503" in run.stderr and "recorded (HTTP 200, try 3)" in run.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("status", [401, 403])
def test_refused_is_not_retried(writer, receiver, tmp_path, transport, status) -> None:
    server = receiver([status, 200])
    run = run_callback(script_for(writer, server.url), tmp_path, transport, "3")
    assert run.returncode == 0, run.stderr
    assert len(server.requests) == 1
    assert f"refused (HTTP {status}): not retried" in run.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connection_refused_is_retried(writer, receiver, tmp_path, transport) -> None:
    port = CALLBACK_PORT + 1 + TRANSPORTS.index(transport)
    started: list[Receiver] = []
    timer = threading.Timer(1.5, lambda: started.append(receiver(port=port)))
    timer.start()
    begin = time.monotonic()
    run = run_callback(
        script_for(writer, f"http://127.0.0.1:{port}"),
        tmp_path,
        transport,
        "4",
        BMPROV_CB_DELAY="1",
        BMPROV_CB_TRIES="4",
    )
    timer.join()
    assert run.returncode == 0, run.stderr
    assert started and len(started[0].requests) == 1, run.stderr
    assert "try 1 failed" in run.stderr and time.monotonic() - begin < 20


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_callback_that_never_lands_does_not_fail_the_script(writer, tmp_path, transport) -> None:
    url = f"http://127.0.0.1:{CALLBACK_PORT + 9}"  # nothing listens there
    run = run_callback(script_for(writer, url), tmp_path, transport, "1", BMPROV_CB_TRIES="2")
    assert run.returncode == 0
    assert "gave up after 2 tries" in run.stderr
    assert "gave up after 2 tries" in (tmp_path / "cb.log").read_text()


def test_an_unknown_stage_is_not_sent(writer, receiver, tmp_path) -> None:
    server = receiver()
    run = run_callback(script_for(writer, server.url), tmp_path, "curl", "6")
    assert run.returncode == 0 and server.requests == []
    assert "unknown stage" in run.stderr


def test_retries_are_bounded_to_about_two_minutes() -> None:
    """Defaults: 5 tries, 4 s doubling (4+8+16+32 = 60 s of waits), 20 s per try at most."""
    text = Path("kickstart/callbacks/functions.sh.j2").read_text()
    assert "BMPROV_CB_TRIES:-5" in text and "BMPROV_CB_DELAY:-4" in text
    assert "--max-time 20" in text and "nc -w 20" in text and "'-T 20'" in text


# ---- the first boot -----------------------------------------------------------------------


def first_boot(tmp_path: Path, install: str, env: dict[str, str]) -> str:
    """Install the unit as the installer would, boot once (run its ExecStart), list the files.

    Runs in a private mount namespace with tmpfs over /etc/systemd/system and /var/lib, so
    the host's are never touched.
    """
    (tmp_path / "install.sh").write_text(install)
    steps = f"""
set -e
mount -t tmpfs tmpfs /etc/systemd/system
mount -t tmpfs tmpfs /var/lib
sh {tmp_path}/install.sh
echo INSTALLED
find /etc/systemd/system /var/lib -mindepth 1 -printf '%p %m %u %l\\n' | sort
echo BOOT
test -e /var/lib/bmprov/online.sh && /bin/sh /var/lib/bmprov/online.sh
echo AFTER
find /etc/systemd/system /var/lib -mindepth 1 -printf '%p %m %u %l\\n' | sort
"""
    run = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", steps],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root")
@pytest.mark.parametrize("os_name", ["rocky9", "debian12", "ubuntu-24.04"])
def test_first_boot_reports_online_once_and_removes_itself(
    writer, receiver, tmp_path, os_name
) -> None:
    server = receiver([503, 200])
    text = render(writer, os_name, url=server.url)
    env = {"BMPROV_CB_LOG": str(tmp_path / "cb.log"), "BMPROV_CB_DELAY": "0"}
    out = first_boot(tmp_path, online_install(text), env)
    installed, after = out.split("BOOT")[0], out.split("AFTER")[1]
    assert "/var/lib/bmprov 700 root" in installed
    assert "/var/lib/bmprov/online.sh 600 root" in installed  # the token: root only
    assert (
        "/etc/systemd/system/multi-user.target.wants/bmprov-online.service 777 root "
        "/etc/systemd/system/bmprov-online.service" in installed
    )
    assert [(r.path, r.form["stage"]) for r in server.requests] == [("/callback/SN1", ["5"])] * 2
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "bmprov" not in after  # unit, link, script and token gone


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root")
def test_first_boot_keeps_the_unit_when_serve_is_unreachable(writer, tmp_path) -> None:
    text = render(writer, "rocky9", url=f"http://127.0.0.1:{CALLBACK_PORT + 9}")
    env = {
        "BMPROV_CB_LOG": str(tmp_path / "cb.log"),
        "BMPROV_CB_DELAY": "0",
        "BMPROV_CB_TRIES": "2",
    }
    out = first_boot(tmp_path, online_install(text), env)
    after = out.split("AFTER")[1]
    assert "/var/lib/bmprov/online.sh 600 root" in after  # tried again on the next boot
    assert "gave up after 2 tries" in (tmp_path / "cb.log").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_unit_is_valid_for_systemd(writer, tmp_path) -> None:
    unit = tmp_path / "bmprov-online.service"
    unit.write_text(_unit(render(writer, "rocky9")))
    run = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in run.stderr.splitlines() if "bmprov-online" in line]
    assert problems == [], run.stderr
