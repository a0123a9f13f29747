"""The ``omapi`` backend: ISC dhcpd host objects over OMAPI, live, no restart.

One authenticated connection per batch. The connection is probed right after connecting (a
wrong secret is only noticed by dhcpd on the first signed request). Hosts are created with
``create`` + ``exclusive``; if dhcpd refuses, a lookup tells "already there with this address"
(success) from "there with another address" (a conflict, never overwritten). Every write is
read back with a lookup. A wrong key, a closed port and a silent server each get their own
message, and after a connection-level failure every further call fails at once with the same
message instead of waiting out the timeout again.

The secret comes from ``[dhcp.omapi] key_file`` or ``key_env`` (never from bmprov.toml itself,
which is often kept in git and whose contents appear in reprs); it is held in a :class:`Secret`
that never prints.
"""

from __future__ import annotations

import binascii
import contextlib
import itertools
import logging
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pypureomapi as omapi

from bmprov.dhcp import AddResult, DhcpBackend, DhcpSettings, Reservation, ReservationConflict
from bmprov.dhcp.omapi_wire import (
    Reader,
    encode,
    host_from_reply,
    host_message,
    lookup_message,
    mac_from_reply,
    name_message,
)
from bmprov.errors import BmprovError, ConfigError, DriverError
from bmprov.secret import Secret

log = logging.getLogger(__name__)

DEFAULT_PORT = 7911
DEFAULT_TIMEOUT = 5.0
PROBE_MAC = "02:00:00:00:00:00"  # locally administered; never a real NIC's
_LOST = ("connection closed", "not connected")  # pypureomapi's words for a dropped socket
WINDOW = 32  # hosts per chunk; two chunks in flight on one connection (dhcpd answers in order)
T = TypeVar("T")


def read_key(
    section: dict[str, Any], resolve: Callable[[str], os.PathLike[str]]
) -> Secret[bytes] | None:
    """The OMAPI secret from ``key_file`` or ``key_env`` (the file wins).

    :raises ConfigError: naming the key (never its value): unreadable, empty or not base64.
    """
    if section.get("key_file"):
        path = resolve(str(section["key_file"]))
        where = f"dhcp.omapi.key_file {path}"
        try:
            with open(path, "rb") as fh:  # noqa: PTH123
                secret = fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror}") from None
    elif section.get("key_env"):
        name = str(section["key_env"])
        where = f"dhcp.omapi.key_env ${name}"
        if name not in os.environ:
            raise ConfigError(f"{where} is not set")
        secret = os.environ[name].strip().encode()
    else:
        return None
    if not secret:
        raise ConfigError(f"{where} is empty (copy the secret from dhcpd.conf)")
    try:
        binascii.a2b_base64(secret, strict_mode=True)
    except binascii.Error:
        raise ConfigError(f"{where}: not base64 (copy the secret from dhcpd.conf)") from None
    return Secret(secret)


