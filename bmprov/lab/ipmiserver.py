"""pyghmi's IPMI server (``pyghmi.ipmi.bmc.Bmc``), fixed so real IPMI clients can talk to it.

Server-side fixes (shared/peers/bmc.md, section 7): refuse cipher suites other than 3 (pyghmi's
client then falls back instead of crashing), answer RAKP1 for an unknown user with status 0x0d
(instead of pyghmi's silent drop that makes clients retry forever), answer a retransmitted
request from a cache instead of executing it again, and pyghmi's socket-mode race and
lock-order fixes (bmprov.drivers._pyghmi_fixes). :func:`install` applies them all, once per
process, before the first ``Bmc`` is made.

Retransmits: an IPMI client that gets no answer in time sends the same request again with the
same IPMI sequence number (rqSeq; only the RMCP+ session sequence number is new), so that the
BMC can tell a retry from a new request and answer it with the response it already gave. pyghmi
retries after 1.5-2.0 s (bmprov's INITIAL_RETRY); a busy 2-core machine can answer later than
that, and pyghmi's server executed the retry as a new command, counting one power-on twice
(issue 9, item 6). Each ``Bmc`` that wants the number keeps ``counters["retransmit"]``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pyghmi.ipmi.private.session as ipmisession
from pyghmi.ipmi.private import serversession

from bmprov.drivers import _pyghmi_fixes

RETRY_WINDOW = 5.0  # seconds a response stays cached for a retry (IPMI's Seq expiration)


class StrictServerSession(serversession.ServerSession):  # type: ignore[misc]
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
            counters = getattr(self.bmc, "counters", None)
            if counters is not None:
                counters["retransmit"] = counters.get("retransmit", 0) + 1
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


def install() -> None:
    """Use the fixed server session, the pyghmi fixes and IPv4 loopback wake-ups."""
    serversession.ServerSession = StrictServerSession
    _pyghmi_fixes.apply(client=False)
    ipmisession.myself = "127.0.0.1"  # pyghmi's self-wakeup address, for IPv4 sockets
