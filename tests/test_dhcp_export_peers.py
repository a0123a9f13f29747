"""``dhcp export`` fed to each real daemon's own configuration check (issue 9, item 2).

ISC dhcpd 4.4.3 (``dhcpd -t -cf``), dnsmasq 2.90 (``dnsmasq --test -C``) and Kea 2.2
(``kea-dhcp4 -t``) read the exported file as an operator's configuration management would
place it. The serials are the awkward ones a sheet may hold: leading zeros (``host "000123"``
was refused), dots and underscores (dhcpd splits names at dots).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_networking import load, networking

DAEMONS = {"isc": "/usr/sbin/dhcpd", "dnsmasq": "/usr/sbin/dnsmasq", "kea": "/usr/sbin/kea-dhcp4"}
pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        not all(shutil.which(p) for p in DAEMONS.values()), reason="needs dhcpd, dnsmasq, Kea"
    ),
]
SERIALS = ["000123", "SN.1", "SN_1", "SN._2", "SN..3", "SN4.", "1e5", "x-y"]


def check(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def exported(site, cli) -> dict[str, str]:
    rows = [
        [s, f"02:31:00:00:01:{i:02x}", f"node{i}", "provisioning_auto"]
        for i, s in enumerate(SERIALS)
    ]
    load(site, rows)
    batch, _ = networking(site)
    assert batch.counts() == {"ok": len(SERIALS)}
    out: dict[str, str] = {}
    for fmt in DAEMONS:
        run = cli("dhcp", "export", "--format", fmt)
        assert run.exit_code == 0, run.stderr
        out[fmt] = run.stdout
    return out


def test_isc_export_passes_dhcpd_check(exported, tmp_path: Path) -> None:
    text = exported["isc"]
    assert text.count("host bmprov-") == len(SERIALS) and '"000123"' not in text
    conf = tmp_path / "dhcpd.conf"
    conf.write_text("subnet 10.20.0.0 netmask 255.255.255.0 {\n}\n" + text)
    run = check([DAEMONS["isc"], "-t", "-cf", str(conf)])
    assert run.returncode == 0, run.stderr
    # the check is real: the old quoted form is refused the way the issue reports it
    conf.write_text(text.replace("host bmprov-000123 ", 'host "000123" ', 1))
    run = check([DAEMONS["isc"], "-t", "-cf", str(conf)])
    assert run.returncode == 1 and "expecting a name for host declaration" in run.stderr


def test_dnsmasq_export_passes_dnsmasq_test(exported, tmp_path: Path) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("port=0\ndhcp-range=10.20.0.0,static\n" + exported["dnsmasq"])
    run = check([DAEMONS["dnsmasq"], "--test", "-C", str(conf)])
    assert run.returncode == 0 and "syntax check OK" in run.stderr, run.stderr
    conf.write_text(conf.read_text() + "dhcp-host=02:31:00:00:01:00,10.20.0.250,bad_name!\n")
    run = check([DAEMONS["dnsmasq"], "--test", "-C", str(conf)])  # the check is real
    assert run.returncode == 1 and "bad DHCP host name" in run.stderr


def test_kea_export_passes_kea_check(exported, tmp_path: Path) -> None:
    reservations = json.loads(exported["kea"])["reservations"]
    assert len(reservations) == len(SERIALS)
    subnet = {"id": 1, "subnet": "10.20.0.0/24", "reservations": reservations}
    doc = {"Dhcp4": {"interfaces-config": {"interfaces": []}, "subnet4": [subnet]}}
    conf = tmp_path / "kea-dhcp4.conf"
    conf.write_text(json.dumps(doc))
    run = check([DAEMONS["kea"], "-t", str(conf)])
    assert run.returncode == 0, run.stdout + run.stderr
    reservations.append(dict(reservations[0]))  # a duplicate MAC: Kea's check must refuse it
    conf.write_text(json.dumps(doc))
    assert check([DAEMONS["kea"], "-t", str(conf)]).returncode != 0
