"""A minimal QMP client (QEMU Machine Protocol over a unix socket): commands and events.

One reader thread per connection splits what QEMU sends into replies (``return``/``error``,
one per command, in order) and asynchronous events (``SHUTDOWN``, ``RESET``...), which go to
the ``on_event`` callback. Commands wait for their reply at most ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class QmpError(RuntimeError):
    """QEMU refused a command, or did not answer in time."""


class Qmp:
    """One QMP connection, negotiated (``qmp_capabilities``) and ready for commands."""

    def __init__(
        self, path: Path, on_event: Callable[[Event], None], connect_timeout: float = 10.0
    ) -> None:
        self.sock = _connect(path, connect_timeout)
        self.on_event = on_event
        self.replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.lock = threading.Lock()
        self.file = self.sock.makefile("rb")
        greeting = json.loads(self.file.readline() or b"{}")
        if "QMP" not in greeting:
            raise QmpError(f"{path}: not a QMP greeting: {greeting!r}")
        self.reader = threading.Thread(target=self._read, name=f"qmp-{path.name}", daemon=True)
        self.reader.start()
        self.command("qmp_capabilities")

    def _read(self) -> None:
        for line in self.file:
            msg = json.loads(line)
            if "event" in msg:
                self.on_event(msg)
            else:
                self.replies.put(msg)
        self.replies.put(None)  # QEMU closed the socket (it exited)

    def command(self, name: str, timeout: float = 5.0, **arguments: Any) -> Any:
        """Run one command; its ``return`` value, or QmpError."""
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        with self.lock:
            try:
                self.sock.sendall(json.dumps(msg).encode() + b"\n")
                reply = self.replies.get(timeout=timeout)
            except (OSError, queue.Empty) as exc:
                raise QmpError(f"{name}: {exc or 'no reply'}") from None
        if reply is None:
            if name == "quit":
                return {}
            raise QmpError(f"{name}: QEMU closed the connection")
        if "error" in reply:
            raise QmpError(f"{name}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _connect(path: Path, timeout: float) -> socket.socket:
    """Connect to QEMU's QMP server socket, waiting for QEMU to create it."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise QmpError(f"{path}: no QMP server after {timeout:.0f} s") from None
            time.sleep(0.05)
            continue
        return sock
