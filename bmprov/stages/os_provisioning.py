"""The os_provisioning stage's entry action: set PXE (one-time) and power-cycle, per config.

With ``[power] auto_on_provisioning = true`` (or for a reinstall, always), every node
entering *os_provisioning* gets its next boot set to PXE and a power cycle (which powers on a
node that is off), through the same bounded batch runner as ``bmprov power``, in waves
(``[power] wave_size``). Nodes without a BMC are *not* failures: they are reported as waiting
for a manual power-on, as are all nodes while the option is off (the default). A BMC failure
fails the node with ``step="power"`` (the lifecycle moves it to
*failed*; ``bmprov advance --stage os_provisioning`` retries it).
"""

from __future__ import annotations

from collections.abc import Iterator

from bmprov import states
from bmprov.drivers import BootDevice, PowerAction
from bmprov.nodes import Node
from bmprov.power import PowerRequest, default_uefi, run_power
from bmprov.result import ResultCode
from bmprov.stages.base import Outcome, StageAction

MANUAL = "waiting for a manual power-on"
AUTO_OFF = f"{MANUAL} (automatic power control is off: [power] auto_on_provisioning)"


class PowerOnProvisioning(StageAction):
    """PXE + power cycle for nodes entering os_provisioning (when configured)."""

    stage = states.OS_PROVISIONING

    def run(self, nodes: list[Node]) -> Iterator[Outcome]:
        """One outcome per node: ok (cycled into PXE, or waiting), or failed at step power."""
        ctx = self.ctx
        settings = ctx.config.settings.power
        auto = settings.auto_on_provisioning if ctx.auto_power is None else ctx.auto_power
        if not auto:
            for node in nodes:
                yield Outcome(node, True, AUTO_OFF)
            return
        request = PowerRequest(
            action=PowerAction.CYCLE,
            bootdev=BootDevice.PXE,
            persistent=settings.provisioning_persistent,
            uefi=default_uefi(ctx.config),
        )
        by_serial = {node.serial: node for node in nodes}
        if ctx.services.power is not None:
            batch = ctx.services.power(ctx.config, nodes, request)
        else:
            batch = run_power(ctx.config, nodes, request, settings=settings)
        for result in batch.results:
            node = by_serial[result.serial]
            if result.status == "failed":
                yield Outcome(node, False, result.message, result.step or "power", result.details)
            elif result.status == "skipped":
                why = "no BMC" if result.code is ResultCode.NO_BMC else result.message
                yield Outcome(node, True, f"{MANUAL} ({why})", None, result.details)
            else:
                yield Outcome(node, True, f"PXE boot: {result.message}", None, result.details)
