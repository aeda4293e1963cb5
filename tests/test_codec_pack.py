"""UPDATE packing: every prefix arrives, messages respect the size limit and are dense."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import HEADER_LEN, MAX_MESSAGE_LEN
from controlplane.bgp.messages import (
    Negotiated,
    Update,
    decode_message,
    encode_end_of_rib,
    pack_announcements,
    pack_withdrawals,
    parse_header,
)
from controlplane.prefix import make_key

ATTRIBUTES = PathAttributes.make(as_path=[65001, 64512], med=10, communities=["65001:100"])
V4_HOP = "192.0.2.1"
V6_HOP = "2001:db8::1"


def keys(afi: int) -> st.SearchStrategy[int]:
    bits = 32 if afi == 1 else 128
    return st.integers(0, bits).flatmap(
        lambda length: st.integers(0, (1 << length) - 1).map(
            lambda net: (net << (bits - length)) << 8 | length
        )
    )


def decode_all(messages: Iterator[bytes], negotiated: Negotiated) -> list[tuple[int, Update]]:
    decoded = []
    for raw in messages:
        length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
        assert length == len(raw) <= negotiated.max_message_len
        update = decode_message(kind, raw[HEADER_LEN:], negotiated)
        assert isinstance(update, Update) and update.errors == () and not update.treat_as_withdraw
        decoded.append((len(raw), update))
    return decoded


def slash24s(count: int) -> list[int]:
    return [make_key(1, (10 << 24) + (i << 8), 24) for i in range(count)]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from([1, 2]), st.booleans(), st.booleans())
def test_announcements_carry_every_prefix(data: st.DataObject, afi: int, asn4: bool, extended: bool) -> None:
    prefixes = data.draw(st.sets(keys(afi), max_size=3000))
    negotiated = Negotiated(asn4=asn4, extended_message=extended)
    hop = V4_HOP if afi == 1 else V6_HOP
    seen: list[int] = []
    for _, update in decode_all(pack_announcements(afi, prefixes, ATTRIBUTES, negotiated, hop), negotiated):
        if afi == 1:
            assert update.attributes == PathAttributes.make(
                as_path=[65001, 64512], med=10, communities=["65001:100"], next_hop=V4_HOP
            )
            assert update.mp_reach is None
            seen.extend(update.nlri)
        else:
            assert update.attributes == ATTRIBUTES and update.nlri == ()
            assert update.mp_reach is not None and update.mp_reach.next_hop == (V6_HOP,)
            seen.extend(update.mp_reach.nlri)
    assert len(seen) == len(set(seen)) and set(seen) == prefixes


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), st.sampled_from([1, 2]), st.booleans())
def test_withdrawals_carry_every_prefix(data: st.DataObject, afi: int, extended: bool) -> None:
    prefixes = data.draw(st.sets(keys(afi), max_size=3000))
    negotiated = Negotiated(extended_message=extended)
    seen: list[int] = []
    for _, update in decode_all(pack_withdrawals(afi, prefixes, negotiated), negotiated):
        assert update.attributes is None and update.nlri == ()
        if afi == 1:
            seen.extend(update.withdrawn)
        else:
            assert update.mp_unreach is not None and update.withdrawn == ()
            seen.extend(update.mp_unreach.withdrawn)
    assert len(seen) == len(set(seen)) and set(seen) == prefixes


def test_announcements_are_dense() -> None:
    negotiated = Negotiated(asn4=True)
    decoded = decode_all(pack_announcements(1, slash24s(10_000), ATTRIBUTES, negotiated, V4_HOP), negotiated)
    for size, update in decoded[:-1]:
        assert len(update.nlri) >= 1000
        assert size > MAX_MESSAGE_LEN - 4  # a /24 takes 4 octets: less than that is left over
    assert sum(len(update.nlri) for _, update in decoded) == 10_000
    assert len(decoded) == 10


def test_announcements_accept_a_generator() -> None:
    negotiated = Negotiated()
    messages = list(pack_announcements(1, iter(slash24s(2500)), ATTRIBUTES, negotiated, V4_HOP))
    assert len(messages) == 3


def test_extended_messages_pack_more() -> None:
    negotiated = Negotiated(extended_message=True)
    decoded = decode_all(pack_announcements(1, slash24s(20_000), ATTRIBUTES, negotiated, V4_HOP), negotiated)
    assert len(decoded) == 2 and len(decoded[0][1].nlri) > 16_000


def test_ipv6_announcements_are_dense() -> None:
    negotiated = Negotiated()
    prefixes = [make_key(2, (0x20010DB8 << 96) + (i << 80), 48) for i in range(2000)]
    decoded = decode_all(
        pack_announcements(2, prefixes, ATTRIBUTES, negotiated, f"{V6_HOP},fe80::1"), negotiated
    )
    for size, update in decoded[:-1]:
        assert update.mp_reach is not None and update.mp_reach.next_hop == (V6_HOP, "fe80::1")
        assert size > MAX_MESSAGE_LEN - 7 and len(update.mp_reach.nlri) >= 550


def test_withdrawals_are_dense() -> None:
    negotiated = Negotiated()
    decoded = decode_all(pack_withdrawals(1, slash24s(5000), negotiated), negotiated)
    assert [len(update.withdrawn) for _, update in decoded] == [1018, 1018, 1018, 1018, 928]


def test_nothing_to_pack_gives_no_message() -> None:
    assert list(pack_announcements(1, [], ATTRIBUTES, Negotiated(), V4_HOP)) == []
    assert list(pack_withdrawals(2, [], Negotiated())) == []


def test_attributes_too_big_for_any_prefix() -> None:
    huge = PathAttributes.make(as_path=list(range(1, 1100)))
    with pytest.raises(ValueError):
        list(pack_announcements(1, slash24s(1), huge, Negotiated(asn4=True), V4_HOP))


def test_end_of_rib_markers() -> None:
    for afi in (1, 2):
        raw = encode_end_of_rib(afi, 1, Negotiated())
        update = decode_message(raw[18], raw[HEADER_LEN:], Negotiated())
        assert isinstance(update, Update) and update.end_of_rib == (afi, 1)


def test_unsupported_family_is_refused() -> None:
    with pytest.raises(ValueError):
        list(pack_withdrawals(25, [0], Negotiated()))
