"""Concurrent and killed networking batches against the real dnsmasq and Kea (issue 8).

The same fault injection as tests/test_faults.py, with the daemons the peer tests start:
dnsmasq watching its hostsdir, kea-dhcp4 reloading its config over the control socket. What
must hold: exactly one reservation per networked node, in the store *and* (Kea) in what the
running server reports.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bmprov.config import Config, load_config
from bmprov.dhcp import DhcpSettings, open_backend
from bmprov.dhcp.kea import KeaBackend
from bmprov.setup_site import init_site
from tests import faults, peers

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(not peers.can_run_peers(), reason="needs root, iproute2 and the peers"),
]

MAC = "02:32:ff:00:00:01"  # the topology's client end; no node uses it


def site_for(tmp: Path, topo: peers.Topology, backend: str, section: str) -> Config:
    path = init_site(tmp / "site").config_path
    text = path.read_text().replace('backend = "file"', f'backend = "{backend}"')
    path.write_text(f"{text}\n{section}\n{faults.POOL.format(subnet=topo.subnet)}")
    return load_config(path)


def held_by(config: Config) -> list[tuple[str, str]]:
    """What the backend reads back (Kea: its running configuration, not the file)."""
    settings = DhcpSettings.from_config(config)
    backend = open_backend(settings)
    if isinstance(backend, KeaBackend):
        running = backend.command("config-get")["arguments"]["Dhcp4"]["subnet4"]
        return [(r["hw-address"], r["ip-address"]) for s in running for r in s["reservations"]]
    with backend:
        return [(r.mac, r.ip) for r in backend.list()]


@pytest.mark.slow
def test_dnsmasq_hostsdir_concurrent_and_killed(tmp_path) -> None:
    with peers.topology(MAC, net=40) as topo:
        hostsdir = tmp_path / "hosts.d"
        root = tmp_path / "tftp"
        root.mkdir()
        dnsmasq = peers.start_dnsmasq(topo, tmp_path, hostsdir, root, "pxelinux.0")
        section = f'[dhcp.dnsmasq]\nhostsdir = "{hostsdir}"\npidfile = "{tmp_path}/dnsmasq.pid"'
        config = site_for(tmp_path, topo, "dnsmasq", section)
        faults.concurrent_round(config, 0, faults.CONCURRENT)
        faults.check_consistent(config, lambda: held_by(config))
        faults.load_round(config, 1, 60)
        faults.kill_round(config, random.Random(40), 0)
        assert faults.temp_files(tmp_path) == []
        faults.check_consistent(config, lambda: held_by(config))
        assert dnsmasq.poll() is None


@pytest.mark.slow
def test_kea_config_concurrent_and_killed(tmp_path) -> None:
    with peers.topology(MAC, net=16, plen=20) as topo:
        peers.start_kea(topo, tmp_path)
        section = (
            f'[dhcp.kea]\nconfig = "{tmp_path / "kea-dhcp4.conf"}"\n'
            f'socket = "{tmp_path / "kea.sock"}"'
        )
        config = site_for(tmp_path, topo, "kea", section)
        faults.concurrent_round(config, 0, faults.CONCURRENT)
        faults.check_consistent(config, lambda: held_by(config))
        faults.load_round(config, 1, faults.WORKERS_AT)
        faults.kill_round(config, random.Random(16), 1)
        assert faults.temp_files(tmp_path) == []
        faults.check_consistent(config, lambda: held_by(config))
        assert topo.procs[0].poll() is None
