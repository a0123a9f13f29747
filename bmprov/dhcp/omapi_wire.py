"""OMAPI on the wire: the messages bmprov sends to ISC dhcpd, and a fast signed reader.

pypureomapi serialises each message three times and parses replies through chains of
generators; with its own framing, networking 10,000 hosts spent 3.3 s of CPU in the main process,
with this one 1.4 s (commit 8b9be3e), so each message is encoded here once.
These functions are speed copies of pypureomapi's: ``tests/test_omapi_wire.py`` holds them to it
byte for byte (property test), and ``pyproject.toml`` pins the pypureomapi range they were
checked against. :class:`Reader` reaches into pypureomapi's connection (its socket, input
buffer and authenticators); that is the only private state used.
"""

from __future__ import annotations

import hmac
import struct
from typing import Any

import pypureomapi as omapi

from bmprov.dhcp import Reservation

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!L")
_HEAD = struct.Struct("!6L")  # authid, authlen, opcode, handle, tid, rid
MAX_MESSAGE = 65536  # pypureomapi's limit, both ways


def encode(message: Any, auth: Any) -> bytes:
    """``message`` signed by ``auth``, as bytes on the wire: what pypureomapi's ``sign`` and
    ``send_message`` produce, built once instead of serialised three times."""
    signed = b"".join(
        (
            _U32.pack(auth.authlen),
            struct.pack("!4L", message.opcode, message.handle, message.tid, message.rid),
            _bindict(message.message),
            _bindict(message.obj),
        )
    )
    if len(signed) + 4 + auth.authlen > MAX_MESSAGE:
        raise omapi.OmapiSizeLimitError
    signature: bytes = auth.sign(signed)
    return _U32.pack(auth.authid) + signed + signature


def _bindict(items: list[tuple[bytes, bytes]]) -> bytes:
    parts: list[bytes] = []
    for key, value in items:
        parts += (_U16.pack(len(key)), key, _U32.pack(len(value)), value)
    parts.append(b"\0\0")
    return b"".join(parts)


class Reader:
    """Signed OMAPI messages read straight off pypureomapi's socket (its parser is a chain
    of generators that costs more than the round trip)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        inbuffer = conn.protocol.inbuffer  # empty between requests; taken over if not
        self.buf = bytearray(inbuffer.buff)
        inbuffer.buff = b""
        inbuffer.resetsize()
        conn.protocol.current_parser = None

    def release(self) -> None:
        """Give unread bytes back to pypureomapi's parser."""
        if self.buf and self.conn.transport.connection is not None:
            self.conn.protocol.data_received(bytes(self.buf))
        self.buf.clear()

    def next(self) -> Any:
        """The next whole message, its signature verified."""
        while True:
            parsed = decode(self.buf)
            if parsed is not None:
                message, signed, size = parsed
                del self.buf[:size]
                self._verify(message, signed)
                return message
            if len(self.buf) > MAX_MESSAGE:
                self.conn.close()
                raise omapi.OmapiSizeLimitError
            sock = self.conn.transport.connection
            if sock is None:
                raise omapi.OmapiError("not connected")
            data = sock.recv(65536)
            if not data:
                self.conn.close()
                raise omapi.OmapiError("connection closed")
            self.buf += data

    def _verify(self, message: Any, signed: bytes) -> None:
        protocol = self.conn.protocol
        auth = protocol.authenticators.get(message.authid)
        if auth is None or not hmac.compare_digest(auth.sign(signed), message.signature):
            self.conn.close()
            raise omapi.OmapiError("bad omapi message signature")
        if message.authid != protocol.defauth:
            raise omapi.OmapiError("received message is signed with wrong authenticator")


def decode(buf: bytes | bytearray) -> tuple[Any, bytes, int] | None:
    """The first message in ``buf``: (message, the bytes its signature covers, its size), or
    None if ``buf`` does not hold all of it yet."""
    if len(buf) < _HEAD.size:
        return None
    authid, authlen, opcode, handle, tid, rid = _HEAD.unpack_from(buf)
    pos = _HEAD.size
    maps: list[list[tuple[bytes, bytes]]] = []
    for _ in range(2):
        items: list[tuple[bytes, bytes]] = []
        while True:
            if len(buf) < pos + 2:
                return None
            (klen,) = _U16.unpack_from(buf, pos)
            pos += 2
            if not klen:
                break
            if len(buf) < pos + klen + 4:
                return None
            key = bytes(buf[pos : pos + klen])
            (vlen,) = _U32.unpack_from(buf, pos + klen)
            pos += klen + 4
            if len(buf) < pos + vlen:
                return None
            items.append((key, bytes(buf[pos : pos + vlen])))
            pos += vlen
        maps.append(items)
    if len(buf) < pos + authlen:
        return None
    signature = bytes(buf[pos : pos + authlen])
    message = omapi.OmapiMessage(authid, opcode, handle, tid, rid, maps[0], maps[1], signature)
    return message, bytes(buf[4:pos]), pos + authlen


def lookup_message(mac: str, tid: int = -1) -> Any:
    """What pypureomapi's ``lookup_host_host(mac)`` sends (``tid`` -1: a random one)."""
    msg = omapi.OmapiMessage(opcode=omapi.OMAPI_OP_OPEN, message=[(b"type", b"host")], tid=tid)
    msg.obj.append((b"hardware-address", omapi.pack_mac(mac)))
    msg.obj.append((b"hardware-type", struct.pack("!I", 1)))
    return msg


def name_message(name: str) -> Any:
    msg = omapi.OmapiMessage.open(b"host")
    msg.obj.append((b"name", name.encode()))
    return msg


def mac_from_reply(reply: Any) -> str | None:
    """The MAC of the host in a lookup reply (None: no such host)."""
    if reply is None or reply.opcode != omapi.OMAPI_OP_UPDATE:
        return None
    raw = dict(reply.obj).get(b"hardware-address")
    return omapi.unpack_mac(raw) if raw else None


def host_from_reply(mac: str, reply: Any) -> Reservation | None:
    """The host in a lookup reply (None: dhcpd has no host with this MAC)."""
    if reply is None or reply.opcode != omapi.OMAPI_OP_UPDATE:
        return None
    obj = dict(reply.obj)
    raw_ip = obj.get(b"ip-address")
    ip = omapi.unpack_ip(raw_ip) if raw_ip and len(raw_ip) == 4 else ""
    return Reservation(mac=mac, ip=ip, name=obj.get(b"name", b"").decode("utf-8", "replace"))


def host_message(res: Reservation, tid: int = -1) -> Any:
    """``open host`` with create + exclusive: name, MAC, IP and per-host PXE statements.

    ``tid`` -1 draws a random transaction id (pypureomapi's way: one ``getrandom`` call each);
    a batch numbers its messages from one random start instead.
    """
    msg = omapi.OmapiMessage(opcode=omapi.OMAPI_OP_OPEN, message=[(b"type", b"host")], tid=tid)
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
