"""Prefix keys in bulk: ``format_prefixes`` and ``widest`` agree with one-by-one formatting.

Route dumps format a million keys through table lookups and byte translation (``controlplane/prefix.py``);
these properties hold them to ``format_prefix`` and ``ipaddress`` on any prefix, including the widest
and narrowest texts (0.0.0.0/0, 255.255.255.255/32) and mixed lengths.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from controlplane.prefix import AFI_IPV4, AFI_IPV6, format_prefix, format_prefixes, make_key, widest


@st.composite
def keys(draw: st.DrawFn, afi: int) -> int:
    bits = 32 if afi == AFI_IPV4 else 128
    length = draw(st.integers(0, bits))
    return make_key(afi, draw(st.integers(0, 2**bits - 1)), length)


@given(st.lists(keys(AFI_IPV4), max_size=300))
def test_ipv4_bulk_formatting_is_the_one_by_one_formatting(ks: list[int]) -> None:
    texts = format_prefixes(AFI_IPV4, ks)
    assert texts == [format_prefix(AFI_IPV4, k) for k in ks]
    assert texts == [str(ipaddress.IPv4Network((k >> 8, k & 0xFF))) for k in ks]
    assert widest(AFI_IPV4, ks) == max(map(len, texts), default=0)


@given(st.lists(keys(AFI_IPV6), max_size=50))
def test_ipv6_bulk_formatting_is_the_one_by_one_formatting(ks: list[int]) -> None:
    texts = format_prefixes(AFI_IPV6, ks)
    assert texts == [format_prefix(AFI_IPV6, k) for k in ks]
    assert widest(AFI_IPV6, ks) == max(map(len, texts), default=0)


def test_the_extremes() -> None:
    edge = [make_key(AFI_IPV4, 0, 0), make_key(AFI_IPV4, 2**32 - 1, 32), make_key(AFI_IPV4, 10 << 24, 8)]
    assert format_prefixes(AFI_IPV4, edge) == ["0.0.0.0/0", "255.255.255.255/32", "10.0.0.0/8"]
    assert (widest(AFI_IPV4, edge), widest(AFI_IPV4, edge[:1]), widest(AFI_IPV4, [])) == (18, 9, 0)
