"""The whole-column fast path agrees with the per-cell validators, cell for cell."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmprov import validate
from bmprov.importing import bulkcheck

# Cells drawn near the edges of validity: separators, padding, case, newlines, placeholders.
ALPHABET = "0123456789abcdefABCDEF:-._/ \n\tzZ"
cells = st.one_of(
    st.text(alphabet=ALPHABET, max_size=20),
    st.sampled_from(
        [
            "",
            "52:54:00:12:34:56",
            "5254.0012.3456",
            "525400123456",
            "01:00:5e:00:00:01",
            "000000000000",
            "To Be Filled By O.E.M.",
            "0000",
            "SN-1",
            "Node1.Example.COM",
            "10.0.0.1:623",
            "bmc.example:70000",
            "256.1.1.1",
            "a" * 70,
            "-x",
            "host-",
        ]
    ),
)


def per_cell(fn: Callable[[str], Any], texts: list[str]) -> list[Any] | None:
    out: list[Any] = []
    for t in texts:
        if not t:
            out.append(None)
            continue
        try:
            out.append(fn(t))
        except ValueError:
            return None
    return out


PAIRS = [
    (bulkcheck.serials, validate.serial),
    (bulkcheck.hostnames, validate.hostname),
    (bulkcheck.macs, validate.macs),
    (bulkcheck.asset_tags, validate.asset_tag),
    (bulkcheck.bmc_addresses, validate.bmc_address),
]


@pytest.mark.parametrize(("bulk", "single"), PAIRS, ids=[b.__name__ for b, _ in PAIRS])
@settings(max_examples=300, deadline=None)
@given(texts=st.lists(cells, max_size=6))
def test_bulk_result_equals_per_cell_result(bulk, single, texts: list[str]) -> None:
    fast = bulk(texts)
    if fast is None:
        return  # the importer falls back to per-cell validation: always safe
    expected = per_cell(single, texts)
    if bulk is bulkcheck.macs and expected is not None:
        expected = [tuple(m) if m else None for m in expected]
    assert fast == expected


def test_bulk_accepts_the_common_case() -> None:
    assert bulkcheck.macs(["52-54-00-AB-CD-EF", ""]) == [("52:54:00:ab:cd:ef",), None]
    assert bulkcheck.serials(["SN1", "", "CZ0001"]) == ["SN1", None, "CZ0001"]
    assert bulkcheck.hostnames(["Node1.DC1"]) == ["node1.dc1"]
    assert bulkcheck.bmc_addresses(["10.0.0.1:623", "bmc1"]) == ["10.0.0.1:623", "bmc1"]
    # A line whose first alternative matches only a prefix (IPv4 vs host name) still passes:
    # the possessive column pattern must not give up on it.
    assert bulkcheck.bmc_addresses(["10.0.0.1.example", ""]) == ["10.0.0.1.example", None]
    assert bulkcheck.macs(["5254.00ab.cdef", "525400ABCDEF"]) == [
        ("52:54:00:ab:cd:ef",),
        ("52:54:00:ab:cd:ef",),
    ]


def test_bulk_column_of_100000_lines_is_one_cheap_pass() -> None:
    texts = [
        f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}" for i in range(100_000)
    ]
    tracemalloc.start()
    try:
        values = bulkcheck.macs(texts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert values is not None and len(values) == 100_000
    assert peak < 40 * 2**20  # a backtracking point per line once cost 100 MB here


@pytest.mark.parametrize("cell", ["01:00:5e:00:00:01", "000000000000", "aa:bb", "x\ny"])
def test_bulk_defers_anything_doubtful(cell: str) -> None:
    assert bulkcheck.macs(["52:54:00:00:00:01", cell]) is None
