"""Hex vectors: hand-written messages of every type and attribute, and an ExaBGP 5.0.15 capture.

Vector files (``tests/vectors/*.ci``) hold one message per line, ``LABEL MARKER:LENGTH:TYPE:BODY``
in hex, like ExaBGP's ``qa/encoding`` files; whitespace inside the hex is ignored and ``#`` starts
a comment (``tests/support/vectors.py`` reads them). Expected decoded values live in the tables
below. ``canonical`` vectors are also what our encoder produces, so they are checked in both
directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import (
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    Message,
    MpReach,
    MpUnreach,
    MultiprotocolCapability,
    Negotiated,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCapability,
    Update,
    encode,
    encode_end_of_rib,
)
from controlplane.prefix import parse_prefix
from tests.support.vectors import MESSAGES_FILE, captured_sessions, check_capture, decode_raw, read_vectors


def key(text: str) -> int:
    return parse_prefix(text)[1]


ASN4 = Negotiated(asn4=True)


@dataclass(frozen=True)
class Vector:
    message: Message
    negotiated: Negotiated = ASN4
    canonical: bool = True


ASN4_IBGP = Negotiated(asn4=True, ibgp=True)
ASN2 = Negotiated(asn4=False)

EXPECTED: dict[str, Vector] = {
    "keepalive": Vector(Keepalive()),
    "notification.cease_shutdown": Vector(Notification(6, 2, b"\x08shutdown")),
    "notification.hold_timer": Vector(Notification(4, 0)),
    "route_refresh.ipv4": Vector(RouteRefresh(1, 1)),
    "route_refresh.ipv6_borr": Vector(RouteRefresh(2, 1, 1)),
    "open.minimal": Vector(Open(4, 65001, 180, "10.0.0.1")),
    "open.capabilities": Vector(
        Open(
            4,
            23456,
            90,
            "192.0.2.1",
            (
                MultiprotocolCapability(1, 1),
                MultiprotocolCapability(2, 1),
                RouteRefreshCapability(),
                ExtendedMessageCapability(),
                FourOctetAsCapability(4200000000),
                GracefulRestartCapability(8, 120, ((1, 1, 0x80),)),
                EnhancedRouteRefreshCapability(),  # RFC 7313
            ),
        )
    ),
    "open.one_parameter": Vector(
        Open(
            4,
            65001,
            30,
            "127.0.0.2",
            (MultiprotocolCapability(1, 1), RouteRefreshCapability(), FourOctetAsCapability(65001)),
        ),
        canonical=False,
    ),
    "update.eor_ipv4": Vector(Update()),
    "update.eor_ipv6": Vector(Update(mp_unreach=MpUnreach(2, 1)), canonical=False),
    "update.withdraw_ipv4": Vector(
        Update(withdrawn=(key("10.0.0.0/8"), key("192.168.1.0/24"), key("10.1.2.128/25")))
    ),
    "update.all_attributes": Vector(
        Update(
            attributes=PathAttributes(
                origin=0,
                as_path=((2, (65001, 4200000000)), (1, (64512, 64513))),
                next_hop="192.0.2.1",
                med=100,
                local_pref=200,
                atomic_aggregate=True,
                aggregator=(65001, "192.0.2.9"),
                communities=(65001 << 16 | 100, 0xFFFFFF01),
                extended_communities=(bytes.fromhex("0002fde900000064"),),
                large_communities=((4200000000, 1, 2),),
                unknown=((0xE0, 99, b"abc"),),
            ),
            nlri=(key("192.0.2.0/24"), key("10.0.0.0/8")),
            # RFC 9774: a route with an AS_SET is decoded whole and treated as withdrawn
            treat_as_withdraw=True,
            errors=("AS_PATH: AS_SET (deprecated by RFC 9774), treat-as-withdraw",),
            reason="asSet",
        ),
        ASN4_IBGP,
    ),
    "update.as4_over_2octet": Vector(
        Update(
            attributes=PathAttributes(
                origin=2,
                as_path=((2, (65001, 4200000000)),),
                next_hop="192.0.2.1",
                aggregator=(4200000000, "192.0.2.9"),
            ),
            nlri=(key("198.51.100.0/24"),),
        ),
        ASN2,
    ),
    "update.ipv6_reach": Vector(
        Update(
            attributes=PathAttributes(origin=0, med=50),
            mp_reach=MpReach(2, 1, ("2001:db8::1",), (key("2001:db8:1::/48"), key("2001:db8:2:100::/64"))),
        )
    ),
    "update.ipv6_link_local": Vector(
        Update(
            attributes=PathAttributes(origin=0, as_path=((2, (65001,)),)),
            mp_reach=MpReach(2, 1, ("2001:db8::1", "fe80::1"), (key("::/0"),)),
        )
    ),
    "update.ipv6_withdraw": Vector(Update(mp_unreach=MpUnreach(2, 1, (key("2001:db8:1::/48"),)))),
    "update.ignored_attributes": Vector(
        Update(
            attributes=PathAttributes(origin=0, as_path=((2, (65001,)),), next_hop="192.0.2.1"),
            nlri=(key("192.0.2.0/24"),),
        ),
        canonical=False,
    ),
}


def test_every_vector_has_an_expectation() -> None:
    labels = [label for label, _ in read_vectors(MESSAGES_FILE)]
    assert sorted(labels) == sorted(EXPECTED)
    kinds = {label.split(".")[0] for label in labels}
    assert kinds == {"keepalive", "notification", "route_refresh", "open", "update"}


@pytest.mark.parametrize(("label", "raw"), read_vectors(MESSAGES_FILE), ids=lambda value: str(value)[:30])
def test_vector_decodes(label: str, raw: bytes) -> None:
    vector = EXPECTED[label]
    assert decode_raw(raw, vector.negotiated) == vector.message


@pytest.mark.parametrize(("label", "raw"), read_vectors(MESSAGES_FILE), ids=lambda value: str(value)[:30])
def test_vector_encodes(label: str, raw: bytes) -> None:
    vector = EXPECTED[label]
    encoded = encode(vector.message, vector.negotiated)
    if vector.canonical:
        assert encoded.hex() == raw.hex()
    assert decode_raw(encoded, vector.negotiated) == vector.message


def test_vector_properties() -> None:
    vectors = dict(read_vectors(MESSAGES_FILE))
    opened = decode_raw(vectors["open.capabilities"], Negotiated())
    assert isinstance(opened, Open) and opened.asn == 4200000000
    eor4 = decode_raw(vectors["update.eor_ipv4"], Negotiated())
    eor6 = decode_raw(vectors["update.eor_ipv6"], Negotiated())
    assert isinstance(eor4, Update) and eor4.end_of_rib == (1, 1)
    assert isinstance(eor6, Update) and eor6.end_of_rib == (2, 1)
    assert encode_end_of_rib(2, 1, Negotiated()) == vectors["update.eor_ipv6"]
    assert encode_end_of_rib(1, 1, Negotiated()) == vectors["update.eor_ipv4"]
    withdraw = decode_raw(vectors["update.ipv6_withdraw"], Negotiated())
    assert isinstance(withdraw, Update) and withdraw.end_of_rib is None


# ---- the ExaBGP 5.0.15 capture -------------------------------------------------------------------


def test_exabgp_capture_vectors() -> None:
    results = captured_sessions()
    assert set(results) == {"asn4", "asn2"}
    check_capture(results)
