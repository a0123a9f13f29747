"""bmprov's OMAPI wire encoding is byte for byte what pypureomapi sends and parses."""

from __future__ import annotations

import pypureomapi as omapi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmprov.dhcp import Reservation
from bmprov.dhcp.omapi_wire import decode, encode, host_message, lookup_message

SECRET = b"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"  # base64


@pytest.fixture
def auth() -> omapi.OmapiHMACMD5Authenticator:
    authenticator = omapi.OmapiHMACMD5Authenticator(b"omapi_key", SECRET)
    authenticator.authid = 7
    return authenticator


def messages() -> list[omapi.OmapiMessage]:
    res = Reservation("02:31:00:00:00:05", "10.231.70.5", "SN5", "sn5", "pxelinux.0", "10.0.0.1")
    return [host_message(res), lookup_message(res.mac), omapi.OmapiMessage.open(b"host")]


def test_encode_matches_pypureomapi(auth) -> None:
    for signer in (auth, omapi.OmapiNullAuthenticator()):  # a key, and a keyless server
        for message in messages():
            ours = encode(message, signer)
            message.sign(signer)
            assert ours == message.as_string()


def test_decode_reads_back_and_verifies(auth) -> None:
    sent = messages()
    wire = b"".join(encode(m, auth) for m in sent)
    pos, seen = 0, []
    while pos < len(wire):
        assert decode(wire[pos : pos + 10]) is None  # incomplete: wait for more bytes
        parsed = decode(wire[pos:])
        assert parsed is not None
        message, signed, size = parsed
        assert auth.sign(signed) == message.signature
        seen.append(message)
        pos += size
    assert [(m.tid, m.obj, m.message) for m in seen] == [(m.tid, m.obj, m.message) for m in sent]
    assert seen[0].obj[0] == (b"name", b"SN5")
    assert all(m.authid == 7 for m in seen)


class _Conn:
    """The parts of a pypureomapi connection the reader uses, over a socketpair."""

    def __init__(self, sock, auth) -> None:
        self.transport = type("T", (), {"connection": sock})()
        self.protocol = omapi.OmapiProtocol()
        self.protocol.authenticators[auth.authid] = auth
        self.protocol.defauth = auth.authid
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.transport.connection = None


def test_reader_reassembles_and_refuses_bad_signatures(auth) -> None:
    import socket

    from bmprov.dhcp.omapi_wire import Reader

    ours, theirs = socket.socketpair()
    try:
        sent = messages()
        wire = b"".join(encode(m, auth) for m in sent)
        theirs.sendall(wire[:7])  # a message split over several reads
        conn = _Conn(ours, auth)
        reader = Reader(conn)
        theirs.sendall(wire[7:])
        assert [reader.next().tid for _ in sent] == [m.tid for m in sent]
        bad = bytearray(encode(sent[0], auth))
        bad[-1] ^= 1
        theirs.sendall(bytes(bad))
        with pytest.raises(omapi.OmapiError, match="bad omapi message signature"):
            reader.next()
        assert conn.closed
    finally:
        ours.close()
        theirs.close()


_MACS = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
_IPS = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=40)


@settings(max_examples=200, deadline=None)
@given(mac=_MACS, ip=_IPS, name=_NAMES, tid=st.integers(0, 2**31 - 1), keyed=st.booleans())
def test_encode_matches_pypureomapi_for_any_host(mac, ip, name, tid, keyed) -> None:
    """The speed copy against its reference: whatever host bmprov sends, the bytes are
    pypureomapi's, and the reader decodes them back to the same message."""
    signer: omapi.OmapiAuthenticatorBase = omapi.OmapiNullAuthenticator()
    if keyed:
        signer = omapi.OmapiHMACMD5Authenticator(b"omapi_key", SECRET)
        signer.authid = 7  # what dhcpd assigns when the key is opened
    res = Reservation(mac, ip, name, name or None, "pxelinux.0" if keyed else None, ip)
    for message in (host_message(res, tid), lookup_message(mac, tid)):
        ours = encode(message, signer)
        message.sign(signer)
        assert ours == message.as_string()
        parsed = decode(ours)
        assert parsed is not None
        back, _, size = parsed
        assert size == len(ours)
        assert (back.tid, back.obj, back.message) == (message.tid, message.obj, message.message)
