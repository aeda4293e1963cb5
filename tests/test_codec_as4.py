"""4-octet AS numbers (RFC 6793) and the AS path helpers of ``PathAttributes``."""

from __future__ import annotations

import struct

import pytest

from controlplane.bgp.attrdecode import merge_as4_path
from controlplane.bgp.attributes import PathAttributes, encode_attributes
from controlplane.bgp.messages import Negotiated, Update, decode_message, encode

ASN2 = Negotiated(asn4=False)
ASN4 = Negotiated(asn4=True)
BIG = 4200000000  # 0xFA56EA00


def decode(raw: bytes, negotiated: Negotiated) -> Update:
    message = decode_message(raw[18], raw[19:], negotiated)
    assert isinstance(message, Update)
    return message


def test_4_octet_asn_over_2_octet_session_uses_as_trans_and_as4_path() -> None:
    attributes = PathAttributes.make(
        as_path=[65001, BIG, 64512], next_hop="192.0.2.1", aggregator=(BIG, "192.0.2.9")
    )
    block = encode_attributes(attributes, ASN2)
    assert bytes.fromhex("40020802 03 fde9 5ba0 fc00".replace(" ", "")) in block  # AS_PATH with AS_TRANS
    assert bytes.fromhex("c0110e0203 0000fde9 fa56ea00 0000fc00".replace(" ", "")) in block  # AS4_PATH
    assert bytes.fromhex("c007065ba0c0000209") in block  # AGGREGATOR with AS_TRANS
    assert bytes.fromhex("c01208fa56ea00c0000209") in block  # AS4_AGGREGATOR
    update = decode(encode(Update(attributes=attributes, nlri=(0x0A000008,)), ASN2), ASN2)
    assert update.errors == ()
    assert update.attributes == attributes
    assert update.attributes.flat_as_path() == [65001, BIG, 64512]


def test_4_octet_session_sends_no_as4_attributes() -> None:
    attributes = PathAttributes.make(as_path=[BIG], next_hop="192.0.2.1", aggregator=(BIG, "192.0.2.9"))
    block = encode_attributes(attributes, ASN4)
    assert b"\xc0\x11" not in block and b"\xc0\x12" not in block
    assert bytes.fromhex("40020602 01 fa56ea00".replace(" ", "")) in block


def test_2_octet_path_sends_no_as4_path() -> None:
    block = encode_attributes(PathAttributes.make(as_path=[65001, 64512]), ASN2)
    assert b"\xc0\x11" not in block


def test_as4_path_leaves_out_confederation_segments() -> None:
    attributes = PathAttributes(origin=0, as_path=((3, (65000,)), (2, (BIG,))), next_hop="192.0.2.1")
    block = encode_attributes(attributes, ASN2)
    assert bytes.fromhex("c0110602 01 fa56ea00".replace(" ", "")) in block
    update = decode(encode(Update(attributes=attributes, nlri=(0x0A000008,)), ASN2), ASN2)
    assert update.attributes == attributes


def test_old_speaker_prepends_are_kept_in_front_of_as4_path() -> None:
    # An OLD (2-octet) speaker 65010 prepended itself twice after the AS4_PATH was built.
    as_path = struct.pack(">BB5H", 2, 5, 65010, 65010, 65001, 23456, 64512)
    as4_path = struct.pack(">BB3I", 2, 3, 65001, BIG, 64512)
    block = (
        bytes([0x40, 1, 1, 0])
        + bytes([0x40, 2, len(as_path)])
        + as_path
        + bytes([0x40, 3, 4, 192, 0, 2, 1])
        + bytes([0xC0, 17, len(as4_path)])
        + as4_path
    )
    body = struct.pack(">HH", 0, len(block)) + block + b"\x08\x0a"
    update = decode_message(2, body, ASN2)
    assert isinstance(update, Update) and update.attributes is not None
    assert update.attributes.as_path == ((2, (65010, 65010, 65001, BIG, 64512)),)


@pytest.mark.parametrize(
    ("as_path", "as4_path", "merged"),
    [
        # equal length: AS4_PATH replaces AS_PATH
        (((2, (1, 23456)),), ((2, (1, BIG)),), ((2, (1, BIG)),)),
        # AS4_PATH longer: ignored
        (((2, (23456,)),), ((2, (1, BIG)),), None),
        # AS_SET counts one
        (((2, (7,)), (1, (23456, 5))), ((1, (BIG, 5)),), ((2, (7,)), (1, (BIG, 5)))),
        # leading confederation segment kept even when nothing else is needed
        (((3, (65000,)), (2, (23456,))), ((2, (BIG,)),), ((3, (65000,)), (2, (BIG,)))),
        # a partial AS_SEQUENCE joins the AS4_PATH sequence
        (((2, (9, 8, 23456)),), ((2, (BIG,)),), ((2, (9, 8, BIG)),)),
        # a whole segment taken, then the AS4_PATH
        (((2, (9,)), (2, (8, 23456))), ((2, (8, BIG)),), ((2, (9,)), (2, (8, BIG)))),
    ],
)
def test_merge_as4_path(
    as_path: tuple[tuple[int, tuple[int, ...]], ...],
    as4_path: tuple[tuple[int, tuple[int, ...]], ...],
    merged: tuple[tuple[int, tuple[int, ...]], ...] | None,
) -> None:
    assert merge_as4_path(as_path, as4_path) == merged


