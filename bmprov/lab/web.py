"""The lab's HTTP server for the guests: a stand-in for ``bmprov serve`` until it exists.

:func:`start_http` is the one place the lab starts its HTTP side, on SERVER:HTTP_PORT inside
the namespace. Today it is a thread of the lab agent that

* serves the site's HTTP root (boot scripts, kernels, install files under ``ks/``);
* answers ``GET /install/<serial>`` with ``ks/<serial>.cfg`` (the installer contract's path,
  :data:`bmprov.lab.installer.INSTALL_PATH`);
* records every ``POST /callback/<serial>`` (stage, whether a bearer token came and a digest
  of it, never the token) in ``callbacks.jsonl`` and answers 200.

When ``bmprov serve`` lands, this function starts it instead (``ip netns exec <ns> bmprov
--config <dir>/bmprov.toml serve --listen SERVER:HTTP_PORT``, tracked like the other daemons).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bmprov.lab import netns
from bmprov.lab.installer import INSTALL_PATH
from bmprov.lab.services import HTTP_PORT

MAX_BODY = 64 * 1024


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    record: Callable[[str, dict[str, Any]], None]
    install_dir: Path

    def log_message(self, format: str, *args: Any) -> None:
        self.record("requests", {"client": self.client_address[0], "line": format % args})

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(INSTALL_PATH):
            serial = path[len(INSTALL_PATH) :]
            file = self.install_dir / f"{serial}.cfg"
            if "/" in serial or not file.is_file():
                self.send_error(404, "no install file for this serial")
                return
            self._reply(200, file.read_bytes(), "text/plain")
            return
        super().do_GET()

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if not path.startswith("/callback/") or length > MAX_BODY:
            self.send_error(404 if length <= MAX_BODY else 413)
            return
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        entry = {
            "serial": path.removeprefix("/callback/"),
            "client": self.client_address[0],
            "stage": (form.get("stage") or [""])[0],
            "bearer": bool(token),
            "token_sha256": hashlib.sha256(token.encode()).hexdigest()[:16] if token else None,
        }
        self.record("callbacks", entry)
        self._reply(200, b"OK\n", "text/plain")

    def _reply(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_http(ns: str, directory: Path, http_root: Path, install_dir: str) -> Callable[[], None]:
    """Start the guests' HTTP server in ``ns``; returns the function that stops it."""
    lock = threading.Lock()

    def record(kind: str, entry: dict[str, Any]) -> None:
        line = json.dumps({"t": round(time.time(), 3), **entry}, sort_keys=True)
        with lock, (directory / f"{kind}.jsonl").open("a") as out:
            out.write(line + "\n")

    attrs = {"record": staticmethod(record), "install_dir": http_root / install_dir}
    handler = type("LabHandler", (_Handler,), attrs)
    factory = functools.partial(handler, directory=str(http_root))
    with netns.inside(ns):  # the listening socket lives in the lab network
        server = http.server.ThreadingHTTPServer((netns.SERVER, HTTP_PORT), factory)
    threading.Thread(target=server.serve_forever, name="lab-http", daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines record of the lab (empty when there is none yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
