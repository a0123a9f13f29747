"""Pipelined OMAPI lookups: what dhcpd holds for many MACs, without a round trip per MAC.

OMAPI has no "list hosts" call, so ``dhcp list`` and ``reconcile`` look up every MAC bmprov
knows. The lookups go out as the adds of ``advance`` do (:meth:`OmapiBackend.add_many`):
chunks of :data:`~bmprov.dhcp.omapi.WINDOW` messages, one ``sendall`` each, two chunks in
flight, replies read in order (dhcpd answers in order). One lookup at a time costs a round trip
each; pipelined, 10,000 lookups are bounded by dhcpd's own work (figures in
bench/reconcile_bench.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from bmprov.dhcp import Reservation
from bmprov.dhcp.omapi_wire import encode, host_from_reply, lookup_message

if TYPE_CHECKING:
    from bmprov.dhcp.omapi import OmapiBackend


def lookup_many(backend: OmapiBackend, macs: Iterable[str]) -> dict[str, Reservation | None]:
    """mac → the host dhcpd holds for it (None: no host object). Raises DriverError."""
    from bmprov.dhcp.omapi import WINDOW  # noqa: PLC0415  (omapi imports this module)

    found: dict[str, Reservation | None] = {}
    sent: deque[list[tuple[str, int]]] = deque()
    chunk: list[tuple[str, Any]] = []

    def transmit() -> None:
        auth = backend._auth()
        data = b"".join(encode(message, auth) for _, message in chunk)
        backend._call(lambda: backend._socket().sendall(data), f"lookup {chunk[0][0]}")
        sent.append([(mac, message.tid) for mac, message in chunk])
        chunk.clear()

    def collect(flight: list[tuple[str, int]]) -> None:
        for mac, tid in flight:
            reply = backend._call(partial(backend._reply, tid), f"lookup {mac}")
            found[mac] = host_from_reply(mac, reply)

    try:
        for mac in dict.fromkeys(macs):
            chunk.append((mac, lookup_message(mac, next(backend._tids))))
            if len(chunk) >= WINDOW:
                transmit()
                if len(sent) > 1:
                    collect(sent.popleft())
        if chunk:
            transmit()
        while sent:
            collect(sent.popleft())
    finally:
        backend._end_batch()
    return found
