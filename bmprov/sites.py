"""A host's ``site``: what a batch covers, and what one host must not do to another site's nodes.

A provisioning host sits on its site's layer-2 segment: its DHCP server, TFTP/HTTP boot tree and
BMC network serve that site only, while the inventory (the state) may be shared by every site.

* ``--all`` means every node *of this host's site*; ``--all-sites`` widens across sites.
* Work that only changes the shared inventory (``advance`` into a stage without an entry
  action, ``power status``) may cover any site.
* Work that writes this host's DHCP reservations or boot files, or commands BMCs (``advance``
  into networking/os_provisioning/deployed/decommissioning, ``power on|off|cycle|reset``,
  ``boot``, ``pxe render``, ``reconcile``), is refused for another site's nodes: it would
  reserve addresses on the wrong segment or write files no node of that site ever reads.

A node without a site (a sheet with no ``site`` column) belongs to whichever host acts on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from bmprov import states as st
from bmprov.errors import InputError
from bmprov.state_machine import AUTO_NEXT

if TYPE_CHECKING:
    from bmprov.nodes import Node, Selection

SHOWN = 3
"""Serials named in a refusal; the rest are counted."""

HOST_WORK = {
    st.NETWORKING: "reserves addresses in this host's DHCP server and writes its boot files",
    st.OS_PROVISIONING: "writes this host's boot files and power-cycles the BMCs",
    st.DEPLOYED: "writes this host's boot files and sets the BMCs' boot device",
    st.DECOMMISSIONING: "removes this host's DHCP reservations and boot files",
}
"""Stage → what entering it does on this host (the stages with an entry action)."""


def host_work(target: str) -> str | None:
    """What entering ``target`` (and the stages it carries nodes on to) does on this host, or
    None when the move only changes the shared inventory."""
    stage: str | None = target
    while stage is not None:
        if stage in HOST_WORK:
            return f"enters {stage}, which {HOST_WORK[stage]}"
        stage = AUTO_NEXT.get(stage)
    return None


def within(selection: Selection, home: str | None) -> Selection:
    """``selection`` kept to ``home`` (the config's ``site``) unless it names serials, a
    ``--site`` or ``--all-sites``: on a host that shares its state with other sites,
    ``--all`` or ``--from mounting`` mean this site's nodes."""
    if selection.site and selection.all_sites:
        raise InputError("give --site or --all-sites, not both")
    widened = selection.site or selection.serials or selection.all_sites
    if home and not selection.is_empty() and not widened:
        return replace(selection, site=home)
    return selection


def foreign(nodes: Iterable[Node], home: str | None) -> list[Node]:
    """The nodes that belong to another site than ``home`` (none when the host names no site)."""
    if not home:
        return []
    return [n for n in nodes if n.site and n.site != home]


def refuse_foreign(nodes: Iterable[Node], home: str | None, command: str, why: str) -> None:
    """:class:`InputError` when any of ``nodes`` belongs to another site than ``home``.

    ``why`` says what the command does on this host (``"writes this host's DHCP..."``).
    """
    away = foreign(nodes, home)
    if not away:
        return
    sites = ", ".join(sorted({str(n.site) for n in away}))
    named = ", ".join(n.serial for n in away[:SHOWN])
    if len(away) > SHOWN:
        named += f" and {len(away) - SHOWN} more"
    raise InputError(
        f"{command}: {len(away)} node(s) at site {sites} ({named}), not this host's site "
        f"{home}: it {why}; run it on that site's host (--all-sites only widens commands "
        "that change nothing but the shared inventory)"
    )


def host_scope(
    home: str | None, site: str | None, all_sites: bool, command: str, why: str
) -> str | None:
    """The site a command that works on this host's peers covers: ``site``, else ``home``.

    Another site (``--site OTHER``) or every site (``--all-sites``) is refused when the host
    names its own site: the command ``why``.
    """
    if site and all_sites:
        raise InputError("give --site or --all-sites, not both")
    if not home:
        return site
    if all_sites or (site and site != home):
        asked = "--all-sites" if all_sites else f"--site {site}"
        raise InputError(
            f"{command} {asked}: this host serves site {home} and the command {why}; "
            "run it on each site's own host"
        )
    return home
