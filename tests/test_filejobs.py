"""File work beside the DHCP round trips: worker process for big batches, thread for small."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmprov.boot import jobs as filejobs
from bmprov.errors import StepFailed
from bmprov.nodes import Node


class Writer:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, node, ip):
        if node.serial == "SN7":
            raise StepFailed("install file", "template kickstart.j2: 'disks' is undefined")
        if node.serial == "SN8":
            raise KeyError("bug")
        path = self.root / f"{node.serial}.cfg"
        path.write_text(ip)
        return [path]


@pytest.mark.parametrize("count", [3 + 7, filejobs.PROCESS_MIN_NODES + 10])
def test_results_per_node_across_the_boundary(site, tmp_path, monkeypatch, count) -> None:
    jobs = filejobs.FileJobs(Writer(tmp_path), count)
    for i in range(count):
        jobs.submit(Node(i, f"SN{i}", "networking", macs=("02:31:00:00:00:01",)), f"10.0.0.{i}")
    results = jobs.results()
    assert len(results) == count
    assert results[1].paths == (tmp_path / "SN1.cfg",)
    assert (results[7].step, results[7].reason) == (
        "install file",
        "template kickstart.j2: 'disks' is undefined",
    )
    assert (results[8].step, results[8].reason) == ("boot files", "internal error: KeyError")
    assert sum(r.ok for r in results.values()) == count - 2


class IpWriter:
    """Records the node's own IP: shared nodes must reach the writer with their address."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, node, ip):
        path = self.root / f"{node.serial}.cfg"
        path.write_text(f"{node.ip} {ip}")
        return [path]


@pytest.mark.parametrize("count", [5, filejobs.PROCESS_MIN_NODES + 10])
def test_nodes_known_up_front_cross_as_ids(site, tmp_path, monkeypatch, count) -> None:
    nodes = [Node(i, f"SN{i}", "networking", macs=("02:31:00:00:00:01",)) for i in range(count)]
    jobs = filejobs.FileJobs(IpWriter(tmp_path), count, nodes)
    for node in nodes:
        jobs.submit(node, f"10.0.{node.id // 250}.{node.id % 250}")
    results = jobs.results()
    assert all(r.ok for r in results.values()) and len(results) == count
    assert (tmp_path / "SN3.cfg").read_text() == "10.0.0.3 10.0.0.3"
    assert results[3].paths == (tmp_path / "SN3.cfg",)
