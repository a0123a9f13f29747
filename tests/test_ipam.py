"""IP allocation: pools, precedence, lowest-free, never twice, exhaustion, concurrency."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmprov import ipam
from bmprov.config import Config
from bmprov.nodes import Node, list_nodes
from bmprov.store import StateDB, Store, open_url

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)


def add_nodes(db: Store, count: int, start: int = 0, **fields: str) -> list[Node]:
    rows = [
        (f"SN{i:06d}", fields.get("site"), fields.get("rack")) for i in range(start, start + count)
    ]
    db.insert_nodes(("serial", "site", "rack"), rows, [()] * count, "networking", "test", "test")
    serials = {r[0] for r in rows}
    return [n for n in list_nodes(db) if n.serial in serials]


@pytest.fixture
def db(store: Store) -> Store:
    return store


def pool(**raw) -> ipam.Pool:
    return ipam.build_pool({"name": "p", **raw}, "pools[0]")


def test_default_pool_from_network_skips_network_gateway_server_broadcast() -> None:
    config = Config(
        None,
        {
            "network": {
                "subnet": "10.231.0.0/29",
                "gateway": "10.231.0.1",
                "server_address": "10.231.0.2",
                "dns": ["10.231.0.2"],
            }
        },
    )
    (p,) = ipam.load_pools(config)
    assert list(map(ipam.int_to_ip, p.addresses(set()))) == [
        "10.231.0.3",
        "10.231.0.4",
        "10.231.0.5",
        "10.231.0.6",
    ]


def test_range_exclude_reserved() -> None:
    p = pool(
        subnet="10.231.0.0/24",
        range=["10.231.0.10", "10.231.0.20"],
        exclude=["10.231.0.12-10.231.0.14", "10.231.0.16/31"],
        reserved=["10.231.0.19"],
    )
    got = [ipam.int_to_ip(v) for v in p.addresses(set())]
    assert got == ["10.231.0.10", "10.231.0.11", "10.231.0.15", "10.231.0.18", "10.231.0.20"]


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"subnet": "10.231.0.1/24"}, "host bits"),
        ({"subnet": "nonsense"}, "not an IPv4 CIDR"),
        ({"subnet": "10.231.0.0/24", "range": ["10.231.1.1", "10.231.1.9"]}, "outside"),
        ({"subnet": "10.231.0.0/24", "gateway": "10.9.9.9"}, "outside"),
        ({"subnet": "10.231.0.0/24", "exclude": ["10.231.0.9-10.231.0.1"]}, "ends before"),
    ],
)
def test_bad_pool_is_a_clear_config_error(raw, needle) -> None:
    with pytest.raises(ipam.PoolError, match=needle):
        pool(**raw)


def test_rack_pool_beats_site_pool_beats_default() -> None:
    config = Config(
        None,
        {
            "pools": [
                {"name": "any", "subnet": "10.231.0.0/24"},
                {"name": "site", "site": "dc1", "subnet": "10.231.1.0/24"},
                {"name": "rack", "site": "dc1", "rack": "r1", "subnet": "10.231.2.0/24"},
            ]
        },
    )
    pools = ipam.load_pools(config)
    node = Node(1, "S", "networking", site="dc1", rack="r1")
    assert ipam.pool_for(pools, node).name == "rack"
    assert ipam.pool_for(pools, replace(node, rack="r2")).name == "site"
    assert ipam.pool_for(pools, replace(node, site="dc2")).name == "any"


def test_allocate_lowest_first_keeps_existing_and_fails_exhausted(db) -> None:
    nodes = add_nodes(db, 5)
    pools = [pool(subnet="10.231.0.0/29")]  # 6 hosts
    first = ipam.allocate(db, pools, nodes[:2])
    assert list(first.ips.values()) == ["10.231.0.1", "10.231.0.2"]
    again = ipam.allocate(db, pools, nodes)
    assert again.ips[nodes[0].id] == "10.231.0.1"  # kept, not re-chosen
    assert again.new == {n.id for n in nodes[2:]}
    more = add_nodes(db, 3, start=100)
    last = ipam.allocate(db, pools, more)
    assert len(last.ips) == 1
    assert len(last.errors) == 2
    assert "exhausted" in next(iter(last.errors.values()))


def test_release_frees_the_address_for_the_next_node(db) -> None:
    nodes = add_nodes(db, 2)
    pools = [pool(subnet="10.231.0.0/24")]
    ipam.allocate(db, pools, nodes[:1])
    ipam.release(db, [nodes[0].id])
    assert ipam.allocate(db, pools, nodes[1:]).ips[nodes[1].id] == "10.231.0.1"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    used=st.sets(st.integers(0, 63), max_size=30),
    excluded=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 8)), max_size=4),
    reserved=st.sets(st.integers(0, 63), max_size=6),
    want=st.integers(1, 70),
)
def test_never_hands_out_used_excluded_or_reserved(
    tmp_path_factory, used, excluded, reserved, want
) -> None:
    base = int(ipaddress.IPv4Address("10.231.7.0"))
    ip = lambda v: str(ipaddress.IPv4Address(base + v))  # noqa: E731
    p = pool(
        subnet="10.231.7.0/26",
        gateway=ip(1),
        exclude=[f"{ip(a)}-{ip(min(a + n, 63))}" for a, n in excluded],
        reserved=[ip(r) for r in reserved],
    )
    with StateDB(tmp_path_factory.mktemp("h") / "s.sqlite") as db:
        holders = add_nodes(db, len(used), start=10_000)
        db.assign_addresses((n.id, ip(v)) for v, n in zip(sorted(used), holders, strict=True))
        result = ipam.allocate(db, [p], add_nodes(db, want))
    blocked = set(used) | set(reserved) | {0, 1, 63}
    blocked |= {v for a, n in excluded for v in range(a, min(a + n, 63) + 1)}
    free = [v for v in range(64) if v not in blocked]
    got = [int(ipaddress.IPv4Address(x)) - base for x in result.ips.values()]
    assert got == free[:want]  # lowest first, nothing blocked, nothing twice
    assert len(result.errors) == max(0, want - len(free))


def test_two_concurrent_allocators_never_collide(store: Store, state_location: str) -> None:
    with store as db:
        batches = [add_nodes(db, 300, start=i * 1000) for i in range(4)]
    pools = [pool(subnet="10.231.0.0/16")]
    errors: list[BaseException] = []

    def run(nodes: list[Node]) -> None:
        try:
            with open_url(state_location) as own:
                for i in range(0, len(nodes), 30):
                    ipam.allocate(own, pools, nodes[i : i + 30])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_url(state_location) as db:
        ips = list(db.held_addresses().values())
    assert len(ips) == len(set(ips)) == 1200
