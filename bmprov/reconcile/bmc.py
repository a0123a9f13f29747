"""The BMC plane: each node's power state (and boot device, where the BMC reports it) against
its stage, through the power layer (:func:`bmprov.power.run_power`): the same drivers, hard
deadlines per call and ``[power] concurrency``, so a dead BMC costs at most its timeout.

Kinds, all reported only (reconcile never powers a machine or changes its boot order):
``unreachable`` (the BMC failed or timed out), ``power`` (an installing or deployed node that
is off), ``boot_device`` (a deployed node set to boot from the network persistently: it would
reinstall at its next reboot).
"""

from __future__ import annotations

from collections.abc import Iterator

from bmprov import states as st
from bmprov.power import PowerRequest, run_power
from bmprov.reconcile.findings import Context, Finding

PLANE = "bmc"
EXPECTED_POWER = {st.INSTALLING: "on", st.DEPLOYED: "on"}
"""Stage → the power state a node in it must be in (other stages: either is fine)."""


def check_bmcs(ctx: Context) -> Iterator[Finding]:
    """Power state and boot device of every node that names a BMC."""
    nodes = [n for n in ctx.nodes if n.bmc_address or n.bmc_type]
    if not nodes:
        return
    batch = run_power(ctx.config, nodes, PowerRequest(status=True, read_boot=True))
    stages = {n.serial: n.stage for n in nodes}
    for result in batch.results:
        stage = stages[result.serial]
        if result.status == "failed":
            yield Finding(result.serial, PLANE, "unreachable", "a BMC that answers", result.message)
            continue
        power = result.details.get("power")
        want = EXPECTED_POWER.get(stage)
        if want and power and power != want:
            yield Finding(result.serial, PLANE, "power", f"{want} ({stage})", power)
        boot = result.details.get("boot") or {}
        if stage == st.DEPLOYED and boot.get("device") == "pxe" and boot.get("persistent"):
            yield Finding(result.serial, PLANE, "boot_device", "disk (deployed)", "pxe, persistent")