def test_as4_path_longer_than_as_path_is_ignored_with_a_note() -> None:
    as_path = struct.pack(">BBH", 2, 1, 23456)
    as4_path = struct.pack(">BB2I", 2, 2, 65001, BIG)
    block = (
        bytes([0x40, 1, 1, 0, 0x40, 2, len(as_path)])
        + as_path
        + bytes([0x40, 3, 4, 192, 0, 2, 1, 0xC0, 17, len(as4_path)])
        + as4_path
    )
    update = decode_message(2, struct.pack(">HH", 0, len(block)) + block + b"\x08\x0a", ASN2)
    assert isinstance(update, Update) and update.attributes is not None
    assert update.attributes.as_path == ((2, (23456,)),) and not update.treat_as_withdraw
    assert update.errors == ("AS4_PATH longer than AS_PATH: AS4_PATH ignored",)


def test_aggregator_of_an_old_speaker_voids_as4_attributes() -> None:
    # RFC 6793 s.4.2.3: AGGREGATOR holding a real 2-octet AS means an OLD speaker aggregated.
    attributes = PathAttributes.make(as_path=[BIG], next_hop="192.0.2.1", aggregator=(65001, "192.0.2.9"))
    update = decode(encode(Update(attributes=attributes, nlri=(0x0A000008,)), ASN2), ASN2)
    assert update.attributes is not None
    assert update.attributes.as_path == ((2, (23456,)),) and update.attributes.aggregator == (
        65001,
        "192.0.2.9",
    )
    assert "AS4_PATH and AS4_AGGREGATOR ignored" in update.errors[0]


def test_path_helpers() -> None:
    attributes = PathAttributes.make(as_path=[65001, 64512, [1, 2, 3], 7])
    assert attributes.as_path == ((2, (65001, 64512)), (1, (1, 2, 3)), (2, (7,)))
    assert attributes.flat_as_path() == [65001, 64512, [1, 2, 3], 7]
    assert attributes.as_path_length() == 4
    confed = PathAttributes(as_path=((3, (1, 2)), (4, (3,)), (2, (5, 6))))
    assert confed.as_path_length() == 2
    assert confed.flat_as_path() == [1, 2, [3], 5, 6]


def test_long_sequences_are_split_in_255s() -> None:
    attributes = PathAttributes.make(as_path=list(range(1, 601)), next_hop="192.0.2.1")
    assert [len(asns) for _, asns in attributes.as_path] == [255, 255, 90]
    update = decode(encode(Update(attributes=attributes, nlri=(0x0A000008,)), ASN4), ASN4)
    assert update.attributes == attributes and update.attributes.as_path_length() == 600
    merged = PathAttributes(as_path=((2, tuple(range(300))),), next_hop="192.0.2.1")
    update = decode(encode(Update(attributes=merged, nlri=(0x0A000008,)), ASN4), ASN4)
    assert update.attributes is not None and update.attributes.flat_as_path() == list(range(300))
    with pytest.raises(ValueError):
        encode_attributes(PathAttributes(as_path=((1, tuple(range(300))),)), ASN4)


def test_make_conveniences() -> None:
    attributes = PathAttributes.make(
        communities=["65001:100", (1, 2), 7],
        large_communities=["4200000000:1:2", (1, 2, 3)],
        unknown=[(0xC0, 99, b"x")],
    )
    assert attributes.origin == 0
    assert attributes.communities == (65001 << 16 | 100, 1 << 16 | 2, 7)
    assert attributes.large_communities == ((BIG, 1, 2), (1, 2, 3))
    assert attributes.unknown == ((0xE0, 99, b"x"),)
    with pytest.raises(ValueError):
        PathAttributes.make(communities=["70000:1"])
    with pytest.raises(ValueError):
        PathAttributes.make(large_communities=["1:2"])
    with pytest.raises(ValueError):
        PathAttributes.make(as_path=[[]])
    assert (
        len(
            {
                attributes,
                PathAttributes.make(
                    communities=["65001:100", (1, 2), 7],
                    large_communities=["4200000000:1:2", (1, 2, 3)],
                    unknown=[(0xC0, 99, b"x")],
                ),
            }
        )
        == 1
    )
