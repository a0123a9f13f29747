"""Lifecycle stage names, and nothing else (the transitions live in :mod:`state_machine`).

Ironic-style: constants with a docstring each, grouped into frozensets.
"""

from __future__ import annotations

PURCHASING = "purchasing"
"""Ordered; known from the procurement sheet only."""

MOUNTING = "mounting"
"""Delivered and being racked and cabled."""

NETWORKING = "networking"
"""Transient: IP, DHCP reservation, boot and install files are being set up."""

OS_PROVISIONING = "os_provisioning"
"""Boot files in place; the node is (to be) power-cycled into PXE."""

INSTALLING = "installing"
"""The installer has reported in and is running."""

DEPLOYED = "deployed"
"""Installed and booting from its local disk; its PXE entry is local-boot."""

FAILED = "failed"
"""A stage action failed; the reason and the stage it failed in are recorded."""

DISCOVERY = "discovery"
"""Booted a discovery image to be matched to a sheet row by serial."""

DECOMMISSIONING = "decommissioning"
"""Being taken out of service: reservations and boot files released."""

WIPING = "wiping"
"""Disks being erased before the node leaves."""

RETIRED = "retired"
"""Gone for good. Kept for history."""

PROVISIONING_PIPELINE = (
    PURCHASING,
    MOUNTING,
    NETWORKING,
    OS_PROVISIONING,
    INSTALLING,
    DEPLOYED,
)
"""The main path, in order."""

ALL_STAGES = frozenset(
    (*PROVISIONING_PIPELINE, FAILED, DISCOVERY, DECOMMISSIONING, WIPING, RETIRED)
)

STABLE_STAGES = frozenset(
    (PURCHASING, MOUNTING, OS_PROVISIONING, INSTALLING, DEPLOYED, FAILED, RETIRED, DISCOVERY)
)
"""Stages a node may rest in."""

TRANSIENT_STAGES = frozenset((NETWORKING, DECOMMISSIONING, WIPING))
"""Stages whose entry action carries the node on to a target stage."""
