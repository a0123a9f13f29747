"""Many simulated IPMI 2.0 BMCs in one process, on pyghmi's own server class.

Each BMC binds 127.0.0.1:PORT (UDP); one pyghmi IO loop serves them all (keep ~50 per process:
the loop's cost per packet grows with the number of sockets). The state is observable
out-of-band over HTTP on 127.0.0.1:HTTP_PORT:

    GET  /state              {"<port>": {"power", "bootdev", "persistent", "counters"}}
    POST /reset[?power=on]   every BMC off (or on), boot device default, counters zeroed

    python -m tests.sims.labbmc --base-port 19100 --count 50 --http-port 19990

Server-side fixes: bmprov.lab.ipmiserver (the same the lab's virtual BMCs use). The
``retransmit`` counter says how many retries were answered from cache.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyghmi.ipmi.bmc as pyghmi_bmc

from bmprov.lab import ipmiserver

BMCS: dict[int, LabBmc] = {}
LOCK = threading.Lock()


class LabBmc(pyghmi_bmc.Bmc):
    """Power and boot device of one pretend server."""

    def __init__(self, authdata: dict[str, str], port: int, power: str) -> None:
        super().__init__(
            authdata,
            port=port,
            address="127.0.0.1",
            bmcuuid=uuid.uuid5(uuid.NAMESPACE_DNS, f"labbmc-{port}"),
        )
        self.power = power
        self.bootdev = "default"
        self.persistent = False
        self.counters = dict.fromkeys(
            ("on", "off", "cycle", "reset", "shutdown", "set_boot", "retransmit"), 0
        )
        with LOCK:
            BMCS[port] = self

    def as_dict(self) -> dict[str, Any]:
        return {
            "power": self.power,
            "bootdev": self.bootdev,
            "persistent": self.persistent,
            "counters": dict(self.counters),
        }

    def get_power_state(self) -> str:
        return self.power

    def power_on(self) -> int:
        self.power = "on"
        self.counters["on"] += 1
        return 0

    def power_off(self) -> None:
        self.power = "off"
        self.counters["off"] += 1

    def power_shutdown(self) -> None:
        self.power = "off"
        self.counters["shutdown"] += 1

    def power_reset(self) -> None:
        self.counters["reset"] += 1

    def power_cycle(self) -> None:  # must not block: one IO thread serves every BMC
        self.power = "on"
        self.counters["cycle"] += 1

    def cold_reset(self) -> int:
        return 0

    def get_system_guid(self) -> Any:
        return self.uuid

    def get_boot_device(self) -> str:
        return self.bootdev

    def set_boot_device(self, bootdevice: str) -> None:
        self.bootdev = bootdevice
        self.counters["set_boot"] += 1


class StateHandler(BaseHTTPRequestHandler):
    """GET /state and POST /reset."""

    def do_GET(self) -> None:
        with LOCK:
            body = json.dumps({str(p): b.as_dict() for p, b in sorted(BMCS.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") != "/reset":
            self.send_response(404)
        else:
            power = "on" if "power=on" in self.path else "off"
            with LOCK:
                for bmc in BMCS.values():
                    bmc.power, bmc.bootdev = power, "default"
                    bmc.counters = dict.fromkeys(bmc.counters, 0)
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="password")
    parser.add_argument("--initial-power", default="off", choices=["on", "off"])
    args = parser.parse_args()
    for port in (args.base_port, args.base_port + args.count - 1, args.http_port):
        if not 19000 <= port <= 31999:
            sys.exit(f"ports must stay in 19000-31999 (got {port})")
    ipmiserver.install()
    for i in range(args.count):
        LabBmc({args.user: args.password}, args.base_port + i, args.initial_power)
    server = ThreadingHTTPServer(("127.0.0.1", args.http_port), StateHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(
        f"labbmc: {args.count} BMC(s) from 127.0.0.1:{args.base_port} pid={os.getpid()}", flush=True
    )
    pyghmi_bmc.Bmc.listen(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
