"""Fuzzing: whatever the bytes, ``parse_header`` and ``decode_message`` raise nothing but ``BGPError``.

Random bytes rarely get past the header checks, so most examples start from valid messages (the
hand-written and ExaBGP vectors) and mutate them: flipped, replaced, inserted and deleted octets,
truncation, and length fields made inconsistent.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.bgp.constants import HEADER_LEN
from controlplane.bgp.errors import BGPError
from controlplane.bgp.messages import Negotiated, decode_message, encode, parse_header
from tests.support.vectors import CAPTURE_FILE, MESSAGES_FILE, read_vectors

SEEDS = [raw for _, raw in read_vectors(MESSAGES_FILE) + read_vectors(CAPTURE_FILE)]

negotiations = st.builds(Negotiated, asn4=st.booleans(), extended_message=st.booleans(), ibgp=st.booleans())


def feed(raw: bytes, negotiated: Negotiated) -> None:
    """Run the codec the way a session does; re-encode whatever decodes."""
    try:
        length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
    except BGPError:
        length, kind = len(raw), raw[18] if len(raw) > 18 else 0
    try:
        message = decode_message(kind, raw[HEADER_LEN:length], negotiated)
    except BGPError as error:
        assert 1 <= error.code <= 7 and isinstance(error.data, bytes)
        return
    with contextlib.suppress(ValueError):  # an OPEN re-encoded one capability per parameter may not fit
        encode(message, negotiated)


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
    with contextlib.suppress(BGPError):
        decode_message(kind, body, negotiated)


@settings(max_examples=2000)
@given(st.binary(max_size=120), st.binary(max_size=60), st.booleans(), negotiations)
def test_random_update_parts_raise_only_bgp_error(
    attributes: bytes, nlri: bytes, prefix_attributes: bool, negotiated: Negotiated
) -> None:
    # A well-framed UPDATE whose attribute block and NLRI are random: reaches the attribute parser.
    if prefix_attributes:
        attributes = bytes([0x40, 1, 1, 0]) + attributes
    body = b"\x00\x00" + len(attributes).to_bytes(2, "big") + attributes + nlri
    with contextlib.suppress(BGPError):
        decode_message(2, body, negotiated)


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
    with contextlib.suppress(BGPError):
        decode_message(2, body, negotiated)


def test_header_parses_memoryviews_of_any_size() -> None:
    for size in range(0, 40):
        with contextlib.suppress(BGPError):
            parse_header(memoryview(b"\xff" * size), 4096)
