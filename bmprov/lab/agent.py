"""The lab agent: one process holding the virtual BMCs and their QEMU machines.

    python -m bmprov.lab.agent <lab dir>

Started by ``bmprov lab up`` and stopped by ``lab down`` (SIGTERM). It runs

* one :class:`~bmprov.lab.vbmc.VirtualBmc` per machine on 127.0.0.1:<port_base + 1 + i>
  (pyghmi's IO loop on the main thread), each powering its QEMU machine; the QEMU processes
  are this agent's children and get SIGKILL if it dies (``PR_SET_PDEATHSIG``);
* the OMAPI forwarder: 127.0.0.1:<port_base> on the host → dhcpd's OMAPI port in the
  namespace, so bmprov on the host (the CLI, ``bmprov serve``) adds reservations with no
  address outside loopback.

The guests' HTTP side is ``bmprov serve`` itself, a process of its own
(:mod:`bmprov.lab.serving`).

It writes ``agent.ready`` once everything listens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pyghmi.ipmi.bmc as pyghmi_bmc

from bmprov.lab import ipmiserver, netns, services, state
from bmprov.lab.machine import Machine, launcher_for
from bmprov.lab.vbmc import CallLog, VirtualBmc

READY = "agent.ready"


Endpoint = tuple[str | None, str, int]  # (namespace or None for the agent's own, host, port)


def forward(listen: Endpoint, connect: Endpoint) -> None:
    """Accept TCP on ``listen`` and pipe each connection to ``connect`` (either namespace)."""
    with netns.inside(listen[0]) if listen[0] else contextlib.nullcontext():
        listener = socket.create_server(listen[1:])

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            with netns.inside(connect[0]) if connect[0] else contextlib.nullcontext():
                upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                upstream.connect(connect[1:])
            except OSError:
                client.close()
                upstream.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, name=f"forward-{listen[2]}", daemon=True).start()


def main(argv: list[str]) -> int:
    lab = state.load_for_process(argv)
    directory = Path(lab.dir)
    ipmiserver.install()
    log = CallLog(directory / "vbmc.jsonl")
    password = (directory / "bmc.password").read_text().strip()
    machines = []
    for spec in lab.machines:

        def record(entry: dict[str, Any], name: str = spec.name) -> None:
            log({"machine": name, **entry})

        machines.append(Machine(spec, launcher_for(spec.netns), record))
    bmcs = [VirtualBmc(m, {lab.user: password}, log) for m in machines]

    def stop(*_: Any) -> None:
        for machine in machines:
            machine.stop_now()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # bmprov on the host reaches dhcpd's OMAPI in the namespace through host loopback only
    forward((None, "127.0.0.1", lab.omapi_port), (lab.netns, "127.0.0.1", services.OMAPI_PORT))
    (directory / READY).write_text(f"{os.getpid()} {len(bmcs)}\n")
    print(f"lab agent: {len(bmcs)} BMC(s), pid {os.getpid()}", flush=True)
    pyghmi_bmc.Bmc.listen(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
