"""A stand-in for qemu-system-x86_64 that speaks QMP and nothing else (vBMC unit tests).

    python -m tests.lab.fake_qemu <qemu argv...>

It serves QMP on the ``-qmp unix:PATH,server=on,wait=off`` socket of its command line and
records its argv and every command in ``<dir of PATH>/fake.jsonl``. Like QEMU with
``-no-reboot``: ``quit`` and ``system_reset`` send a ``SHUTDOWN`` event (host-qmp-quit /
host-qmp-system-reset) and exit 0; ``system_powerdown`` sends ``POWERDOWN`` and stays. A
file ``guest-reboot`` appearing beside the socket plays the guest rebooting itself
(``SHUTDOWN`` guest-reset), ``guest-poweroff`` the guest powering off (guest-shutdown).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    qmp = next(a for a in argv if a.startswith("unix:")).removeprefix("unix:").split(",")[0]
    path = Path(qmp)
    log = path.parent / "fake.jsonl"

    def record(entry: dict[str, object]) -> None:
        with log.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    record({"argv": argv})
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    conn, _ = server.accept()
    wfile = conn.makefile("wb")
    lock = threading.Lock()

    def send(msg: dict[str, object]) -> None:
        with lock:
            wfile.write(json.dumps(msg).encode() + b"\r\n")
            wfile.flush()

    def shutdown(reason: str) -> None:
        send({"event": "SHUTDOWN", "data": {"guest": reason.startswith("guest"), "reason": reason}})
        time.sleep(0.05)
        conn.close()
        os._exit(0)

    def guest() -> None:
        while True:
            for name, reason in (
                ("guest-reboot", "guest-reset"),
                ("guest-poweroff", "guest-shutdown"),
            ):
                flag = path.parent / name
                if flag.exists():
                    flag.unlink()
                    record({"guest": reason})
                    shutdown(reason)
            time.sleep(0.02)

    send({"QMP": {"version": {}, "capabilities": []}})
    threading.Thread(target=guest, daemon=True).start()
    for line in conn.makefile("rb"):
        cmd = json.loads(line)["execute"]
        record({"command": cmd})
        send({"return": {}})
        if cmd == "quit":
            shutdown("host-qmp-quit")
        elif cmd == "system_reset":
            shutdown("host-qmp-system-reset")
        elif cmd == "system_powerdown":
            send({"event": "POWERDOWN"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
