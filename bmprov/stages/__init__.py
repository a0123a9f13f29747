"""Stage entry actions, one module each, and the explicit registry of which stage runs which.

=================  ======================================  ==========================
stage entered      action                                  module
=================  ======================================  ==========================
networking         allocate → reserve → boot/install files :mod:`.networking`
os_provisioning    PXE + power cycle (when configured)     :mod:`.os_provisioning`
deployed           local boot; boot device back to disk    :mod:`.deployed`
decommissioning    local boot, no install file, unreserve  :mod:`.decommissioning`
=================  ======================================  ==========================

A stage with no entry here has no entry action: entering it only records the move.
"""

from __future__ import annotations

from bmprov import states as st
from bmprov.stages.base import ActionContext, Outcome, PowerRunner, Services, StageAction
from bmprov.stages.decommissioning import DecommissionAction
from bmprov.stages.deployed import BootFromDisk
from bmprov.stages.networking import NetworkingAction
from bmprov.stages.os_provisioning import PowerOnProvisioning

REGISTRY: dict[str, type[StageAction]] = {
    st.NETWORKING: NetworkingAction,
    st.OS_PROVISIONING: PowerOnProvisioning,
    st.DEPLOYED: BootFromDisk,
    st.DECOMMISSIONING: DecommissionAction,
}
"""Stage → the action that runs when nodes enter it."""


def action_for(stage: str, ctx: ActionContext) -> StageAction | None:
    """A new instance of ``stage``'s action for one batch, or None if it has none.

    :raises ConfigError: the settings the action needs are invalid.
    """
    cls = REGISTRY.get(stage)
    return cls(ctx) if cls else None


__all__ = [
    "REGISTRY",
    "ActionContext",
    "Outcome",
    "PowerRunner",
    "Services",
    "StageAction",
    "action_for",
]
