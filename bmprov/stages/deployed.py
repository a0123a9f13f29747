"""The deployed stage's entry action: completion (:mod:`bmprov.completion`).

Boot device back to disk (when bmprov drives power), every per-MAC boot entry switched to local
boot — never deleted, so the loader cannot fall through to an entry that installs — and the
install file (with the root password hash) removed, the open install ended, then the
post-install task and URL. ``pxe render`` never writes a deployed node's install file again.
A node whose entries cannot be switched fails; a failing later step leaves it *deployed* and
reported failed (the OS is installed and boots from its disk).
"""

from __future__ import annotations

from collections.abc import Iterator

from bmprov import states
from bmprov.completion import Completion
from bmprov.nodes import Node
from bmprov.stages.base import ActionContext, Outcome, StageAction


class BootFromDisk(StageAction):
    """Completion for nodes entering *deployed*."""

    stage = states.DEPLOYED

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        self.completion = Completion(ctx)  # validates [post_install] before any node moves

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """See :mod:`bmprov.completion`."""
        yield from self.completion.run(nodes)
