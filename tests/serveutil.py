"""``bmprov serve`` as a real subprocess on loopback, and an HTTP client that can call from a
chosen 127.0.0.x source address (the reserved-IP rule)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bmprov import tokens
from bmprov.config import load_config
from bmprov.store import StateDB

BMPROV = Path(sys.executable).parent / "bmprov"
SERVE_PORTS = range(500, 1000)  # serve test ports: BMPROV_TEST_PORT_BASE + 500 … + 999


def free_port() -> int:
    """A free port in this worktree's serve block."""
    base = int(os.environ.get("BMPROV_TEST_PORT_BASE", "32000"))
    start = (os.getpid() * 7) % len(SERVE_PORTS)
    for i in range(len(SERVE_PORTS)):
        port = base + SERVE_PORTS[(start + i) % len(SERVE_PORTS)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free serve test port")


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Serve:
    """A running serve: its port, its log file, and its process."""

    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        source: str = "127.0.0.1",
    ) -> Reply:
        head = dict(headers or {})
        if form is not None:
            body = urlencode(form).encode()
            head.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            head.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=(source, 0)
        )
        try:
            conn.request(method, path, body=body, headers=head)
            resp = conn.getresponse()
            return Reply(resp.status, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def callback(
        self, serial: str, stage: str | int, token: str | None, source: str, **kw: Any
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.request(
            "POST",
            f"/callback/{serial}",
            form={"stage": str(stage), **kw},
            headers=headers,
            source=source,
        )

    def stop(self) -> int:
        """SIGTERM, and the exit code (uvicorn finishes in-flight requests first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@contextmanager
def serving(config_path: Path, log: Path, *args: str) -> Iterator[Serve]:
    """Start ``bmprov serve`` on a free test port; stop it (SIGTERM) even if the test fails."""
    port = free_port()
    env = {**os.environ, "BMPROV_CONFIG": str(config_path)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BMPROV), "serve", "--listen", f"127.0.0.1:{port}", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    serve = Serve(port, log, proc)
    try:
        _wait_ready(serve)
        yield serve
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(serve: Serve) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if serve.proc.poll() is not None:
            raise RuntimeError(f"serve exited {serve.proc.returncode}: {serve.log.read_text()}")
        try:
            if serve.get("/api/nodes").status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve did not start: {serve.log.read_text()}")


def token_of(config_path: Path, serial: str) -> str:
    """The current install token of a node (derived like the writer does)."""
    config = load_config(config_path)
    with StateDB(config.state_path) as db:
        node = db.node_by_serial(serial)
        assert node is not None
        install = db.current_installs([node.id])[node.id]
        return tokens.token_for(tokens.load_secret(config), install).reveal()


def set_ip(config_path: Path, serial: str, ip: str | None) -> str | None:
    """Give a node another address (a loopback one, so tests can call from its reserved IP);
    returns the one it had."""
    config = load_config(config_path)
    with StateDB(config.state_path) as db:
        node = db.node_by_serial(serial)
        assert node is not None
        db.release_addresses([node.id])
        if ip is not None:
            db.assign_addresses([(node.id, ip)])
        return node.ip
