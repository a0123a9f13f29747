"""The decommissioning stage's entry action: leaving service, in the safe order.

Every per-MAC boot entry becomes local boot and the install file (which carries the root
password hash) is deleted **first**; then the DHCP reservation is removed and the address
released, and the node moves on to *wiping*. A node whose files cannot be switched fails and
keeps its reservation and address, so a re-run starts it again from the top.
"""

from __future__ import annotations

from collections.abc import Iterator

from bmprov import ipam
from bmprov import states as st
from bmprov.boot import digests
from bmprov.boot.writer import NodeFileWriter
from bmprov.dhcp import open_backend
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.stages.base import ActionContext, Outcome, StageAction
from bmprov.stages.networking import RELEASE, check_dhcp


class DecommissionAction(StageAction):
    """Leaving service: local boot, no install file, no DHCP reservation, address released.

    The boot entries go first: a leaving machine that PXE-boots must find its disk, never an
    installer (the same rule as *deployed*). A node whose files cannot be switched keeps its
    reservation and address, so a re-run starts it again from the top.
    """

    stage = st.DECOMMISSIONING

    def __init__(self, ctx: ActionContext) -> None:
        super().__init__(ctx)
        self.settings = ctx.config.settings.dhcp
        self.writer = NodeFileWriter(ctx.config)

    def check(self) -> None:
        """The DHCP backend settings it needs (boot settings: checked when built)."""
        check_dhcp(self.ctx, self.settings)

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """One backend connection for the batch; the IP is released only once unreserved."""
        ctx, writer = self.ctx, self.writer
        recorder = digests.attach(writer)
        failed: dict[int, tuple[str, str]] = {}
        for node in nodes:
            try:
                writer.local_boot(node)  # removes the install file too
            except BmprovError as exc:
                failed[node.id] = (str(exc), getattr(exc, "step", None) or "local boot")
        recorder.save(ctx.db)
        backend = ctx.services.dhcp_backend or open_backend(self.settings)
        done: list[Node] = []
        with backend:
            for node in nodes:
                if node.id in failed:
                    continue
                try:
                    for mac in node.macs:
                        backend.remove(mac)
                    done.append(node)
                except BmprovError as exc:
                    failed[node.id] = (str(exc), RELEASE)
        ipam.release(ctx.db, [n.id for n in done])
        for node in nodes:
            if node.id in failed:
                yield Outcome(node, False, *failed[node.id])
            else:
                yield Outcome(node, True, "local boot; install file, reservation and address gone")
