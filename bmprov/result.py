"""Per-node results of a batch, and how a batch maps to an exit code.

A batch never stops at the first failure: every node gets a :class:`NodeResult`, and the
:class:`BatchResult` says whether the whole thing succeeded, partly failed or did nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from bmprov.errors import ExitCode

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "skipped", "unchanged", "planned"]


class ResultCode(StrEnum):
    """Why a result is what it is, for code (the message is for people and may change)."""

    NO_BMC = "no_bmc"
    """The node has no BMC: nothing was sent; it waits for a person to power it on."""


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node."""

    serial: str
    status: Status
    stage: str | None = None
    message: str = ""
    step: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    code: ResultCode | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``code``: a :class:`ResultCode` value or null)."""
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
