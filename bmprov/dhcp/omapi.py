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
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pypureomapi as omapi

from bmprov.dhcp import AddResult, DhcpBackend, DhcpSettings, Reservation, ReservationConflict
from bmprov.errors import BmprovError, ConfigError, DriverError

DEFAULT_PORT = 7911
DEFAULT_TIMEOUT = 5.0
PROBE_MAC = "02:00:00:00:00:00"  # locally administered; never a real NIC's
_LOST = ("connection closed", "not connected")  # pypureomapi's words for a dropped socket
WINDOW = 32  # hosts in flight on one connection (dhcpd answers in order)
T = TypeVar("T")


class Secret:
    """A secret that never appears in reprs, logs or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        """The secret itself (only for the authenticator)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def read_key(section: dict[str, Any], resolve: Callable[[str], os.PathLike[str]]) -> Secret | None:
    """The OMAPI secret from ``key_file`` or ``key_env`` (the file wins)."""
    if section.get("key_file"):
        path = resolve(str(section["key_file"]))
        try:
            text = open(path, encoding="utf-8").read()  # noqa: PTH123, SIM115
        except OSError as exc:
            raise ConfigError(f"dhcp.omapi.key_file {path}: {exc.strerror}") from None
    elif section.get("key_env"):
        name = str(section["key_env"])
        if name not in os.environ:
            raise ConfigError(f"dhcp.omapi.key_env: ${name} is not set")
        text = os.environ[name]
    else:
        return None
    secret = text.strip().encode()
    try:
        binascii.a2b_base64(secret)
    except binascii.Error:
        raise ConfigError("the OMAPI key is not base64 (copy the secret from dhcpd.conf)") from None
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
        self._broken: DriverError | None = None

    @property
    def where(self) -> str:
        """This server in messages."""
        return f"dhcpd OMAPI {self.host}:{self.port}"

    def open(self) -> None:
        """Connect, authenticate and probe (one request) within the timeout."""
        user, key = (self.key_name.encode(), self._key.reveal()) if self._key else (None, None)
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
            return fn()
        except omapi.OmapiErrorNotFound as exc:
            raise DriverError(f"{self.where}: not found") from exc
        except (omapi.OmapiError, ValueError) as exc:
            error = self._translate(exc, doing)
            if "rejected the OMAPI key" in str(error):
                self._broken = error
            raise error from exc
        except Exception as exc:  # socket errors: the connection is gone
            self._broken = self._translate(exc, doing)
            raise self._broken from exc

    def _add(self, res: Reservation) -> bool:
        return self._finish(self._send(res))

    def add_many(self, items: Iterable[Reservation]) -> Iterator[AddResult]:
        """Pipelined adds: up to :data:`WINDOW` hosts in flight on the one connection.

        Each host is sent as ``add`` immediately followed by its read-back lookup; dhcpd
        answers in order, so the lookup also tells "already there" from "conflict" without
        another round trip. Values are validated and checked before anything is sent.
        """
        window: deque[_InFlight] = deque()
        for item in items:
            try:
                res = item.checked()
                self._precheck(res)
                window.append(self._send(res))
            except BmprovError as exc:
                window.append(_InFlight(item, error=exc))
            while len(window) > WINDOW:
                yield self._settle(window.popleft())
        while window:
            yield self._settle(window.popleft())

    def _send(self, res: Reservation) -> _InFlight:
        add, look = _host_message(res), _lookup_message(res.mac)
        self._call(lambda: self._conn.send_message(add), f"add {res.mac}")
        self._call(lambda: self._conn.send_message(look), f"lookup {res.mac}")
        fresh = res.ip not in self._owners
        self._owners[res.ip] = res.mac  # later hosts in the window must not reuse it
        return _InFlight(res, add, look, fresh)

    def _settle(self, flight: _InFlight) -> AddResult:
        try:
            if flight.error is not None:
                raise flight.error
            self._finish(flight)
        except BmprovError as exc:
            if flight.fresh and self._owners.get(flight.res.ip) == flight.res.mac:
                del self._owners[flight.res.ip]
            return flight.res, exc
        return flight.res, None

    def _finish(self, flight: _InFlight) -> bool:
        """Read the add's and the lookup's replies; True if dhcpd created the host."""
        res = flight.res
        added = self._call(lambda: self._conn.receive_response(flight.add), f"add {res.mac}")
        found = self._call(lambda: self._conn.receive_response(flight.lookup), f"lookup {res.mac}")
        have = _host_from_reply(res.mac, found)
        if added.opcode != omapi.OMAPI_OP_UPDATE:
            if have is not None and have.ip == res.ip:
                return False
            raise self._refusal(res, have, added)
        if have is None or have.ip != res.ip:
            raise DriverError(f"{self.where}: read-back of {res.mac} shows {have and have.ip}")
        return True

    def _refusal(self, res: Reservation, have: Reservation | None, reply: Any) -> DriverError:
        if have is not None:
            return ReservationConflict(
                f"{self.where}: MAC {res.mac} is already reserved for {have.ip or 'no address'} "
                f"(host {have.name}), bmprov wants {res.ip}; not overwritten",
                "remove the old host object first",
            )
        text = dict(reply.message).get(b"message", b"").decode("utf-8", "replace")
        if res.name:
            holder = self._lookup_name(res.name)
            if holder is not None:
                return ReservationConflict(
                    f"{self.where}: host name {res.name!r} is already used by MAC {holder}"
                )
        return DriverError(f"{self.where} refused host {res.mac}: {text or 'add failed'}")

    def _lookup_name(self, name: str) -> str | None:
        try:
            found = self._call(lambda: self._conn.lookup_host(name))
        except DriverError as exc:
            if isinstance(exc.__cause__, omapi.OmapiErrorNotFound):
                return None
            raise
        return str(found.get("mac"))

    def lookup(self, mac: str) -> Reservation | None:
        """The host object for ``mac`` (address and name; dhcpd never returns statements)."""
        message = _lookup_message(mac)
        reply = self._call(lambda: self._conn.query_server(message), f"lookup {mac}")
        return _host_from_reply(mac, reply)

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
        """OMAPI cannot enumerate hosts: look up each of ``macs``."""
        found = [self.lookup(mac) for mac in macs]
        return [r for r in found if r is not None]


