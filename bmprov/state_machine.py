"""The lifecycle transition table, as data.

Every allowed (from, to) pair is listed once with the reason it exists. Anything not listed is
refused by :func:`check_transition` with a message naming what *is* allowed.
"""

from __future__ import annotations

from bmprov import states as st
from bmprov.errors import TransitionError

TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (st.PURCHASING, st.MOUNTING),  # delivered: racking starts
        (st.MOUNTING, st.PURCHASING),  # sent back to the vendor before racking finished
        (st.MOUNTING, st.NETWORKING),  # racked and cabled: set up IP, DHCP, boot files
        (st.DISCOVERY, st.MOUNTING),  # discovery boot matched the machine to a sheet row
        (st.NETWORKING, st.OS_PROVISIONING),  # entry action of networking succeeded
        (st.OS_PROVISIONING, st.INSTALLING),  # installer called back: it is running
        (st.OS_PROVISIONING, st.NETWORKING),  # re-render network and boot files
        (st.INSTALLING, st.DEPLOYED),  # installer finished; boot entry switched to local
        (st.INSTALLING, st.OS_PROVISIONING),  # installer aborted: boot it again
        (st.DEPLOYED, st.NETWORKING),  # reinstall: set it up again from the top
        (st.DEPLOYED, st.DECOMMISSIONING),  # leaving service
        (st.DECOMMISSIONING, st.WIPING),  # reservations released; erase the disks
        (st.WIPING, st.RETIRED),  # gone
        # Any working stage can fail; a failed node can be retried where it stopped,
        # sent back one step, or taken out of service.
        *(
            (stage, st.FAILED)
            for stage in (
                st.MOUNTING,
                st.NETWORKING,
                st.OS_PROVISIONING,
                st.INSTALLING,
                st.DECOMMISSIONING,
                st.WIPING,
                st.DISCOVERY,
            )
        ),
        *(
            (st.FAILED, stage)
            for stage in (
                st.PURCHASING,
                st.MOUNTING,
                st.NETWORKING,
                st.OS_PROVISIONING,
                st.DECOMMISSIONING,
                st.WIPING,
            )
        ),
    }
)

AUTO_NEXT: dict[str, str] = {
    st.NETWORKING: st.OS_PROVISIONING,
    st.DECOMMISSIONING: st.WIPING,
}
"""Transient stage → the stage its successful entry action moves the node on to."""


def is_forward(frm: str, to: str, failed_stage: str | None = None) -> bool:
    """True for a move that carries work on (or retries a failed stage), not one that goes back.

    Broad batch selections (``--all``, ``--rack``...) only make forward moves; going back (a
    reinstall, a re-render) must name the node with ``--serial``.
    """
    if frm == st.FAILED:
        return to == failed_stage
    pipeline = st.PROVISIONING_PIPELINE
    if frm in pipeline and to in pipeline:
        return pipeline.index(to) > pipeline.index(frm)
    return to != st.PURCHASING


def allowed_targets(stage: str) -> list[str]:
    """The stages a node in ``stage`` may move to, sorted."""
    return sorted(to for frm, to in TRANSITIONS if frm == stage)


def is_allowed(frm: str, to: str) -> bool:
    """True when the table lists ``frm → to``."""
    return (frm, to) in TRANSITIONS


def check_transition(frm: str, to: str, serial: str | None = None) -> None:
    """Raise :class:`TransitionError` unless ``frm → to`` is in the table."""
    if to not in st.ALL_STAGES:
        raise TransitionError(f"unknown stage {to!r} (stages: {', '.join(sorted(st.ALL_STAGES))})")
    if is_allowed(frm, to):
        return
    who = f"node {serial}: " if serial else ""
    allowed = ", ".join(allowed_targets(frm)) or "none"
    raise TransitionError(f"{who}cannot go from {frm} to {to} (from {frm}: {allowed})")


def to_dot() -> str:
    """The table as a Graphviz digraph, for the docs."""
    lines = ["digraph bmprov {", "  rankdir=LR;"]
    lines += [f'  "{frm}" -> "{to}";' for frm, to in sorted(TRANSITIONS)]
    lines.append("}")
    return "\n".join(lines) + "\n"
