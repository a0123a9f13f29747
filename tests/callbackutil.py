"""A stand-in for ``bmprov serve``'s callback endpoint, and the rendered callback scripts.

:class:`Receiver` listens on 127.0.0.1, records every request exactly as it arrived (method,
path, headers, form fields) and answers with the statuses it is given, in order (then 200).
The script helpers pull the callback script, the first-boot script and every shell fragment
out of a rendered install file, so the tests can run what an installer would run.
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

from tests.sims.fixtures import PORT_BASE

CALLBACK_PORT = PORT_BASE + 600
"""First of the ports these tests use (+600..+609)."""
TOKEN = "7.AbCdEfGhIjKlMnOpQrStUvWxYz_-0123456789abcdefg"
BUSYBOX = shutil.which("busybox")
# What d-i's busybox offers (debian/config/pkg/udeb): no curl, a wget without long options
# (emulated by leaving it out), nc, awk, sed, base64, tail -c.
BUSYBOX_APPLETS = ("sh", "awk", "sed", "cat", "mktemp", "tail", "head", "wc", "tr", "sleep")
BUSYBOX_APPLETS += ("date", "rm", "rmdir", "mkdir", "dirname", "grep", "base64", "chmod", "ln")


@dataclass
class Request:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    raw: bytes


class Receiver(ThreadingHTTPServer):
    """Records requests; answers ``statuses`` in order, then 200."""

    daemon_threads = True

    def __init__(self, port: int, statuses: list[int] | None = None) -> None:
        self.requests: list[Request] = []
        self.statuses = list(statuses or [])
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self._record("POST")

    def do_GET(self) -> None:
        self._record("GET")

    def _record(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form = parse_qs(raw.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
        with self.server.lock:
            self.server.requests.append(
                Request(
                    method, self.path, {k.lower(): v for k, v in self.headers.items()}, form, raw
                )
            )
            status = self.server.statuses.pop(0) if self.server.statuses else 200
        body = b"ok\n" if status < 300 else b"no\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests assert on :attr:`Receiver.requests`."""


def busybox_bin(directory: Path, *extra: str) -> Path:
    """A PATH directory holding only busybox applets (``extra`` adds e.g. ``wget`` or ``nc``)."""
    assert BUSYBOX
    directory.mkdir(parents=True, exist_ok=True)
    for applet in (*BUSYBOX_APPLETS, *extra):
        link = directory / applet
        if not link.exists():
            link.symlink_to(BUSYBOX)
    return directory


_HEREDOC = re.compile(r"<<'BMPROV_CALLBACK'\n(.*?)\nBMPROV_CALLBACK\n", re.DOTALL)
_WRITE = re.compile(r"echo ([A-Za-z0-9+/=]+) \| base64 -d > /tmp/bmprov-callback\.sh")
_ONLINE = re.compile(r"echo ([A-Za-z0-9+/=]+) \| base64 -d > /var/lib/bmprov/online\.sh")
_LATE = re.compile(r"echo ([A-Za-z0-9+/=]+) \| base64 -d \| sh")


def b64(text: str) -> str:
    return base64.b64decode(text).decode()


def _expanded(text: str) -> str:
    """An autoinstall file's commands as plain text (``tojson`` escapes ``'`` and ``>``)."""
    if not text.startswith("#cloud-config"):
        return text
    section = yaml.safe_load(text)["autoinstall"]
    keys = ("early-commands", "late-commands", "error-commands")
    return "\n".join(c for key in keys for c in section.get(key, []))


def callback_scripts(text: str) -> list[str]:
    """Every copy of the callback script a rendered install file carries."""
    text = _expanded(text)
    return [m.group(1) + "\n" for m in _HEREDOC.finditer(text)] + [
        b64(m.group(1)) for m in _WRITE.finditer(text)
    ]


def late_scripts(text: str) -> list[str]:
    """The late-command scripts (preseed, autoinstall) carried in base64."""
    text = _expanded(text)
    return [b64(m.group(1)) for m in _LATE.finditer(text)]


def online_install(text: str) -> str:
    """The shell lines that drop the first-boot unit (kickstart %post or a late script)."""
    for source in (text, *late_scripts(text)):
        lines = [line.strip() for line in source.splitlines()]
        start = next((i for i, line in enumerate(lines) if _ONLINE.search(line)), None)
        if start is not None:
            end = next(i for i in range(start, len(lines)) if lines[i].startswith("if command"))
            return "\n".join(lines[start : end + 1]) + "\n"
    raise AssertionError("no first-boot unit in the install file")


def online_script(text: str) -> str:
    """The first-boot script (decoded)."""
    match = _ONLINE.search(online_install(text))
    assert match
    return b64(match.group(1))


def kickstart_sections(text: str) -> dict[str, str]:
    """Header line → body of every %pre/%post/%onerror section."""
    sections: dict[str, str] = {}
    for match in re.finditer(r"^(%(?:pre|post|onerror)[^\n]*)\n(.*?)^%end$", text, re.M | re.S):
        key = match.group(1)
        while key in sections:
            key += " "
        sections[key] = match.group(2)
    return sections
