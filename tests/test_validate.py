"""MAC normalisation and field validators: round trips and every bad notation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bmprov import validate

octets = st.lists(st.integers(0, 255), min_size=6, max_size=6).filter(
    lambda o: not (o[0] & 1) and any(o)  # unicast, non-zero
)


def notations(o: list[int]) -> list[str]:
    h = [f"{x:02x}" for x in o]
    bare = "".join(h)
    return [
        ":".join(h),
        ":".join(h).upper(),
        "-".join(h),
        "-".join(h).upper(),
        bare,
        bare.upper(),
        ".".join(bare[i : i + 4] for i in range(0, 12, 4)),
        f"  {':'.join(h)}  ",
    ]


@given(octets)
def test_every_notation_normalises_to_one_canonical_form(o: list[int]) -> None:
    canonical = ":".join(f"{x:02x}" for x in o)
    for text in notations(o):
        assert validate.mac(text) == canonical
    assert validate.mac(canonical) == canonical  # idempotent


@pytest.mark.parametrize(
    "bad",
    [
        "aabbccddeef",  # 11 digits (netaddr pads it)
        "aa:bb:cc:dd:ee:ff\n",  # trailing newline (netaddr's regex $ lets it through)
        "aa:bb:cc:dd:ee",  # 5 octets
        "aa:bb:cc:dd:ee:ff:00",  # 7 octets
        "aa:bb:cc:dd:ee:ff:00:11",  # EUI-64
        "a:b:c:d:e:f",  # short octets
        "aa-bb:cc-dd:ee-ff",  # mixed separators
        "aa bb cc dd ee ff",  # spaces
        "0xaabbccddeeff",
        "01-aa-bb-cc-dd-ee-ff",  # pxelinux file name form
        "gg:bb:cc:dd:ee:ff",
        "",
        "aabb:ccdd:eeff",
    ],
)
def test_bad_notations_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        validate.mac(bad)


@pytest.mark.parametrize("value", [1122334455, 2.0, None])
def test_non_text_mac_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="text"):
        validate.mac(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mac", "why"),
    [
        ("01:00:5e:00:00:01", "multicast"),
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("00:00:00:00:00:00", "zero"),
        ("33:33:00:00:00:01", "multicast"),
    ],
)
def test_non_nic_macs_are_rejected(mac: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate.mac(mac)


@given(st.text())
def test_mac_never_raises_anything_but_valueerror(text: str) -> None:
    try:
        result = validate.mac(text)
    except ValueError:
        return
    assert len(result) == 17 and result == result.lower()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "To Be Filled By O.E.M.",
        "to be filled by o.e.m.",
        "0123456789",
        "Default string",
        "N/A",
        "0000000",
        "XXXXXX",
        "SN 1",
        "SN1\n",
        "a" * 65,
        "-SN1",
        "SN1;rm",
    ],
)
def test_bad_serials(bad: str) -> None:
    with pytest.raises(ValueError):
        validate.serial(bad)


@pytest.mark.parametrize("good", ["CZ2000001", "1234567890123", "SN-01.a_b", "007"])
def test_good_serials_keep_leading_zeros(good: str) -> None:
    assert validate.serial(f" {good} ") == good


@pytest.mark.parametrize("bad", ["-a", "a-", "a..b", "a_b", "a" * 64, "é.example", "a b", ""])
def test_bad_hostnames(bad: str) -> None:
    with pytest.raises(ValueError):
        validate.hostname(bad)


def test_hostname_lowercases_and_accepts_fqdn() -> None:
    assert validate.hostname("Node-01.DC1.Example.NET.") == "node-01.dc1.example.net"


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), min_size=1))
def test_control_characters_are_refused_everywhere(ctrl: str) -> None:
    for fn in (
        validate.serial,
        validate.hostname,
        validate.notes,
        validate.model,
        validate.asset_tag,
        validate.bmc_address,
    ):
        with pytest.raises(ValueError):
            fn(f"ab{ctrl}cd")


def test_pxe_name() -> None:
    assert validate.pxe_mac_name("aa:bb:cc:dd:ee:ff") == "01-aa-bb-cc-dd-ee-ff"


def test_bmc_address_accepts_port_and_ipv6() -> None:
    assert validate.bmc_address("127.0.0.1:19001") == "127.0.0.1:19001"
    assert validate.bmc_address("fe80::1") == "fe80::1"
    assert validate.bmc_address("bmc-r01-u01.oob") == "bmc-r01-u01.oob"
    with pytest.raises(ValueError):
        validate.bmc_address("host:99999")
