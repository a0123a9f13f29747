"""The deployed stage's entry action: from now on the node boots its own disk.

Every per-MAC boot entry of the node (pxelinux, GRUB, iPXE) is switched to local boot — never
deleted, so the loader cannot fall through to an entry that installs — and a reboot can never
reinstall the machine by accident. Its install file (with the root password hash) is then
removed from the HTTP tree, and ``pxe render`` does not write it again for a deployed node.
Where the PXE boot device was set persistently (``[power] provisioning_persistent = true``),
the BMC is also set back to boot from disk; a one-time PXE override has already fallen back
to the disk by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from bmprov import states
from bmprov.boot.writer import NodeFileWriter
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.power import boot_from_disk
from bmprov.result import ResultCode
from bmprov.stages.base import Outcome, StageAction

SWITCHED = "PXE entries switched to local boot, install file removed"


class BootFromDisk(StageAction):
    """Local-boot entries for nodes entering *deployed*, and disk as their boot device."""

    stage = states.DEPLOYED

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """Fail a node whose entries cannot be switched: it could reinstall on its next boot."""
        ctx = self.ctx
        writer = NodeFileWriter(ctx.config)
        switched: list[Node] = []
        for node in nodes:
            try:
                writer.local_boot(node)
            except BmprovError as exc:
                yield Outcome(node, False, str(exc), "local boot")
                continue
            switched.append(node)
        if not switched:
            return
        if not ctx.config.settings.power.provisioning_persistent:
            for node in switched:
                yield Outcome(node, True, SWITCHED)
            return
        by_serial = {node.serial: node for node in switched}
        for result in boot_from_disk(ctx.config, switched).results:
            node = by_serial[result.serial]
            if result.status == "failed":
                yield Outcome(node, False, result.message, "boot device", result.details)
            elif result.code is ResultCode.NO_BMC:
                yield Outcome(node, True, f"{SWITCHED}; no BMC to set back to disk")
            else:
                yield Outcome(node, True, f"{SWITCHED}; boot device: {result.message}")
