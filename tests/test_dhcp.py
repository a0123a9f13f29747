"""DHCP backends without daemons (file, dnsmasq files, Kea JSON), exports and the dhcp CLI."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from bmprov.config import Config
from bmprov.dhcp import (
    DhcpSettings,
    Reservation,
    ReservationConflict,
    ReservationRefused,
    open_backend,
)
from bmprov.dhcp.dnsmasq import host_line, parse_line
from bmprov.dhcp.kea import subnet_of
from bmprov.errors import ConfigError, DriverError
from tests.test_networking import load, networking, row

NET = {"subnet": "10.231.5.0/24", "server_address": "10.231.5.1", "gateway": "10.231.5.1"}


def settings(tmp_path, backend: str = "file", **sub) -> DhcpSettings:
    raw = {"network": NET, "dhcp": {"backend": backend, **sub}}
    return DhcpSettings.from_config(Config(tmp_path / "bmprov.toml", raw))


def res(i: int, ip: int | None = None) -> Reservation:
    return Reservation(f"02:31:00:00:05:{i:02x}", f"10.231.5.{ip or i}", f"SN{i}", f"node{i}")


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("mac", "01:00:5e:00:00:01", "multicast"),
        ("ip", "10.231.5.300", "not an IPv4"),
        ("hostname", 'evil"; filename "x', "not a valid host name"),
        ("name", 'a"b', "not a valid reservation name"),
        ("filename", "../../etc/shadow", "not a valid boot filename"),
        ("next_server", "10.1.1", "not an IPv4"),
    ],
)
def test_every_field_is_allow_listed(field, value, needle) -> None:
    with pytest.raises(ReservationRefused, match=needle):
        Reservation(**{**res(1).to_dict(), field: value}).checked()


def test_file_backend_add_idempotent_conflict_remove(tmp_path) -> None:
    s = settings(tmp_path)
    with open_backend(s) as backend:
        assert backend.add(res(10)) is True
        assert backend.add(res(10)) is False
        with pytest.raises(ReservationConflict, match=r"already reserved for 10\.231\.5\.10"):
            backend.add(res(10, ip=11))
        with pytest.raises(ReservationRefused, match="already reserved for MAC"):
            backend.add(res(12, ip=10))
        with pytest.raises(ReservationRefused, match="outside every configured subnet"):
            backend.add(Reservation("02:31:00:00:05:13", "192.0.2.10"))
    with open_backend(s) as backend:  # persisted atomically, reloaded
        assert backend.lookup("02:31:00:00:05:0a").ip == "10.231.5.10"
        assert backend.remove("02:31:00:00:05:0a") is True
    with open_backend(s) as backend:
        assert backend.list() == []


def test_unknown_backend_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not one of"):
        settings(tmp_path, backend="windows")


def test_dnsmasq_lines_carry_no_tags(tmp_path) -> None:
    line = host_line(
        Reservation("02:31:00:00:05:01", "10.231.5.9", "SN1", "node1.example.net", "grubx64.efi")
    )
    assert line == "02:31:00:00:05:01,10.231.5.9,node1\n"
    assert "set:" not in line and "tag:" not in line
    assert parse_line(line).ip == "10.231.5.9"
    assert parse_line("garbage") is None


def test_dnsmasq_backend_one_file_per_host(tmp_path) -> None:
    hostsdir = tmp_path / "hosts.d"
    hostsdir.mkdir()
    s = settings(tmp_path, backend="dnsmasq", dnsmasq={"hostsdir": str(hostsdir)})
    with open_backend(s) as backend:
        backend.add(res(1))
        backend.add(res(2))
    assert sorted(p.name for p in hostsdir.glob("[!.]*")) == [
        "02-31-00-00-05-01.conf",
        "02-31-00-00-05-02.conf",
    ]
    with open_backend(s) as backend:
        assert backend.remove("02:31:00:00:05:01")
    assert [p.name for p in hostsdir.glob("[!.]*")] == ["02-31-00-00-05-02.conf"]


def test_kea_subnet_lookup() -> None:
    subnets = [{"subnet": "10.231.5.0/24"}, {"subnet": "10.231.6.0/23"}]
    assert subnet_of(subnets, "10.231.7.9") is subnets[1]
    assert subnet_of(subnets, "10.231.8.1") is None


def test_export_formats(site, cli) -> None:
    load(site, [row(1), row(2)])
    networking(site)
    isc = cli("dhcp", "export", "--format", "isc")
    assert isc.exit_code == 0
    assert (
        "host bmprov-SN1 {\n  hardware ethernet 02:31:00:00:00:01;\n  fixed-address 10.20.0.2;"
        in isc.stdout
    )
    assert 'filename "pxelinux.0";' in isc.stdout
    dns = cli("dhcp", "export", "-f", "dnsmasq")
    assert dns.stdout.splitlines() == [
        "dhcp-host=02:31:00:00:00:01,10.20.0.2,node1",
        "dhcp-host=02:31:00:00:00:02,10.20.0.3,node2",
    ]
    out = site.dir / "kea.json"
    kea = cli("dhcp", "export", "-f", "kea", "-o", out)
    assert kea.exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["reservations"][0] == {
        "hw-address": "02:31:00:00:00:01",
        "ip-address": "10.20.0.2",
        "hostname": "node1",
        "boot-file-name": "pxelinux.0",
        "next-server": "10.20.0.1",
        "option-data": [
            {"name": "routers", "data": "10.20.0.1"},
            {"name": "domain-name-servers", "data": "10.20.0.1"},
        ],
    }
    bad = cli("dhcp", "export", "-f", "bind")
    assert bad.exit_code == 2
    assert "unknown export format" in bad.stderr


def test_dhcp_list_shows_server_next_to_state(site, cli) -> None:
    load(site, [row(1), row(2)])
    networking(site)
    ok = cli("dhcp", "list", "--json")
    assert ok.exit_code == 0
    assert [r["status"] for r in json.loads(ok.stdout)["reservations"]] == ["ok", "ok"]
    path = site.dir / "dhcp-reservations.json"
    doc = json.loads(path.read_text())
    doc["reservations"][0]["ip"] = "10.20.0.99"
    doc["reservations"].pop()
    doc["reservations"].append({"mac": "02:31:00:00:00:77", "ip": "10.20.0.77"})
    path.write_text(json.dumps(doc))
    run = cli("dhcp", "list")
    assert run.exit_code == 1
    for text in ("differs", "missing", "unexpected", "10.20.0.99"):
        assert text in run.stdout


def test_dhcp_list_error_is_clear(site, cli) -> None:
    (site.dir / "dhcp-reservations.json").write_text("{not json")
    run = cli("dhcp", "list")
    assert run.exit_code == 1
    assert run.stderr.startswith("Error: reservations file")
    assert "Traceback" not in run.stderr


def kea_settings(tmp_path, sock) -> DhcpSettings:
    conf = tmp_path / "kea.json"
    subnet = {"id": 1, "subnet": "10.231.5.0/24", "reservations": []}
    conf.write_text(json.dumps({"Dhcp4": {"subnet4": [subnet]}}))
    return settings(
        tmp_path, backend="kea", kea={"config": str(conf), "socket": str(sock), "timeout": 1}
    )


def test_kea_refused_reload_puts_the_old_file_back(tmp_path) -> None:
    sock_path = tmp_path / "k.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.listen(1)

    def answer() -> None:  # a Kea that refuses the new configuration
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b'{"result": 1, "text": "reservation conflicts with another"}')
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    s = kea_settings(tmp_path, sock_path)
    before = (tmp_path / "kea.json").read_text()
    with (
        pytest.raises(DriverError, match="config-reload failed: reservation conflicts"),
        open_backend(s) as backend,
    ):
        backend.add(res(7))
    assert (tmp_path / "kea.json").read_text() == before
    server.close()


def test_kea_missing_socket_and_outside_subnet(tmp_path) -> None:
    s = kea_settings(tmp_path, tmp_path / "nope.sock")
    with (
        pytest.raises(DriverError, match=r"nope\.sock does not exist \(is kea-dhcp4 running"),
        open_backend(s) as backend,
    ):
        backend.add(res(7))
    s = DhcpSettings.from_config(
        Config(
            tmp_path / "b.toml",
            {
                "pools": [{"name": "a", "subnet": "10.231.0.0/16"}],
                "dhcp": {
                    "backend": "kea",
                    "kea": {"config": str(tmp_path / "kea.json"), "socket": "x"},
                },
            },
        )
    )
    with open_backend(s) as backend, pytest.raises(ReservationRefused, match="every subnet4"):
        backend.add(Reservation("02:31:00:00:05:09", "10.231.9.9"))


def test_kea_keeps_entries_it_does_not_manage(tmp_path) -> None:
    conf = tmp_path / "kea.json"
    foreign = {"client-id": "01:02", "ip-address": "10.231.5.200"}
    mine = {
        "hw-address": "02:31:00:00:05:09",
        "ip-address": "10.231.5.9",
        "client-classes": ["kept"],
    }
    subnet = {"id": 1, "subnet": "10.231.5.0/24", "reservations": [foreign, mine]}
    conf.write_text(json.dumps({"Dhcp4": {"subnet4": [subnet]}}))
    s = settings(tmp_path, backend="kea", kea={"config": str(conf), "socket": "x"})
    backend = open_backend(s)
    backend.open()
    backend.add(res(7))
    backend.command = lambda name: {"result": 0, "arguments": json.loads(conf.read_text())}
    backend.commit()
    held = json.loads(conf.read_text())["Dhcp4"]["subnet4"][0]["reservations"]
    assert held[:2] == [foreign, mine]
    assert held[2]["hw-address"] == "02:31:00:00:05:07"


def test_empty_boot_filename_leaves_the_loader_to_the_server(site, cli) -> None:
    """Mixed BIOS/UEFI sites: no per-host filename, so dhcpd's architecture rules apply."""
    text = site.config_path.read_text().replace(
        'boot_filename = "pxelinux.0"', 'boot_filename = ""', 1
    )
    site.config_path.write_text(text)
    load(site, [row(1)])
    networking(site)
    isc = cli("dhcp", "export", "--format", "isc")
    assert isc.exit_code == 0 and "fixed-address 10.20.0.2;" in isc.stdout
    assert "filename" not in isc.stdout
    kea = json.loads(cli("dhcp", "export", "-f", "kea").stdout)
    assert "boot-file-name" not in kea["reservations"][0]
