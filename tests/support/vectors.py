"""The hex vector files (``tests/vectors/*.ci``) and what the ExaBGP 5.0.15 capture must decode to.

A vector file holds one message per line, ``LABEL MARKER:LENGTH:TYPE:BODY`` in hex, like ExaBGP's
``qa/encoding`` files; whitespace inside the hex is ignored and ``#`` starts a comment. The capture
(``exabgp-5.0.15.ci``) is what one ExaBGP process sent to two sessions, labelled ``asn4.N`` and
``asn2.N``; ``check_capture`` holds its expectations, shared by the offline vector test and the
interop test that records it again.
"""

from __future__ import annotations

from pathlib import Path

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import HEADER_LEN, MAX_MESSAGE_LEN
from controlplane.bgp.messages import (
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    Message,
    MultiprotocolCapability,
    Negotiated,
    Open,
    RouteRefreshCapability,
    Update,
    decode_message,
    encode,
    negotiate,
    parse_header,
)
from controlplane.prefix import format_prefix
from tests.support.paths import VECTORS

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


def decode_raw(raw: bytes, negotiated: Negotiated) -> Message:
    length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
    assert length == len(raw), "the vector's length field must match its size"
    return decode_message(kind, raw[HEADER_LEN:], negotiated)


CAPTURE_SESSIONS = {"127.0.0.2": "asn4", "127.0.0.3": "asn2"}


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
        address = next(ip for ip, name in CAPTURE_SESSIONS.items() if name == session)
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
            if message.attributes is not None and any(kind == 1 for kind, _ in message.attributes.as_path):
                # RFC 9774: the route with an AS_SET is decoded, and treated as withdrawn
                assert message.treat_as_withdraw and message.reason == "asSet"
            else:
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
    """The capture file as {session label: [raw messages in order]}."""
    results: dict[str, list[bytes]] = {}
    for label, raw in read_vectors(CAPTURE_FILE):
        results.setdefault(label.split(".")[0], []).append(raw)
    return results
