"""Bulk NLRI coding: against a slow reference decoder, on both paths, and against the clock."""

from __future__ import annotations

import os
import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.bgp.errors import BGPError
from controlplane.bgp.nlri import decode_nlri, encode_nlri, nlri_size
from controlplane.prefix import format_prefix, make_key, parse_prefix

BITS = {1: 32, 2: 128}


def reference(data: bytes, afi: int) -> list[int]:
    """One prefix at a time, the obvious way."""
    bits = BITS[afi]
    keys = []
    i = 0
    while i < len(data):
        length = data[i]
        size = (length + 7) // 8
        address = int.from_bytes(data[i + 1 : i + 1 + size].ljust(bits // 8, b"\x00"), "big")
        keys.append(make_key(afi, address, length))
        i += 1 + size
    return keys


def records(afi: int, same_length: bool) -> st.SearchStrategy[bytes]:
    bits = BITS[afi]

    def record(length: int) -> st.SearchStrategy[bytes]:
        return st.binary(min_size=(length + 7) // 8, max_size=(length + 7) // 8).map(
            lambda a: bytes([length]) + a
        )

    if same_length:
        return st.integers(0, bits).flatmap(lambda n: st.lists(record(n), max_size=60)).map(b"".join)
    return st.lists(st.integers(0, bits).flatmap(record), max_size=60).map(b"".join)


@settings(max_examples=400)
@given(st.sampled_from([1, 2]), st.booleans(), st.data())
def test_decode_matches_reference(afi: int, same_length: bool, data: st.DataObject) -> None:
    raw = data.draw(records(afi, same_length))
    expected = reference(raw, afi)
    assert decode_nlri(raw, afi) == expected
    assert decode_nlri(memoryview(raw), afi) == expected
    assert decode_nlri(encode_nlri(expected, afi), afi) == expected
    assert len(encode_nlri(expected, afi)) == sum(nlri_size(key) for key in expected)


@given(st.sampled_from([1, 2]), st.data())
def test_host_bits_are_cleared(afi: int, data: st.DataObject) -> None:
    bits = BITS[afi]
    length = data.draw(st.integers(1, bits - 1).filter(lambda n: n % 8))
    octets = (length + 7) // 8
    raw = bytes([length]) + b"\xff" * octets
    (key,) = decode_nlri(raw * 3, afi)[:1]
    assert key == make_key(afi, (1 << bits) - 1, length)
    assert decode_nlri(raw + bytes([8, 1]), afi)[0] == key  # the slow path too


def test_known_prefixes() -> None:
    raw = bytes.fromhex("18c00002" + "080a" + "190a010280" + "00" + "20c0000201")
    texts = ["192.0.2.0/24", "10.0.0.0/8", "10.1.2.128/25", "0.0.0.0/0", "192.0.2.1/32"]
    assert [format_prefix(1, key) for key in decode_nlri(raw, 1)] == texts
    assert encode_nlri([parse_prefix(text)[1] for text in texts], 1) == raw
    assert decode_nlri(b"\x00\x00\x00", 1) == [0, 0, 0]
    assert decode_nlri(b"\x00\x00", 2) == [0, 0]
    assert decode_nlri(b"", 2) == []
    v6 = [parse_prefix(text)[1] for text in ("2001:db8::/32", "2001:db8:1:2::/64", "::1/128")]
    assert decode_nlri(encode_nlri(v6, 2), 2) == v6


@pytest.mark.parametrize(
    ("raw", "afi"),
    [
        ("21c0000201ff", 1),
        ("18c000", 1),
        ("18c0000218c000", 1),
        ("81" + "00" * 17, 2),
        ("4020010db8", 2),
        ("ff", 1),
    ],
)
def test_malformed_is_invalid_network_field(raw: str, afi: int) -> None:
    with pytest.raises(BGPError) as info:
        decode_nlri(bytes.fromhex(raw), afi)
    assert (info.value.code, info.value.subcode) == (3, 10)


def test_encode_refuses_bad_length() -> None:
    with pytest.raises(ValueError):
        encode_nlri([33], 1)
    with pytest.raises(ValueError):
        decode_nlri(b"", 3)


def test_decode_1000_slash24s_is_fast() -> None:
    raw = b"".join(bytes([24]) + os.urandom(3) for _ in range(1000))
    assert len(decode_nlri(raw, 1)) == 1000
    best = min(timeit.repeat(lambda: decode_nlri(raw, 1), number=200, repeat=5)) / 200
    print(f"decode_nlri: 1000 /24s in {best * 1e6:.1f} us")
    assert best < 100e-6
