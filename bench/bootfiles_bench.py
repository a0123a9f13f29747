"""NodeFileWriter by itself: the per-node cost of the networking stage's file work.

    .venv/bin/python bench/bootfiles_bench.py [--nodes 10000] [--runs 3] [--profile]

Each run writes every node's install-mode files into a fresh boot directory on tmpfs
(/dev/shm), as networking does for new nodes, then writes them all again (nothing changed:
write-if-changed must keep every file). Nodes are spread over the OS families (kickstart,
preseed, autoinstall). ``--profile`` prints the top of a cProfile of one fresh run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bmprov.boot.writer import NodeFileWriter
from bmprov.config import load_config
from bmprov.nodes import Node
from bmprov.setup_site import init_site

OSES = ("rocky9", "rocky9", "debian12", "ubuntu-24.04")  # mostly kickstart, as in the field


def make_nodes(count: int) -> list[Node]:
    """``count`` nodes with one MAC and an IP each (what networking hands the writer)."""
    nodes = []
    for i in range(1, count + 1):
        ip = f"10.40.{i >> 8 & 255}.{i & 255}"
        mac = "02:40:" + ":".join(f"{i >> s & 255:02x}" for s in (24, 16, 8, 0))
        nodes.append(
            Node(
                id=i,
                serial=f"BN{i:06d}",
                stage="networking",
                macs=(mac,),
                os=OSES[i % len(OSES)],
                hostname=f"bn{i:06d}",
                ip=ip,
            )
        )
    return nodes


def write_all(writer: NodeFileWriter, nodes: list[Node]) -> int:
    return sum(len(writer.write(node, node.ip or "")) for node in nodes)


def one_run(base: Path, nodes: list[Node]) -> tuple[float, float, float, float, int]:
    """Fresh write and unchanged rewrite of every node, in a new site under ``base``.

    Returns wall and CPU (user + system) seconds of each: on a shared machine the CPU time
    is the steadier figure.
    """
    site = init_site(base / "site")
    writer = NodeFileWriter(load_config(site.config_path))
    start, cpu = time.perf_counter(), time.process_time()
    written = write_all(writer, nodes)
    fresh, fresh_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    again = write_all(writer, nodes)
    same, same_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert again == 0, f"{again} files rewritten although nothing changed"
    return fresh, fresh_cpu, same, same_cpu, written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    nodes = make_nodes(args.nodes)
    runs = []
    for _ in range(args.runs):
        base = Path(tempfile.mkdtemp(prefix="bmprov-files-bench-", dir="/dev/shm"))
        try:
            fresh, fresh_cpu, same, same_cpu, written = one_run(base, nodes)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        runs.append((fresh, fresh_cpu, same, same_cpu))
        print(
            f"  fresh {fresh:.2f} s (cpu {fresh_cpu:.2f} s, {written} files), "
            f"unchanged {same:.2f} s (cpu {same_cpu:.2f} s)"
        )
    n = args.nodes
    for label, column in (("fresh", 0), ("unchanged", 2)):
        wall = [r[column] for r in runs]
        cpu = [r[column + 1] for r in runs]
        print(
            f"NodeFileWriter {label}, {n:,} nodes, one process: wall best {min(wall):.2f} s, "
            f"median {statistics.median(wall):.2f} s; cpu best {min(cpu):.2f} s "
            f"({min(cpu) / n * 1e6:.0f} µs/node), median {statistics.median(cpu):.2f} s"
        )
    if args.profile:
        base = Path(tempfile.mkdtemp(prefix="bmprov-files-bench-", dir="/dev/shm"))
        try:
            site = init_site(base / "site")
            writer = NodeFileWriter(load_config(site.config_path))
            profile = cProfile.Profile()
            profile.runcall(write_all, writer, nodes)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
