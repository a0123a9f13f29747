"""IP address management: pools from the config, lowest-free allocation, release.

Pools come from ``[[pools]]`` (name, site, optional rack, subnet, gateway, dns, range, exclude,
reserved); with none, one default pool is built from ``[network]``. A node gets the pool that
names its site *and* rack, else its site's pool, else a pool without a site.

netaddr parses and validates the config once; allocation itself is integer arithmetic over
pre-computed free intervals (the IPSet loop is ~40x slower), so 60,000 addresses in a /16 take a
few tens of milliseconds. Uniqueness is the state file's job: ``nodes.ip`` is UNIQUE and the
choice is made and written inside one ``BEGIN IMMEDIATE`` transaction, so two concurrent
allocators serialise and can never hand out the same address.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import netaddr

from bmprov import validate
from bmprov.config import Config
from bmprov.errors import ConfigError
from bmprov.nodes import Node
from bmprov.store import Store

Interval = tuple[int, int]
"""An inclusive range of IPv4 addresses as integers."""


def ip_to_int(text: str) -> int:
    """``10.0.0.1`` → 167772161 (the text must already be a valid dotted quad)."""
    value: int = struct.unpack("!I", socket.inet_aton(text))[0]
    return value


def ip_ok(text: str) -> bool:
    """True for a dotted-quad IPv4 address."""
    try:
        socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError):
        return False
    return True


def int_to_ip(value: int) -> str:
    """167772161 → ``10.0.0.1`` (``inet_ntoa``: ~5x faster than ``str(IPAddress)``)."""
    return socket.inet_ntoa(struct.pack("!I", value))


@dataclass(frozen=True)
class Pool:
    """One allocation pool, with everything that may never be handed out already removed."""

    name: str
    subnet: str
    gateway: str | None
    dns: tuple[str, ...]
    site: str | None = None
    rack: str | None = None
    free: tuple[Interval, ...] = ()  # allocatable intervals, sorted, disjoint
    first: int = 0  # network address
    last: int = 0  # broadcast address

    def contains(self, ip: str) -> bool:
        """True when ``ip`` lies inside this pool's subnet."""
        try:
            return self.first <= ip_to_int(ip) <= self.last
        except OSError:
            return False

    @property
    def prefixlen(self) -> int:
        """The subnet's prefix length."""
        return int(self.subnet.rsplit("/", 1)[1])

    @property
    def netmask(self) -> str:
        """The subnet mask in dotted form."""
        return int_to_ip((0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF)

    def size(self) -> int:
        """How many addresses this pool can hand out when nothing is used."""
        return sum(hi - lo + 1 for lo, hi in self.free)

    def addresses(self, used: set[int]) -> Iterator[int]:
        """Free addresses, lowest first, skipping ``used`` (read live: the set may grow)."""
        for lo, hi in self.free:
            for value in range(lo, hi + 1):
                if value not in used:
                    yield value


class PoolError(ConfigError):
    """A ``[[pools]]`` entry (or ``[network]``) is not usable."""


def subtract(intervals: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus ``holes``, both inclusive; O((n + m) log m)."""
    cut = sorted(holes)
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        start = lo
        for h_lo, h_hi in cut:
            if h_hi < start or h_lo > hi:
                continue
            if h_lo > start:
                out.append((start, h_lo - 1))
            start = max(start, h_hi + 1)
            if start > hi:
                break
        if start <= hi:
            out.append((start, hi))
    return out


def _parse_span(text: str, where: str) -> Interval:
    """``a.b.c.d``, ``a.b.c.d-e.f.g.h`` or a CIDR as an inclusive integer interval."""
    validate.reject_control(text)
    try:
        if "-" in text:
            lo_s, hi_s = (p.strip() for p in text.split("-", 1))
            lo, hi = int(netaddr.IPAddress(lo_s, 4)), int(netaddr.IPAddress(hi_s, 4))
        elif "/" in text:
            net = netaddr.IPNetwork(text.strip(), version=4)
            lo, hi = int(net.first), int(net.last)
        else:
            lo = hi = int(netaddr.IPAddress(text.strip(), 4))
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PoolError(f"{where}: {text!r} is not an IPv4 address, range or CIDR") from None
    if lo > hi:
        raise PoolError(f"{where}: range {text!r} ends before it starts")
    return lo, hi


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PoolError(f"{where}: must be an IPv4 address string")
    lo, hi = _parse_span(value, where)
    if lo != hi:
        raise PoolError(f"{where}: {value!r} must be a single address")
    return int_to_ip(lo)


def build_pool(raw: dict[str, Any], where: str, implicit: Iterable[str] = ()) -> Pool:
    """A :class:`Pool` from one config table; ``implicit`` addresses are reserved too."""
    name = str(raw.get("name", "default"))
    try:
        net = netaddr.IPNetwork(str(raw.get("subnet", "")), version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise PoolError(f"{where}.subnet: {raw.get('subnet')!r} is not an IPv4 CIDR") from None
    if net.ip != net.network:
        raise PoolError(f"{where}.subnet: {raw['subnet']!r} has host bits set (use {net.cidr})")
    problem = validate.provisioning_network_problem(str(net.cidr))
    if problem:
        raise PoolError(f"{where}.subnet: {net.cidr} {problem}")
    first, last = int(net.first), int(net.last)
    inside = (first + 1, last - 1) if net.prefixlen < 31 else (first, last)
    gateway = _address(raw["gateway"], f"{where}.gateway") if raw.get("gateway") else None
    span = _span(raw.get("range"), f"{where}.range") if raw.get("range") else inside
    if span[0] < first or span[1] > last:
        text = f"{int_to_ip(span[0])}-{int_to_ip(span[1])}"
        raise PoolError(f"{where}.range: {text} is outside {net}")
    holes = [_parse_span(str(x), f"{where}.exclude") for x in raw.get("exclude", [])]
    holes += [_parse_span(str(x), f"{where}.reserved") for x in raw.get("reserved", [])]
    holes += [(ip_to_int(a), ip_to_int(a)) for a in (gateway, *implicit) if a and ip_ok(a)]
    if gateway and not first <= ip_to_int(gateway) <= last:
        raise PoolError(f"{where}.gateway: {gateway} is outside {net.cidr}")
    free = subtract([(max(span[0], inside[0]), min(span[1], inside[1]))], holes)
    dns = tuple(_address(d, f"{where}.dns") for d in raw.get("dns", []))
    site, rack = raw.get("site"), raw.get("rack")
    return Pool(name, str(net.cidr), gateway, dns, site, rack, tuple(free), first, last)


def _span(value: Any, where: str) -> Interval:
    if isinstance(value, list) and len(value) == 2:
        return _parse_span(f"{value[0]}-{value[1]}", where)
    if isinstance(value, str):
        return _parse_span(value, where)
    raise PoolError(f'{where}: use ["first", "last"] or "first-last"')


def load_pools(config: Config) -> list[Pool]:
    """The configured pools, or one default pool from ``[network]``.

    :raises PoolError: naming the config file and the key (``pools[1].range``...).
    """
    try:
        return _load_pools(config)
    except PoolError as exc:
        if config.path is None:
            raise
        raise PoolError(f"{config.path}: {exc}") from None


def _load_pools(config: Config) -> list[Pool]:
    raw_pools = config.raw.get("pools") or []
    network = config.settings.network
    server = network.server_address
    implicit = [server] if server else []  # the provisioning server is never handed out
    if raw_pools:
        pools = [build_pool(p, f"pools[{i}]", implicit) for i, p in enumerate(raw_pools)]
        names = [p.name for p in pools]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise PoolError(f"pools: name {sorted(dup)[0]!r} is used twice")
        _check_overlap(pools)
        return pools
    if not network.subnet:
        raise PoolError("no [[pools]] and no [network] subnet: nothing to allocate from")
    raw: dict[str, Any] = {"subnet": network.subnet}
    if network.gateway:
        raw["gateway"] = network.gateway
    if network.dns:
        raw["dns"] = list(network.dns)
    return [build_pool(raw, "network", implicit)]


def _check_overlap(pools: list[Pool]) -> None:
    """Two pools may share a subnet, never an allocatable address (one sweep, no pairs)."""
    spans = sorted((lo, hi, i) for i, pool in enumerate(pools) for lo, hi in pool.free)
    reach, owner = -1, -1
    for lo, hi, i in spans:
        if lo <= reach and owner != i:
            a, b = sorted((i, owner))
            raise PoolError(
                f"pools[{a}] ({pools[a].name}) and pools[{b}] ({pools[b].name}) both hand out"
                f" {int_to_ip(lo)}-{int_to_ip(min(hi, reach))}; split them with range or exclude"
            )
        if hi > reach:
            reach, owner = hi, i


def pool_for(pools: list[Pool], node: Node) -> Pool | None:
    """Rack pool (site and rack match) beats site pool beats a pool without a site."""
    best: tuple[int, Pool] | None = None
    for pool in pools:
        if pool.site is not None and pool.site != node.site:
            continue
        if pool.rack is not None and pool.rack != node.rack:
            continue
        rank = (pool.rack is not None) * 2 + (pool.site is not None)
        if best is None or rank > best[0]:
            best = (rank, pool)
    return best[1] if best else None


@dataclass
class Allocation:
    """The outcome of one batch: node id → address, or node id → reason."""

    ips: dict[int, str] = field(default_factory=dict)
    new: set[int] = field(default_factory=set)  # ids whose address was chosen by this batch
    errors: dict[int, str] = field(default_factory=dict)


def allocate(db: Store, pools: list[Pool], nodes: list[Node]) -> Allocation:
    """Give every node an address in one transaction; nodes that have one keep it.

    Lowest free address first, deterministic (nodes in the order given). An exhausted pool or
    a node with no matching pool is recorded in ``errors``; the other nodes still get theirs.
    """
    result = Allocation()
    with db.atomic():
        held = db.held_addresses()
        used = {ip_to_int(ip) for ip in held.values()}
        cursors: dict[str, Iterator[int]] = {}
        updates: list[tuple[int, str]] = []
        for node in nodes:
            if node.id in held:
                result.ips[node.id] = held[node.id]
                continue
            pool = pool_for(pools, node)
            if pool is None:
                result.errors[node.id] = f"no pool for site {node.site!r} rack {node.rack!r}"
                continue
            cursor = cursors.setdefault(pool.name, pool.addresses(used))
            value = next(cursor, None)
            if value is None:
                result.errors[node.id] = f"pool {pool.name} ({pool.subnet}) is exhausted"
                continue
            used.add(value)
            ip = int_to_ip(value)
            result.ips[node.id] = ip
            result.new.add(node.id)
            updates.append((node.id, ip))
        db.assign_addresses(updates)
    return result


def release(db: Store, node_ids: Iterable[int]) -> None:
    """Free the addresses of these nodes (one transaction)."""
    db.release_addresses(node_ids)
