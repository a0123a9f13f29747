"""What ``bmprov reconcile`` found: one :class:`Finding` per drift, grouped in a :class:`Report`.

A finding names the node (its serial; None for an orphan no node owns), the plane it was found
in (``dhcp``, ``boot``, ``bmc``, ``state``), its kind, what bmprov expected and what it found,
and whether ``--fix`` / ``--prune`` repaired it. ``note`` says what was done, or why not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bmprov.config import Config
    from bmprov.nodes import Node
    from bmprov.store import Store

T = TypeVar("T")


@dataclass
class Finding:
    """One difference between the state file and a real system."""

    node: str | None
    plane: str
    kind: str
    expected: str | None
    actual: str | None
    fixed: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (node, plane, kind, expected, actual, fixed, note)."""
        return asdict(self)

    def line(self) -> str:
        """One plain line: ``dhcp missing SN1: expected …, found … (fixed)``."""
        who = self.node or "-"
        text = f"{self.plane} {self.kind} {who}: expected {self.expected or 'none'}"
        text += f", found {self.actual or 'none'}"
        if self.fixed:
            text += " (fixed)"
        if self.note:
            text += f" [{self.note}]"
        return text


@dataclass
class Context:
    """What every check gets: the site, the nodes in scope, and what it may change."""

    config: Config
    db: Store
    nodes: list[Node]  # in scope (``--site``), by serial
    all_nodes: list[Node]  # every node: orphans are what *no* node owns
    fix: bool = False
    prune: bool = False
    events: list[tuple[Node, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prefetch: dict[str, Future[Any]] = field(default_factory=dict)  # shared by every plane

    def prefetched(self, plane: str, read: Callable[[Context], T]) -> T:
        """What ``read`` returns: from the plane's prefetch thread if one ran, else now."""
        future = self.prefetch.pop(plane, None)
        return future.result() if future is not None else read(self)

    def fixed(self, node: Node, what: str) -> None:
        """Queue a history row for a repair (written when the plane is done)."""
        self.events.append((node, f"reconcile --fix: {what}"))


Check = Callable[[Context], Iterable[Finding]]
"""A check of one plane: yields findings, repairing what it may when ``ctx.fix``/``prune``."""


@dataclass
class Report:
    """Every finding of a run, the planes checked and notes (what could not be checked)."""

    findings: list[Finding] = field(default_factory=list)
    planes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fix: bool = False
    prune: bool = False

    @property
    def open(self) -> list[Finding]:
        """Findings still there after the run (not repaired)."""
        return [f for f in self.findings if not f.fixed]

    @property
    def exit_code(self) -> int:
        """0: clean (or everything found was repaired); 1: drift remains."""
        return 1 if self.open else 0

    def by_kind(self) -> dict[tuple[str, str], list[Finding]]:
        """(plane, kind) → findings, in check order."""
        groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
        for finding in self.findings:
            groups[(finding.plane, finding.kind)].append(finding)
        return dict(groups)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "ok": not self.open,
            "exit_code": self.exit_code,
            "fix": self.fix,
            "prune": self.prune,
            "planes": self.planes,
            "notes": self.notes,
            "counts": {f"{p}.{k}": len(v) for (p, k), v in self.by_kind().items()},
            "findings": [f.to_dict() for f in self.findings],
        }


def describe(findings: Iterable[Finding]) -> list[str]:
    """Plain lines, one per finding."""
    return [f.line() for f in findings]