class OmapiBackend(DhcpBackend):
    """Host reservations in a running ISC dhcpd."""

    kind = "omapi"

    def __init__(self, settings: DhcpSettings) -> None:
        super().__init__(settings)
        sub = settings.sub("omapi")
        self.host = str(sub.get("host", "127.0.0.1"))
        self.port = int(sub.get("port", DEFAULT_PORT))
        self.key_name = str(sub.get("key_name", "omapi_key"))
        self.timeout = float(sub.get("timeout", DEFAULT_TIMEOUT))
        self._key = read_key(sub, settings.config.resolve)
        self._conn: Any = None
        self._reader: Reader | None = None
        self._tids = itertools.count(secrets.randbelow(1 << 31))  # unique per connection
        self._broken: DriverError | None = None

    @property
    def where(self) -> str:
        """This server in messages."""
        return f"dhcpd OMAPI {self.host}:{self.port}"

    def open(self) -> None:
        """Connect, authenticate and probe (one request) within the timeout."""
        user, key = (self.key_name.encode(), self._key.reveal()) if self._key else (None, None)
        self._broken, self._reader = None, None
        try:
            self._conn = omapi.Omapi(self.host, self.port, user, key, timeout=self.timeout)
        except Exception as exc:  # pypureomapi raises several unrelated types
            raise self._translate(exc, "connect") from None
        try:
            self.lookup(PROBE_MAC)  # a wrong secret only shows on the first signed request
        except DriverError:
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    def _translate(self, exc: BaseException, doing: str) -> DriverError:
        """One clear message per failure kind: timeout, refused, wrong key, other."""
        if isinstance(exc, DriverError):
            return exc
        text = str(exc)
        if isinstance(exc, TimeoutError):
            message = f"{self.where} did not answer within {self.timeout:g} s ({doing})"
        elif isinstance(exc, ConnectionRefusedError):
            message = f"{self.where} is unreachable: connection refused (is dhcpd up?)"
        elif "wrong authenticator" in text or "non-update response for open" in text:
            message = (
                f"{self.where} rejected the OMAPI key {self.key_name!r} (wrong key name or secret)"
            )
        elif isinstance(exc, BrokenPipeError | ConnectionResetError) or text in _LOST:
            message = f"{self.where} closed the connection (did dhcpd stop or restart?)"
        elif isinstance(exc, OSError):
            message = f"{self.where} is unreachable: {exc.strerror or exc}"
        elif isinstance(exc, omapi.OmapiError):
            message = f"{self.where}: {doing} failed: {text or type(exc).__name__}"
        else:
            message = f"{self.where}: {doing} failed: {type(exc).__name__}"
        return DriverError(message)

    def _call(self, fn: Callable[[], T], doing: str = "request") -> T:
        """Run one OMAPI exchange; NotFound passes through as the error's cause."""
        if self._broken is not None:
            raise self._broken
        if self._conn is None:
            raise DriverError(f"{self.where}: not connected")
        try:
            answer = fn()
        except omapi.OmapiErrorNotFound as exc:
            log.debug("%s: %s: not found", self.where, doing)
            raise DriverError(f"{self.where}: not found") from exc
        except (omapi.OmapiError, ValueError) as exc:
            error = self._translate(exc, doing)
            closed = self._conn is not None and self._conn.transport.connection is None
            if closed or "rejected the OMAPI key" in str(error):
                self._broken = error  # every further call fails at once, the same way
            raise error from exc
        except Exception as exc:  # socket errors: the connection is gone
            self._broken = self._translate(exc, doing)
            raise self._broken from exc
        log.debug("%s: %s: done", self.where, doing)  # never the key: only what was asked
        return answer

    def _add(self, res: Reservation) -> bool:
        flight = self._flight(res)
        try:
            self._run([flight])
        finally:
            self._end_batch()
        if flight.error is not None:
            raise flight.error
        return flight.created

    def add_many(self, items: Iterable[Reservation]) -> Iterator[AddResult]:
        """Pipelined adds: hosts go out in chunks of :data:`WINDOW`, one ``sendall`` each.

        While dhcpd works through one chunk, the next is encoded and sent; then the older
        chunk's replies are read (dhcpd answers in order). Every add travels with its read-back:
        the same lookup as pypureomapi's ``lookup_host_host(mac)``, sent right behind it, whose
        reply must show the address bmprov asked for. A refused add is explained once nothing
        else is in flight: a lookup tells "already there with this address" (success) from a
        conflict. Values are validated and checked before anything is sent.
        """
        try:
            yield from self._add_many(items)
        finally:
            self._end_batch()

    def _add_many(self, items: Iterable[Reservation]) -> Iterator[AddResult]:
        flights: deque[_InFlight] = deque()  # input order, yielded once settled
        chunk: list[_InFlight] = []
        sent: deque[list[_InFlight]] = deque()  # chunks on the wire, oldest first
        for item in items:
            flight = self._prepare(item)
            flights.append(flight)
            if not flight.done:
                chunk.append(flight)
            if len(chunk) >= WINDOW:
                self._transmit(chunk)
                sent.append(chunk)
                chunk = []
                if len(sent) > 1:
                    self._collect(sent.popleft(), sent)
            while flights and flights[0].done:
                yield _result(flights.popleft())
        self._run(chunk, sent)
        while flights:
            yield _result(flights.popleft())

    def _prepare(self, item: Reservation) -> _InFlight:
        """Check one reservation and encode its add; a refused one is settled at once."""
        try:
            res = item.checked()
            self._precheck(res)
            return self._flight(res)
        except BmprovError as exc:
            return _InFlight(item, error=exc, done=True)

    def _flight(self, res: Reservation) -> _InFlight:
        if self._broken is not None:
            raise self._broken
        message = host_message(res, next(self._tids))
        check = lookup_message(res.mac, next(self._tids))  # lookup_host_host's own message
        auth = self._auth()
        wire = self._call(lambda: encode(message, auth) + encode(check, auth), f"add {res.mac}")
        fresh = res.ip not in self._owners
        self._owners[res.ip] = res.mac  # later hosts in the window must not reuse it
        return _InFlight(res, message.tid, check.tid, wire, fresh)

    def _run(self, chunk: list[_InFlight], sent: deque[list[_InFlight]] | None = None) -> None:
        """Send ``chunk`` and settle it and everything still in flight."""
        sent = sent if sent is not None else deque()
        if chunk:
            self._transmit(chunk)
            sent.append(chunk)
        while sent:
            self._collect(sent.popleft(), sent)

    def _transmit(self, chunk: list[_InFlight]) -> None:
        """One ``sendall`` for a whole chunk of encoded messages."""
        data = b"".join(f.wire for f in chunk)
        try:
            self._call(lambda: self._socket().sendall(data), f"add {chunk[0].res.mac}")
        except BmprovError as exc:
            for flight in chunk:
                self._fail(flight, exc)

    def _collect(self, chunk: list[_InFlight], sent: deque[list[_InFlight]]) -> None:
        """Read ``chunk``'s replies; refused adds are explained once the wire is quiet."""
        refused: list[tuple[_InFlight, Any]] = []
        for flight in chunk:
            if flight.done:
                continue
            res = flight.res
            try:
                reply = self._call(partial(self._reply, flight.tid), f"add {res.mac}")
                check = self._call(partial(self._reply, flight.check_tid), f"read back {res.mac}")
            except BmprovError as exc:
                self._fail(flight, exc)
                continue
            if reply.opcode != omapi.OMAPI_OP_UPDATE:
                refused.append((flight, reply))
                continue
            have = host_from_reply(res.mac, check)
            if have is None or have.ip != res.ip:
                shows = have and have.ip
                self._fail(
                    flight, DriverError(f"{self.where}: read-back of {res.mac} shows {shows}")
                )
            else:
                flight.created = flight.done = True
        if refused:
            while sent:  # replies to newer chunks come first
                self._collect(sent.popleft(), sent)
            self._explain(refused)

    def _explain(self, refused: list[tuple[_InFlight, Any]]) -> None:
        """Look up each refused host (pipelined): there already with its address, or why not."""
        found = self._exchange([(f, lookup_message(f.res.mac)) for f, _ in refused], "lookup")
        unnamed: list[tuple[_InFlight, Any]] = []
        for (flight, reply), have in zip(refused, found, strict=True):
            if flight.done:
                continue
            res = flight.res
            have_host = host_from_reply(res.mac, have)
            if have_host is not None and have_host.ip == res.ip:
                flight.done = True  # already reserved exactly so: nothing changed
            elif have_host is not None:
                self._fail(flight, self._conflict(res, have_host))
            elif res.name:
                unnamed.append((flight, reply))
            else:
                self._fail(flight, self._refused(res, reply))
        if unnamed:
            holders = self._exchange([(f, name_message(f.res.name)) for f, _ in unnamed], "lookup")
            for (flight, reply), holder in zip(unnamed, holders, strict=True):
                if flight.done:
                    continue
                mac = mac_from_reply(holder)
                if mac is None:
                    self._fail(flight, self._refused(flight.res, reply))
                else:
                    message = (
                        f"{self.where}: host name {flight.res.name!r} is already used by MAC {mac}"
                    )
                    self._fail(flight, ReservationConflict(message))

    def _exchange(self, requests: list[tuple[_InFlight, Any]], doing: str) -> list[Any]:
        """Send every request in one go and read the replies (None for a flight that failed)."""
        auth = self._auth()
        replies: list[Any] = []
        try:
            data = b"".join(encode(message, auth) for _, message in requests)
            self._call(lambda: self._socket().sendall(data), doing)
        except BmprovError as exc:
            for flight, _ in requests:
                self._fail(flight, exc)
            return [None] * len(requests)
        for flight, message in requests:
            try:
                replies.append(self._call(partial(self._reply, message.tid), doing))
            except BmprovError as exc:
                self._fail(flight, exc)
                replies.append(None)
        return replies

    def _fail(self, flight: _InFlight, error: BmprovError) -> None:
        """Settle ``flight`` as failed; its address is free again for later hosts."""
        if flight.done:
            return
        flight.error, flight.done = error, True
        ip, mac = flight.res.ip, flight.res.mac
        if flight.fresh and self._owners.get(ip) == mac:
            del self._owners[ip]

    def _conflict(self, res: Reservation, have: Reservation) -> ReservationConflict:
        return ReservationConflict(
            f"{self.where}: MAC {res.mac} is already reserved for {have.ip or 'no address'} "
            f"(host {have.name}), bmprov wants {res.ip}; not overwritten",
            "remove the old host object first",
        )

    def _refused(self, res: Reservation, reply: Any) -> DriverError:
        text = dict(reply.message).get(b"message", b"").decode("utf-8", "replace")
        return DriverError(f"{self.where} refused host {res.mac}: {text or 'add failed'}")

    # -- the wire, for pipelined batches (pypureomapi does the handshake and everything else)

    def _auth(self) -> Any:
        protocol = self._conn.protocol
        return protocol.authenticators[protocol.defauth]

    def _socket(self) -> Any:
        sock = self._conn.transport.connection
        if sock is None:
            raise omapi.OmapiError("not connected")
        return sock

    def _reply(self, tid: int) -> Any:
        """The next reply on the connection, checked: signature, authenticator, request id."""
        if self._reader is None:
            self._reader = Reader(self._conn)
        reply = self._reader.next()
        if reply.rid != tid:
            self._conn.close()
            raise omapi.OmapiError("received message is not the desired response")
        return reply

    def _end_batch(self) -> None:
        """Hand whatever the batch's reader holds back to pypureomapi (nothing, normally)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.release()

    def lookup(self, mac: str) -> Reservation | None:
        """The host object for ``mac`` (address and name; dhcpd never returns statements)."""
        message = lookup_message(mac)
        reply = self._call(lambda: self._conn.query_server(message), f"lookup {mac}")
        return host_from_reply(mac, reply)

    def remove(self, mac: str) -> bool:
        """Delete the host object for ``mac``."""
        try:
            self._call(lambda: self._conn.del_host(mac), f"delete {mac}")
        except DriverError as exc:
            if isinstance(exc.__cause__, omapi.OmapiErrorNotFound):
                return False
            raise
        return True

    def list(self, macs: Iterable[str] = ()) -> list[Reservation]:
        """OMAPI cannot enumerate hosts: look up each of ``macs`` (pipelined)."""
        from bmprov.dhcp.omapi_lookup import lookup_many  # noqa: PLC0415

        return [r for r in lookup_many(self, macs).values() if r is not None]


@dataclass
class _InFlight:
    """A host whose add is encoded (and maybe sent) and whose outcome is not known yet."""

    res: Reservation
    tid: int = 0
    check_tid: int = 0  # the read-back lookup sent right behind the add
    wire: bytes = b""
    fresh: bool = False  # its IP was claimed by this add (undone if it fails)
    error: BmprovError | None = None
    done: bool = False
    created: bool = False  # dhcpd made the host (False: it was already there)


def _result(flight: _InFlight) -> AddResult:
    return flight.res, flight.error
