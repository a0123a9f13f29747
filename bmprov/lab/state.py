"""The lab's state file ``<dir>/lab.json``: what ``lab up`` made and every process it started.

Each process is kept with its PID and its start time (``/proc/PID/stat`` field 22), so ``lab
down`` never signals a process that merely reuses a recorded PID. The file is rewritten
atomically after each process starts, so a ``lab up`` that fails half-way, or is killed, still
leaves a file that ``lab down`` can clean up from.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bmprov.fsutil import atomic_write
from bmprov.lab.machine import MachineSpec

STATE_NAME = "lab.json"


@dataclass(frozen=True)
class Tracked:
    name: str
    pid: int
    started: int  # clock ticks after boot (/proc/PID/stat field 22)


@dataclass
class LabState:
    dir: str
    netns: str
    port_base: int
    user: str = "admin"
    machines: list[MachineSpec] = field(default_factory=list)
    procs: list[Tracked] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.dir) / STATE_NAME

    @property
    def omapi_port(self) -> int:
        """The host loopback port the agent forwards to dhcpd's OMAPI in the namespace."""
        return self.port_base

    def save(self) -> None:
        atomic_write(self.path, json.dumps(asdict(self), indent=2) + "\n")

    def track(self, name: str, pid: int) -> None:
        self.procs.append(Tracked(name, pid, start_time(pid) or 0))
        self.save()


def load(directory: Path) -> LabState | None:
    """The lab in ``directory``, or None when there is none."""
    path = directory / STATE_NAME
    if not path.exists():
        return None
    raw: dict[str, Any] = json.loads(path.read_text())
    raw["machines"] = [MachineSpec(**m) for m in raw.get("machines", [])]
    raw["procs"] = [Tracked(**p) for p in raw.get("procs", [])]
    return LabState(**raw)


def load_for_process(argv: list[str]) -> LabState:
    """The lab a lab process (``python -m bmprov.lab.agent|serving <dir>``) belongs to;
    SystemExit (2) naming the directory when there is none."""
    directory = Path(argv[0]).resolve()
    lab = load(directory)
    if lab is None:
        raise SystemExit(f"no lab in {directory}")
    return lab


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def alive(proc: Tracked) -> bool:
    """The recorded process still runs (same PID *and* start time)."""
    started = start_time(proc.pid)
    if started is None or started != proc.started:
        return False
    try:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z" or os.getpid() == proc.pid


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines record of the lab (``vbmc.jsonl``; empty when there is none yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
