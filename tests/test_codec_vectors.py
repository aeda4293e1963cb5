"""Hex vectors: hand-written messages of every type and attribute, and an ExaBGP 5.0.15 capture.

Vector files (``tests/vectors/*.ci``) hold one message per line, ``LABEL MARKER:LENGTH:TYPE:BODY``
in hex, like ExaBGP's ``qa/encoding`` files; whitespace inside the hex is ignored and ``#`` starts
a comment. Expected decoded values live in the tables below. ``canonical`` vectors are also what
our encoder produces, so they are checked in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import HEADER_LEN, MAX_MESSAGE_LEN
from controlplane.bgp.messages import (
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
    UnknownCapability,
    Update,
    decode_message,
    encode,
    encode_end_of_rib,
    negotiate,
    parse_header,
)
from controlplane.prefix import format_prefix, parse_prefix

VECTORS = Path(__file__).resolve().parent / "vectors"
MESSAGES_FILE = VECTORS / "messages.ci"
CAPTURE_FILE = VECTORS / "exabgp-5.0.15.ci"


def read_vectors(path: Path) -> list[tuple[str, bytes]]:
    """``[(label, raw message)]`` of a ``.ci`` file."""
    items = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        label, *hex_parts = line.split()
        marker, length, kind, body = "".join(hex_parts).split(":")
        items.append((label, bytes.fromhex(marker + length + kind + body)))
    return items


def write_vectors(path: Path, items: list[tuple[str, bytes]], comment: str) -> None:
    lines = [f"# {comment}", "# LABEL MARKER:LENGTH:TYPE:BODY"]
    for label, raw in items:
        fields = (raw[:16], raw[16:18], raw[18:19], raw[19:])
        lines.append(f"{label} " + ":".join(part.hex().upper() for part in fields))
    path.write_text("\n".join(lines) + "\n")


def key(text: str) -> int:
    return parse_prefix(text)[1]


def decode_raw(raw: bytes, negotiated: Negotiated) -> Message:
    length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
    assert length == len(raw), "the vector's length field must match its size"
    return decode_message(kind, raw[HEADER_LEN:], negotiated)


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
                UnknownCapability(70, b""),
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

SESSIONS = {"127.0.0.2": "asn4", "127.0.0.3": "asn2"}


def our_open(session: str) -> Open:
    """The OPEN our side answers with: 4-octet AS + extended messages, or a bare 2-octet OPEN."""
    families = (MultiprotocolCapability(1, 1), MultiprotocolCapability(2, 1))
    if session == "asn4":
        extras = (RouteRefreshCapability(), ExtendedMessageCapability())
        return Open.make(31898, 30, "127.0.0.1", (*families, *extras))
    return Open(4, 31898, 30, "127.0.0.1", families)


EXABGP_ROUTES = {
    (1, "192.0.2.0/24"): PathAttributes(
        origin=0,
        as_path=((2, (65001, 64512)),),
        next_hop="127.0.0.2",
        med=100,
        communities=(31898 << 16 | 200, 65001 << 16 | 100),  # ExaBGP sends them sorted
        extended_communities=(bytes.fromhex("0002fde900000064"),),  # target:65001:100
        large_communities=((65001, 1, 2),),
    ),
    (1, "198.51.100.0/24"): PathAttributes(
        origin=1,
        as_path=((2, (65001, 4200000000)),),
        next_hop="127.0.0.2",
        atomic_aggregate=True,
        aggregator=(4200000000, "127.0.0.9"),
    ),
    (1, "203.0.113.128/25"): PathAttributes(
        origin=2, as_path=((2, (65001,)), (1, (64600, 64601))), next_hop="127.0.0.2"
    ),
    (2, "2001:db8:1::/48"): PathAttributes(origin=0, as_path=((2, (65001,)),), med=50),
}


def check_capture(results: dict[str, list[bytes]]) -> None:
    """What ExaBGP sent to each session decodes to exactly the routes of its config."""
    for session, raws in results.items():
        address = next(ip for ip, name in SESSIONS.items() if name == session)
        theirs = decode_raw(raws[0], Negotiated())
        assert isinstance(theirs, Open)
        assert (theirs.version, theirs.my_as, theirs.hold_time) == (4, 65001, 30)
        assert theirs.bgp_identifier == address and theirs.asn == 65001
        for capability in (
            MultiprotocolCapability(1, 1),
            MultiprotocolCapability(2, 1),
            FourOctetAsCapability(65001),
            RouteRefreshCapability(),
            ExtendedMessageCapability(),
            GracefulRestartCapability(8, 120, ((1, 1, 0x80), (2, 1, 0x80))),
        ):
            assert capability in theirs.capabilities
        negotiated = negotiate(our_open(session), theirs)
        assert negotiated.asn4 == (session == "asn4")
        assert negotiated.max_message_len == (65535 if session == "asn4" else MAX_MESSAGE_LEN)
        routes: dict[tuple[int, str], PathAttributes | None] = {}
        next_hops: set[tuple[str, ...]] = set()
        eors = []
        for raw in raws[1:]:
            message = decode_raw(raw, negotiated)
            if isinstance(message, Keepalive):
                continue
            assert isinstance(message, Update)
            assert message.errors == () and not message.treat_as_withdraw
            assert decode_raw(encode(message, negotiated), negotiated) == message
            if message.end_of_rib is not None:
                eors.append(message.end_of_rib)
                continue
            for prefix in message.nlri:
                routes[(1, format_prefix(1, prefix))] = message.attributes
            if message.mp_reach is not None:
                next_hops.add(message.mp_reach.next_hop)
                for prefix in message.mp_reach.nlri:
                    routes[(message.mp_reach.afi, format_prefix(message.mp_reach.afi, prefix))] = (
                        message.attributes
                    )
        assert routes == EXABGP_ROUTES
        assert sorted(eors) == [(1, 1), (2, 1)]
        assert next_hops == {("::ffff:127.0.0.2",)}
        if session == "asn2":  # ExaBGP had to use AS_TRANS and the AS4_* attributes
            updates = b"".join(raws[1:])
            assert bytes.fromhex("c0110a02020000fde9fa56ea00") in updates  # AS4_PATH
            assert bytes.fromhex("c007065ba07f000009") in updates  # AGGREGATOR AS_TRANS
            assert bytes.fromhex("c01208fa56ea007f000009") in updates  # AS4_AGGREGATOR


def captured_sessions() -> dict[str, list[bytes]]:
    results: dict[str, list[bytes]] = {}
    for label, raw in read_vectors(CAPTURE_FILE):
        results.setdefault(label.split(".")[0], []).append(raw)
    return results


def test_exabgp_capture_vectors() -> None:
    results = captured_sessions()
    assert set(results) == {"asn4", "asn2"}
    check_capture(results)
