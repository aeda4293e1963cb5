"""Fuzzing: whatever the bytes, ``parse_header`` and ``decode_message`` raise nothing but ``BGPError``.

Random bytes rarely get past the header checks, so most examples start from valid messages (the
hand-written and ExaBGP vectors) and mutate them: flipped, replaced, inserted and deleted octets,
truncation, and length fields made inconsistent. Each outcome is checked too: an error carries a
NOTIFICATION code (1-7) and its data, a decoded message is of the type its header named and encodes
again as that type, and the simple types decode to exactly their fields.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.bgp.constants import HEADER_LEN
from controlplane.bgp.errors import BGPError
from controlplane.bgp.messages import (
    Keepalive,
    Message,
    Negotiated,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_message,
    encode,
    parse_header,
)
from controlplane.prefix import parse_prefix
from tests.support.vectors import CAPTURE_FILE, MESSAGES_FILE, read_vectors

MESSAGE_TYPES: dict[int, type[Message]] = {1: Open, 2: Update, 3: Notification, 4: Keepalive, 5: RouteRefresh}

SEEDS = [raw for _, raw in read_vectors(MESSAGES_FILE) + read_vectors(CAPTURE_FILE)]

negotiations = st.builds(Negotiated, asn4=st.booleans(), extended_message=st.booleans(), ibgp=st.booleans())


def outcome(kind: int, body: bytes, negotiated: Negotiated) -> Message | BGPError:
    """What ``decode_message`` makes of ``body``; any exception but ``BGPError`` fails the test.

    An error must carry a NOTIFICATION code and bytes; a message must be of type ``kind`` and
    re-encode (where it fits) to a message whose header names ``kind`` and the encoded length."""
    try:
        message = decode_message(kind, body, negotiated)
    except BGPError as error:
        assert 1 <= error.code <= 7 and isinstance(error.data, bytes), error
        return error
    assert type(message) is MESSAGE_TYPES[kind]
    with contextlib.suppress(ValueError):  # an OPEN re-encoded one capability per parameter may not fit
        encoded = encode(message, negotiated)
        assert parse_header(encoded[:HEADER_LEN], 65535) == (len(encoded), kind)
    return message


def feed(raw: bytes, negotiated: Negotiated) -> Message | BGPError:
    """Run the codec the way a session does: the header, then the body it frames."""
    try:
        length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
    except BGPError as error:
        assert error.code in (1, 7), error  # header errors, and 7/1 for a ROUTE-REFRESH of bad length
        length, kind = len(raw), raw[18] if len(raw) > 18 else 0
    return outcome(kind, raw[HEADER_LEN:length], negotiated)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "length"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete" and data:
            del data[position : position + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[position:]
        elif action == "length" and len(data) >= HEADER_LEN:
            data[16:18] = len(data).to_bytes(2, "big")  # keep the header consistent with the size
    return bytes(data)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), negotiations)
def test_mutated_messages_raise_only_bgp_error(raw: bytes, negotiated: Negotiated) -> None:
    feed(raw, negotiated)


@settings(max_examples=1000)
@given(st.binary(max_size=300), negotiations)
def test_random_bytes_raise_only_bgp_error(raw: bytes, negotiated: Negotiated) -> None:
    feed(raw, negotiated)


@settings(max_examples=3000)
@given(st.integers(0, 7), st.binary(max_size=200), negotiations)
def test_random_bodies_raise_only_bgp_error(kind: int, body: bytes, negotiated: Negotiated) -> None:
    got = outcome(kind, body, negotiated)
    length_field = struct.pack(">H", HEADER_LEN + len(body))
    if kind not in MESSAGE_TYPES:
        assert isinstance(got, BGPError) and (got.code, got.subcode, got.data) == (1, 3, bytes([kind]))
    elif kind == 4 and body == b"":
        assert got == Keepalive()
    elif kind == 4:  # a KEEPALIVE has no body: 1/2 with the length field
        assert isinstance(got, BGPError) and (got.code, got.subcode, got.data) == (1, 2, length_field)
    elif kind == 3 and len(body) >= 2:  # NOTIFICATION: code, subcode, the rest as data
        assert got == Notification(body[0], body[1], body[2:])
    elif kind == 5:  # ROUTE-REFRESH: exactly AFI, subtype, SAFI (RFC 7313: 7/1 otherwise)
        if len(body) == 4:
            afi, subtype, safi = struct.unpack(">HBB", body)
            assert got == RouteRefresh(afi, safi, subtype)
        elif len(body) >= 3 and body[2] > 2:  # an unknown subtype, for the session to ignore
            assert isinstance(got, RouteRefresh) and got.subtype == body[2]
        else:
            assert isinstance(got, BGPError) and (got.code, got.subcode) == (7, 1)


@settings(max_examples=2000)
@given(st.binary(max_size=120), st.binary(max_size=60), st.booleans(), negotiations)
def test_random_update_parts_raise_only_bgp_error(
    attributes: bytes, nlri: bytes, prefix_attributes: bool, negotiated: Negotiated
) -> None:
    # A well-framed UPDATE whose attribute block and NLRI are random: reaches the attribute parser.
    if prefix_attributes:
        attributes = bytes([0x40, 1, 1, 0]) + attributes
    body = b"\x00\x00" + len(attributes).to_bytes(2, "big") + attributes + nlri
    got = outcome(2, body, negotiated)
    if isinstance(got, Update):
        assert got.withdrawn == ()  # the withdrawn routes field is empty
        assert got.errors or not got.treat_as_withdraw  # treat-as-withdraw always says why (RFC 7606)


@settings(max_examples=2000)
@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)), max_size=6),
    negotiations,
)
def test_random_attribute_lists_raise_only_bgp_error(
    attributes: list[tuple[int, int, bytes]], negotiated: Negotiated
) -> None:
    # Well-formed attribute TLVs with random flags, types and values: reaches every value parser.
    block = b"".join(bytes([flags & ~0x10, code, len(value)]) + value for flags, code, value in attributes)
    body = b"\x00\x00" + len(block).to_bytes(2, "big") + block + b"\x18\xc0\x00\x02"
    got = outcome(2, body, negotiated)
    if isinstance(got, Update):  # the NLRI survives whatever the attributes (kept even to withdraw them)
        assert (got.withdrawn, got.nlri) == ((), (parse_prefix("192.0.2.0/24")[1],))
        assert got.errors or not got.treat_as_withdraw


def test_header_parses_memoryviews_of_any_size() -> None:
    for size in range(0, 40):
        with pytest.raises(BGPError) as info:
            parse_header(memoryview(b"\xff" * size), 4096)
        # Too short for a header (no data); else the all-ones length 65535 is over 4096 (the field).
        assert (info.value.code, info.value.subcode, info.value.data) == (1, 2, b"" if size < 19 else b"\xff\xff")
