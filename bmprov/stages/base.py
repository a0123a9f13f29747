"""What a stage action is: its context, the services it may be given, and its outcomes.

A stage action runs when nodes *enter* a stage (networking: IP, DHCP, boot files; deployed:
local boot...). :mod:`bmprov.lifecycle` builds one instance per batch, calls :meth:`check`
before any node moves and :meth:`run` on the nodes that moved, and moves each node on (or to
*failed*) by the :class:`Outcome` it gets back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bmprov.config import Config
from bmprov.nodes import Node
from bmprov.store import Store

if TYPE_CHECKING:
    from bmprov.boot.jobs import FileWriter
    from bmprov.dhcp import DhcpBackend
    from bmprov.power import PowerRequest
    from bmprov.result import BatchResult

PowerRunner = Callable[[Config, list[Node], "PowerRequest"], "BatchResult"]
"""Runs a power request on nodes' BMCs (:func:`bmprov.power.run_power`'s shape)."""


@dataclass(frozen=True)
class Services:
    """What actions use besides config and state. ``None``: the one the config names.

    Tests and the benchmarks pass their own (a DHCP backend that fails, a writer that
    writes nothing); production code passes none.
    """

    dhcp_backend: DhcpBackend | None = None
    file_writer: FileWriter | None = None
    power: PowerRunner | None = None


@dataclass
class ActionContext:
    """What an entry action gets: the site config, the state, the command, the services."""

    config: Config
    db: Store
    command: str
    services: Services = field(default_factory=Services)
    auto_power: bool | None = None  # PXE + power cycle at os_provisioning; None: the config's


@dataclass(frozen=True)
class Outcome:
    """One node's outcome from an entry action."""

    node: Node
    ok: bool
    message: str = ""
    step: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    stay: bool = False  # not ok, yet the node stays in the stage (reported failed, not moved)


class StageAction(ABC):
    """What happens when nodes enter a stage. Implementations must be idempotent.

    One instance serves one batch: the constructor builds what ``check`` and ``run`` share
    (settings, a file writer with its templates compiled once) from ``ctx``.
    """

    stage: str = ""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx

    def check(self) -> None:  # noqa: B027  (most actions check nothing beyond their constructor)
        """Refuse the whole batch before any node moves (a bad config would fail every node).

        :raises ConfigError: the settings this action needs are invalid; nothing is done.
        """

    @abstractmethod
    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """Do the stage's work for a batch, yielding one :class:`Outcome` per node.

        A failure of one node is an ``Outcome(ok=False)``, never an exception; an exception
        escaping ``run`` fails every node that has no outcome yet.
        """
