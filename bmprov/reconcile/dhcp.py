"""The DHCP plane: the reservations bmprov expects (every node holding an address) against the
ones the server really holds.

Kinds: ``missing`` (fixed: re-added), ``wrong_ip`` and ``wrong_mac`` (reported: bmprov never
overwrites a reservation it did not make), ``duplicate_ip`` (one address on two MACs;
reported), ``orphan`` (a reservation no node of bmprov should have: removed only with
``--prune``), ``unreachable`` (the server did not answer). OMAPI cannot list hosts: every MAC
bmprov knows is looked up (pipelined), and orphans come from dhcpd's files when readable
(:mod:`.dhcpd_files`), else a note says they were not checked. dnsmasq, Kea and the file
backend are read whole from their files.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from bmprov.dhcp import DhcpBackend, DhcpSettings, Reservation, open_backend
from bmprov.dhcp.table import TableBackend
from bmprov.errors import BmprovError
from bmprov.nodes import Node
from bmprov.reconcile.dhcpd_files import read_hosts
from bmprov.reconcile.findings import Context, Finding
from bmprov.store import Addressed

log = logging.getLogger(__name__)
PLANE = "dhcp"


@dataclass
class ServerView:
    """What the DHCP server holds, read before the comparison (in a prefetch thread)."""

    settings: DhcpSettings
    backend: DhcpBackend
    held: dict[str, Reservation] = field(default_factory=dict)
    orphans_known: bool = False
    notes: list[str] = field(default_factory=list)
    error: BmprovError | None = None


def read_server(ctx: Context) -> ServerView:
    """Connect and read every reservation that matters (no state-file access: it runs in a
    thread while the boot plane renders, since OMAPI lookups mostly wait for dhcpd)."""
    settings = DhcpSettings.from_config(ctx.config)
    backend = open_backend(settings)
    backend.check()
    view = ServerView(settings, backend)
    if not (ctx.fix or ctx.prune) and isinstance(backend, TableBackend):
        # Read-only: the files as they are (each is replaced by rename, never half-written),
        # without open(), which creates the store's lock file and removes dead runs' temps.
        try:
            view.held, view.orphans_known = {r.mac: r for r in backend._load()}, True
        except BmprovError as exc:
            view.error = exc
        return view
    try:
        backend.open()
    except BmprovError as exc:
        view.error = exc
        return view
    owner = {mac for node in ctx.all_nodes for mac in node.macs}
    try:
        view.held, view.orphans_known = _held(ctx, view, owner)
    except BmprovError as exc:
        backend.close()
        view.error = exc
    return view


def check_reservations(ctx: Context) -> Iterator[Finding]:
    """Expected vs held reservations; see the module docstring."""
    view = ctx.prefetched("dhcp", read_server)
    ctx.notes += view.notes
    if view.error is not None:
        yield Finding(None, PLANE, "unreachable", view.settings.backend, str(view.error))
        return
    in_scope = {n.id for n in ctx.nodes}
    expected = {a.mac: a for a in ctx.db.addressed() if a.node_id in in_scope}
    owner = {mac: node for node in ctx.all_nodes for mac in node.macs}
    backend = view.backend
    try:
        backend.claim({r.ip: r.mac for r in view.held.values()})
        yield from _compare(ctx, view, expected, owner)
        if ctx.fix or ctx.prune:
            backend.commit()
    finally:
        backend.close()


def _held(ctx: Context, view: ServerView, owner: set[str]) -> tuple[dict[str, Reservation], bool]:
    """mac → what the server holds; and whether that covers MACs bmprov does not know."""
    backend, settings = view.backend, view.settings
    if backend.kind != "omapi":
        return {r.mac: r for r in backend.list()}, True
    from bmprov.dhcp.omapi import OmapiBackend  # noqa: PLC0415
    from bmprov.dhcp.omapi_lookup import lookup_many  # noqa: PLC0415

    assert isinstance(backend, OmapiBackend)  # noqa: S101
    scope_macs = [m for n in ctx.nodes for m in n.macs]
    held = {m: r for m, r in lookup_many(backend, scope_macs).items() if r is not None}
    sub = settings.sub("omapi")
    paths = [settings.config.resolve(sub[k]) for k in ("config_file", "leases_file") if sub.get(k)]
    if not paths:
        view.notes.append(
            "dhcp: orphan reservations not checked: OMAPI cannot list hosts; set "
            "[dhcp.omapi] leases_file (and config_file) to dhcpd's files to check them"
        )
        return held, False
    from_files, unreadable = read_hosts(paths)
    if unreadable:
        view.notes.append(
            f"dhcp: orphan reservations not checked: unreadable: {'; '.join(unreadable)}"
        )
        return held, False
    for mac, res in from_files.items():
        if mac not in owner:  # a MAC bmprov knows was looked up: OMAPI is the authority
            held[mac] = res
    return held, True


def _compare(
    ctx: Context, view: ServerView, expected: dict[str, Addressed], owner: dict[str, Node]
) -> Iterator[Finding]:
    backend, held = view.backend, view.held
    by_ip: dict[str, list[str]] = defaultdict(list)
    for mac, res in held.items():
        if res.ip:
            by_ip[res.ip].append(mac)
    in_scope = {n.id for n in ctx.nodes}
    for mac, want in expected.items():
        node = owner[mac]
        have = held.get(mac)
        if have is not None and have.ip == want.ip:
            continue  # the common case: no Reservation built or validated
        holders = [m for m in by_ip.get(want.ip, ()) if m != mac]
        if have is None:
            if holders:
                yield Finding(
                    node.serial,
                    PLANE,
                    "wrong_mac",
                    f"{mac} → {want.ip}",
                    f"{holders[0]} → {want.ip}",
                    note="the address is reserved for another MAC; not overwritten",
                )
                continue
            yield _fix_missing(ctx, view, node, want)
        elif have.ip != want.ip:
            yield Finding(
                node.serial,
                PLANE,
                "wrong_ip",
                f"{mac} → {want.ip}",
                f"{mac} → {have.ip or 'no address'}",
                note="reserved by hand or by another tool; not overwritten",
            )
    for ip, macs in sorted(by_ip.items()):
        if len(macs) > 1:
            nodes = sorted(owner[m].serial for m in macs if m in owner)
            yield Finding(
                nodes[0] if nodes else None,
                PLANE,
                "duplicate_ip",
                f"{ip} on one MAC",
                f"{ip} on {', '.join(sorted(macs))}",
            )
    if not view.orphans_known:
        return
    for mac, res in sorted(held.items()):
        if mac in expected:
            continue
        holder = owner.get(mac)
        if holder is not None and holder.id not in in_scope:
            continue  # another site's node: its own run judges it
        yield _orphan(ctx, backend, holder, res)


def _fix_missing(ctx: Context, view: ServerView, node: Node, want: Addressed) -> Finding:
    finding = Finding(node.serial, PLANE, "missing", f"{want.mac} → {want.ip}", None)
    if not ctx.fix:
        return finding
    try:
        res = view.settings.reservation(want.mac, want.ip, want.serial, want.hostname)
        view.backend.add(res)
    except BmprovError as exc:
        finding.note = f"not re-added: {exc}"
        return finding
    finding.fixed, finding.note = True, "re-added"
    ctx.fixed(node, f"DHCP reservation {want.mac} → {want.ip} re-added")
    return finding


def _orphan(ctx: Context, backend: DhcpBackend, node: Node | None, res: Reservation) -> Finding:
    why = "a node that holds no address" if node else "a MAC no node has"
    finding = Finding(
        node.serial if node else None,
        PLANE,
        "orphan",
        None,
        f"{res.mac} → {res.ip or 'no address'} ({res.name or 'unnamed'}): {why}",
    )
    if not ctx.prune:
        finding.note = "remove with --prune"
        return finding
    foreign = _foreign_file(backend, res.mac)
    if foreign:
        finding.note = foreign
        return finding
    try:
        backend.remove(res.mac)
    except BmprovError as exc:
        finding.note = f"not removed: {exc}"
        return finding
    finding.fixed, finding.note = True, "removed (--prune)"
    if node is not None:
        ctx.fixed(node, f"orphan DHCP reservation {res.mac} → {res.ip} removed")
    return finding


def _foreign_file(backend: DhcpBackend, mac: str) -> str | None:
    """Why a dnsmasq host line cannot be pruned: it is in a file bmprov did not write (which
    may hold other lines), or None."""
    from bmprov.dhcp.dnsmasq import DnsmasqBackend  # noqa: PLC0415

    if isinstance(backend, DnsmasqBackend) and not backend.path_for(mac).exists():
        return f"not removed: its line is in a file of {backend.hostsdir} bmprov did not write"
    return None
