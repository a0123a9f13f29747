"""Per-node results of a batch, and how a batch maps to an exit code.

A batch never stops at the first failure: every node gets a :class:`NodeResult`, and the
:class:`BatchResult` says whether the whole thing succeeded, partly failed or did nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bmprov.errors import ExitCode

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "skipped", "unchanged", "planned"]


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node."""

    serial: str
    status: Status
    stage: str | None = None
    message: str = ""
    step: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class BatchResult:
    """All node results of one command, in the order they finished."""

    action: str
    results: list[NodeResult] = field(default_factory=list)

    def add(self, result: NodeResult) -> None:
        """Record one node's result (logged at INFO: ``-v`` follows a batch node by node)."""
        self.results.append(result)
        log.info(
            "%s: %s %s%s: %s",
            self.action,
            result.serial,
            result.status,
            f" at {result.step}" if result.step else "",
            result.message,
        )

    @property
    def failed(self) -> list[NodeResult]:
        """The results whose status is ``failed``."""
        return [r for r in self.results if r.status == "failed"]

    def counts(self) -> dict[str, int]:
        """How many results have each status."""
        return dict(Counter(r.status for r in self.results))

    @property
    def exit_code(self) -> ExitCode:
        """1 if any node failed, else 0."""
        return ExitCode.FAILED if self.failed else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{action, counts, results: [...]}``."""
        return {
            "action": self.action,
            "counts": self.counts(),
            "results": [r.to_dict() for r in self.results],
        }
