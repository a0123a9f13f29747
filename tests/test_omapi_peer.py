"""The OMAPI backend against a real dhcpd: idempotence, conflicts, refusals and failures."""

from __future__ import annotations

import base64
import os
import socket
import time

import pytest

from bmprov.config import Config
from bmprov.dhcp import DhcpSettings, Reservation, ReservationConflict, ReservationRefused
from bmprov.dhcp.omapi import OmapiBackend
from bmprov.errors import DriverError
from tests import peers

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(not peers.can_run_peers(), reason="needs root, iproute2 and dhcpd"),
]
NET = 21


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("omapi")
    with peers.topology("02:31:00:00:01:01", net=NET) as topo:
        secret = peers.new_secret()
        peers.start_dhcpd(topo, d, secret)
        yield topo, secret


@pytest.fixture(autouse=True)
def _no_env_leak():
    yield
    os.environ.pop("BMPA_OMAPI_KEY", None)


def settings(secret: str, port: int = 7911, timeout: float = 2) -> DhcpSettings:
    os.environ["BMPA_OMAPI_KEY"] = secret
    raw = {
        "network": {"subnet": f"10.231.{NET}.0/24", "server_address": f"10.231.{NET}.1"},
        "dhcp": {
            "backend": "omapi",
            "omapi": {"key_env": "BMPA_OMAPI_KEY", "port": port, "timeout": timeout},
        },
    }
    return DhcpSettings.from_config(Config(None, raw))


def connect(topo, s: DhcpSettings) -> OmapiBackend:
    backend = OmapiBackend(s)
    with peers.netns(topo.srv):
        backend.open()
    return backend


def res(mac: str, ip: str, name: str = "") -> Reservation:
    return Reservation(mac, ip, name, "n1", "pxelinux.0", f"10.231.{NET}.1")


def test_add_is_idempotent_and_read_back(server) -> None:
    topo, secret = server
    backend = connect(topo, settings(secret))
    try:
        assert backend.add(res("02:31:00:00:01:10", f"10.231.{NET}.10", "SN10")) is True
        assert backend.add(res("02:31:00:00:01:10", f"10.231.{NET}.10", "SN10")) is False
        held = backend.lookup("02:31:00:00:01:10")
        assert (held.ip, held.name) == (f"10.231.{NET}.10", "SN10")
        assert backend.remove("02:31:00:00:01:10") is True
        assert backend.remove("02:31:00:00:01:10") is False
        assert backend.lookup("02:31:00:00:01:10") is None
    finally:
        backend.close()


def test_debug_log_shows_each_exchange_never_the_key(server, caplog) -> None:
    topo, secret = server
    caplog.set_level("DEBUG", logger="bmprov")
    backend = connect(topo, settings(secret))
    try:
        backend.add(res("02:31:00:00:01:18", f"10.231.{NET}.18", "SN18"))
        backend.add(res("02:31:00:00:01:18", f"10.231.{NET}.18", "SN18"))  # refused, looked up
        backend.remove("02:31:00:00:01:18")
    finally:
        backend.close()
    text = caplog.text
    assert "dhcpd OMAPI" in text and "add 02:31:00:00:01:18: done" in text
    assert "lookup" in text
    assert secret not in text
    raw = base64.b64decode(secret)
    assert raw.hex() not in text and repr(raw) not in text


def test_same_mac_other_ip_is_a_conflict_never_overwritten(server) -> None:
    topo, secret = server
    backend = connect(topo, settings(secret))
    try:
        backend.add(res("02:31:00:00:01:11", f"10.231.{NET}.11", "SN11"))
        with pytest.raises(ReservationConflict, match=r"already reserved for 10\.231\.21\.11"):
            backend.add(res("02:31:00:00:01:11", f"10.231.{NET}.12", "SN11"))
        assert backend.lookup("02:31:00:00:01:11").ip == f"10.231.{NET}.11"
        with pytest.raises(ReservationConflict, match="host name 'SN11' is already used"):
            backend.add(res("02:31:00:00:01:19", f"10.231.{NET}.19", "SN11"))
    finally:
        backend.close()


def test_duplicate_ip_and_outside_subnet_refused_before_sending(server) -> None:
    topo, secret = server
    backend = connect(topo, settings(secret))
    try:
        backend.add(res("02:31:00:00:01:13", f"10.231.{NET}.13"))
        with pytest.raises(ReservationRefused, match="already reserved for MAC 02:31:00:00:01:13"):
            backend.add(res("02:31:00:00:01:14", f"10.231.{NET}.13"))
        with pytest.raises(ReservationRefused, match="outside every configured subnet"):
            backend.add(res("02:31:00:00:01:15", "192.0.2.10"))
        with pytest.raises(ReservationRefused, match="host name"):
            backend.add(Reservation("02:31:00:00:01:16", f"10.231.{NET}.16", "", 'x"; filename "p'))
        for mac in ("02:31:00:00:01:14", "02:31:00:00:01:15", "02:31:00:00:01:16"):
            assert backend.lookup(mac) is None  # nothing reached dhcpd
    finally:
        backend.close()


def test_wrong_key_has_its_own_message(server) -> None:
    topo, _ = server
    started = time.monotonic()
    with pytest.raises(DriverError, match="rejected the OMAPI key 'omapi_key'") as err:
        connect(topo, settings(peers.new_secret()))
    assert time.monotonic() - started < 2
    assert "secret" in str(err.value) and "==" not in str(err.value)


def test_unreachable_has_its_own_message(server) -> None:
    topo, secret = server
    with pytest.raises(DriverError, match="unreachable: connection refused"):
        connect(topo, settings(secret, port=7912))


