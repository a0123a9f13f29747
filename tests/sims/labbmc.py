"""Many simulated IPMI 2.0 BMCs in one process, on pyghmi's own server class.

Each BMC binds 127.0.0.1:PORT (UDP); one pyghmi IO loop serves them all (keep ~50 per process:
the loop's cost per packet grows with the number of sockets). The state is observable
out-of-band over HTTP on 127.0.0.1:HTTP_PORT:

    GET  /state              {"<port>": {"power", "bootdev", "persistent", "counters"}}
    POST /reset[?power=on]   every BMC off (or on), boot device default, counters zeroed

    python -m tests.sims.labbmc --base-port 19100 --count 50 --http-port 19990

Server-side fixes applied (shared/peers/bmc.md, section 7): refuse cipher suites other than 3
(pyghmi's client then falls back instead of crashing), answer RAKP1 for an unknown user with
status 0x0d (instead of pyghmi's silent drop that makes clients retry forever), answer a
retransmitted request from a cache instead of executing it again (below), and pyghmi's
socket-mode race and lock-order fixes (bmprov.drivers._pyghmi_fixes).

Retransmits: an IPMI client that gets no answer in time sends the same request again with the
same IPMI sequence number (rqSeq; only the RMCP+ session sequence number is new), so that the
BMC can tell a retry from a new request and answer it with the response it already gave. pyghmi
retries after 1.5-2.0 s (bmprov's INITIAL_RETRY); four simulator processes serving 200 BMCs on
a busy 2-core machine can answer later than that. pyghmi's server executed the retry as a new
command, counting one power-on twice (issue 9, item 6): this is the simulator's bug, not a
second command from bmprov. The ``retransmit`` counter says how many were answered from cache.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.session as ipmisession
from pyghmi.ipmi.private import serversession

from bmprov.drivers import _pyghmi_fixes

BMCS: dict[int, LabBmc] = {}
LOCK = threading.Lock()
RETRY_WINDOW = 5.0  # seconds a response stays cached for a retry (IPMI's Seq expiration)


class StrictServerSession(serversession.ServerSession):
    """Refuse what pyghmi's server cannot do, the way real BMCs do."""

    def create_open_session_response(self, request: Any) -> Any:
        auth = request[12] & 0x3F if len(request) > 12 else 1
        integrity = request[20] & 0x3F if len(request) > 20 else 1
        if auth != 1 or integrity not in (0, 1):
            self.clientsessionid = request[4:8]
            self.managedsessionid = os.urandom(4)
            # 0x11: no cipher suite matches the proposed algorithms
            return bytearray([request[0], 0x11, 0, 0]) + request[4:8]
        return super().create_open_session_response(request)

    def _got_rakp1(self, data: Any) -> Any:
        namelen = data[27] if len(data) > 27 else 0
        user = bytes(data[28 : 28 + namelen]).decode("utf-8", "replace")
        if namelen and self.authdata.get(user) is None:
            payload = bytearray([data[0], 0x0D, 0, 0]) + self.clientsessionid
            self.send_payload(payload, serversession.constants.payload_types["rakp2"], retry=False)
            return None
        return super()._got_rakp1(data)

    def handle_client_request(self, request: Any) -> None:
        """Answer a retransmit of the previous request from cache; execute anything else."""
        key = (request["netfn"], request["command"], self.seqlun, bytes(request["data"]))
        last = getattr(self, "last_request", None)
        if (
            last is not None
            and last[0] == key
            and last[2] is not None
            and time.monotonic() - last[1] < RETRY_WINDOW
        ):
            self.bmc.counters["retransmit"] += 1
            data, code = last[2]
            super()._send_ipmi_net_payload(data=data, code=code)
            return
        self.last_request: list[Any] = [key, time.monotonic(), None]
        super().handle_client_request(request)

    def _send_ipmi_net_payload(self, *args: Any, **kwargs: Any) -> Any:
        """Remember the first response to the current request (the retransmit cache)."""
        last = getattr(self, "last_request", None)
        if last is not None and last[2] is None:
            data = kwargs.get("data", args[2] if len(args) > 2 else ())
            code = kwargs.get("code", args[3] if len(args) > 3 else 0)
            last[2] = (list(data), code)
        return super()._send_ipmi_net_payload(*args, **kwargs)


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
    serversession.ServerSession = StrictServerSession
    _pyghmi_fixes.apply(client=False)
    ipmisession.myself = "127.0.0.1"  # pyghmi's self-wakeup address, for IPv4 sockets
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