@dataclass
class _InFlight:
    """A host whose add and lookup were sent and whose replies are still to be read."""

    res: Reservation
    add: Any = None
    lookup: Any = None
    fresh: bool = False  # its IP was claimed by this send (undone if it fails)
    error: BmprovError | None = None


def _lookup_message(mac: str) -> Any:
    msg = omapi.OmapiMessage.open(b"host")
    msg.obj.append((b"hardware-address", omapi.pack_mac(mac)))
    msg.obj.append((b"hardware-type", struct.pack("!I", 1)))
    return msg


def _host_from_reply(mac: str, reply: Any) -> Reservation | None:
    """The host in a lookup reply (None: dhcpd has no host with this MAC)."""
    if reply.opcode != omapi.OMAPI_OP_UPDATE:
        return None
    obj = dict(reply.obj)
    raw_ip = obj.get(b"ip-address")
    ip = omapi.unpack_ip(raw_ip) if raw_ip and len(raw_ip) == 4 else ""
    return Reservation(mac=mac, ip=ip, name=obj.get(b"name", b"").decode("utf-8", "replace"))


def _host_message(res: Reservation) -> Any:
    """``open host`` with create + exclusive: name, MAC, IP and per-host PXE statements."""
    msg = omapi.OmapiMessage.open(b"host")
    msg.message.append((b"create", struct.pack("!I", 1)))
    msg.message.append((b"exclusive", struct.pack("!I", 1)))
    if res.name:
        msg.obj.append((b"name", res.name.encode()))
    msg.obj.append((b"hardware-address", omapi.pack_mac(res.mac)))
    msg.obj.append((b"hardware-type", struct.pack("!I", 1)))
    msg.obj.append((b"ip-address", omapi.pack_ip(res.ip)))
    statements = host_statements(res)
    if statements:
        msg.obj.append((b"statements", statements.encode()))
    return msg


def host_statements(res: Reservation) -> str:
    """dhcpd statements for a validated reservation (values are allow-listed, never quoted)."""
    out = []
    if res.hostname:
        out.append(f'supersede host-name "{res.hostname}";')
    if res.filename:
        out.append(f'filename "{res.filename}";')
    if res.next_server:
        out.append(f"next-server {res.next_server};")
    if res.router:
        out.append(f"supersede routers {res.router};")
    if res.dns:
        out.append(f"supersede domain-name-servers {', '.join(res.dns)};")
    return " ".join(out)