def test_timeout_has_its_own_message_within_the_deadline(server) -> None:
    topo, secret = server
    with peers.netns(topo.srv):
        silent = socket.socket()
    silent.bind(("127.0.0.1", 7913))
    silent.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(DriverError, match=r"did not answer within 1 s"):
            connect(topo, settings(secret, port=7913, timeout=1))
        assert time.monotonic() - started < 2.5
    finally:
        silent.close()


def test_key_never_in_repr(server) -> None:
    _, secret = server
    backend = OmapiBackend(settings(secret))
    assert secret not in repr(vars(backend))
    assert repr(backend._key) == "Secret('********')"  # the one Secret type (bmprov.secret)


def test_pipelined_add_many_reports_each_host_in_order(server) -> None:
    topo, secret = server
    backend = connect(topo, settings(secret))
    try:
        backend.add(res("02:31:00:00:01:30", f"10.231.{NET}.30", "SN30"))
        items = [
            res("02:31:00:00:01:31", f"10.231.{NET}.31", "SN31"),  # new
            res("02:31:00:00:01:30", f"10.231.{NET}.30", "SN30"),  # already there: fine
            res("02:31:00:00:01:30", f"10.231.{NET}.39", "SN30"),  # same MAC, other IP
            res("02:31:00:00:01:32", f"10.231.{NET}.31", "SN32"),  # IP taken in this window
            res("02:31:00:00:01:33", "192.0.2.1", "SN33"),  # outside every subnet
            *(res(f"02:31:00:00:02:{i:02x}", f"10.231.{NET}.{100 + i}") for i in range(40)),
        ]
        out = list(backend.add_many(items))
        assert [r.mac for r, _ in out] == [r.mac for r in items]
        errors = [type(e).__name__ if e else None for _, e in out[:5]]
        assert errors == [
            None,
            None,
            "ReservationConflict",
            "ReservationRefused",
            "ReservationRefused",
        ]
        assert all(e is None for _, e in out[5:])
        assert backend.lookup("02:31:00:00:02:27").ip == f"10.231.{NET}.139"
        assert backend.lookup("02:31:00:00:01:32") is None
    finally:
        backend.close()


def test_server_dying_mid_batch_fails_the_rest_at_once(tmp_path) -> None:
    with peers.topology("02:31:00:00:01:02", net=22) as topo:
        secret = peers.new_secret()
        dhcpd = peers.start_dhcpd(topo, tmp_path, secret)
        s = settings(secret)
        s = DhcpSettings.from_config(
            Config(None, {**s.config.raw, "network": {"subnet": "10.231.22.0/24"}})
        )
        backend = connect(topo, s)
        topo.stop(dhcpd)
        items = [Reservation(f"02:31:00:00:03:{i:02x}", f"10.231.22.{10 + i}") for i in range(50)]
        started = time.monotonic()
        out = list(backend.add_many(items))
        assert time.monotonic() - started < 3
        messages = {str(e) for _, e in out}
        assert len(messages) == 1
        message = messages.pop()
        assert message == (
            "dhcpd OMAPI 127.0.0.1:7911 closed the connection (did dhcpd stop or restart?)"
        )
        backend.close()


def test_rerun_and_name_conflicts_inside_a_pipelined_batch(server) -> None:
    """Refused adds are explained after the wire is quiet, whatever else is in flight."""
    topo, secret = server
    backend = connect(topo, settings(secret))
    try:
        first = [res(f"02:31:00:00:04:{i:02x}", f"10.231.{NET}.{150 + i}") for i in range(70)]
        assert all(e is None for _, e in backend.add_many(first))
        backend.add(res("02:31:00:00:04:ff", f"10.231.{NET}.240", "SN240"))
        again = [
            *first[:40],  # already there: success, nothing changed
            res("02:31:00:00:05:01", f"10.231.{NET}.241", "SN240"),  # name held by another MAC
            *first[40:],
        ]
        out = list(backend.add_many(again))
        assert [r.mac for r, _ in out] == [r.mac for r in again]
        errors = {r.mac: e for r, e in out if e is not None}
        assert list(errors) == ["02:31:00:00:05:01"]
        assert isinstance(errors["02:31:00:00:05:01"], ReservationConflict)
        assert "host name 'SN240' is already used by MAC 02:31:00:00:04:ff" in str(
            errors["02:31:00:00:05:01"]
        )
        assert backend.lookup("02:31:00:00:04:45").ip == f"10.231.{NET}.219"
        assert backend.lookup("02:31:00:00:05:01") is None
    finally:
        backend.close()


def test_the_read_back_is_a_separate_lookup(server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup behind each add decides, not the add's own reply: aim it at another host
    and a perfectly good add is reported as not holding its address."""
    import bmprov.dhcp.omapi as omapi_mod

    topo, secret = server
    backend = connect(topo, settings(secret))
    other, mine = "02:31:00:00:01:e0", "02:31:00:00:01:e1"
    real_lookup = omapi_mod.lookup_message
    try:
        assert backend.add(res(other, f"10.231.{NET}.230", "SNE0")) is True
        monkeypatch.setattr(
            omapi_mod, "lookup_message", lambda mac, tid=-1: real_lookup(other, tid)
        )
        results = list(backend.add_many([res(mine, f"10.231.{NET}.231", "SNE1")]))
        ((_, error),) = results
        assert isinstance(error, DriverError)
        assert f"read-back of {mine} shows 10.231.{NET}.230" in str(error)
    finally:
        monkeypatch.setattr(omapi_mod, "lookup_message", real_lookup)
        for mac in (other, mine):
            backend.remove(mac)
        backend.close()
