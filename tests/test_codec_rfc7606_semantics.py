"""RFC 7606 beyond the per-attribute basics, one test per case with the exact bytes: framing of the
attribute block (s.4), UPDATEs without reachable NLRI (s.5.2), MP attributes anywhere (s.5.1),
ORIGINATOR_ID / CLUSTER_LIST (s.7.9, s.7.10), and the path semantics other RFCs make malformed:
AS 0 (RFC 7607), AS_SET / AS_CONFED_SET (RFC 9774), confederation segments from outside (RFC 5065).

Each asserts the action (session reset with its code/subcode/data, treat-as-withdraw with the
counter ``reason``, or attribute discard with the attribute named in ``discarded``).
"""

from __future__ import annotations

import struct

import pytest

from controlplane.bgp.messages import Negotiated
from tests.test_codec_rfc7606 import (
    AS_PATH,
    AS_PATH2,
    ASN2,
    ASN4,
    IBGP,
    MANDATORY,
    MP_REACH_V6,
    NEXT_HOP,
    NLRI,
    NLRI_KEY,
    ORIGIN,
    V6_KEY,
    assert_discard,
    assert_withdraw,
    attr,
    body,
    decode,
    reset,
)

IBGP2 = Negotiated(asn4=False, ibgp=True)
WITHDRAWN = bytes.fromhex("10c633")  # 198.51.0.0/16


# ---- RFC 7606 s.4: the attribute block cannot be framed, the NLRI field still can ----------------


def test_attribute_running_past_the_block_with_nlri_withdraws() -> None:
    bad = bytes([0xC0, 8, 9, 0, 0, 0, 1])  # COMMUNITIES claims 9 octets, 4 present
    update = decode(body(MANDATORY + bad, withdrawn=WITHDRAWN))
    assert_withdraw(update, "running past the attribute block")
    assert update.reason == "malformed" and update.withdrawn and update.nlri == (NLRI_KEY,)
    assert not any("missing" in error for error in update.errors)


@pytest.mark.parametrize("tail", [b"\x40", b"\x40\x01", b"\x50\x01\x00"])
def test_block_ending_inside_an_attribute_header_with_nlri_withdraws(tail: bytes) -> None:
    update = decode(body(MANDATORY + tail))
    assert_withdraw(update, "RFC 7606 s.4")
    assert update.attributes is not None and update.attributes.next_hop == "192.0.2.1"


def test_break_before_the_mandatory_attributes_withdraws_without_missing_errors() -> None:
    update = decode(body(bytes([0x40, 1, 200, 0]) + AS_PATH + NEXT_HOP))  # ORIGIN swallows the rest
    assert update.treat_as_withdraw and update.nlri == (NLRI_KEY,) and len(update.errors) == 1


def test_break_after_mp_reach_is_a_session_reset() -> None:
    error = reset(body(MP_REACH_V6 + ORIGIN + AS_PATH + bytes([0xC0, 8, 9, 0])))
    assert (error.code, error.subcode) == (3, 1) and "MP_REACH" in error.reason


def test_mp_reach_running_past_the_block_is_a_session_reset() -> None:
    error = reset(body(ORIGIN + AS_PATH + NEXT_HOP + MP_REACH_V6[:-2]))
    assert (error.code, error.subcode) == (3, 1)


def test_mp_unreach_running_past_the_block_is_a_session_reset() -> None:
    error = reset(body(MANDATORY + bytes([0x80, 15, 9, 0, 2, 1])))
    assert (error.code, error.subcode) == (3, 1)


def test_total_attribute_length_beyond_the_message_is_still_a_reset() -> None:
    data = b"\x00\x00" + struct.pack(">H", len(MANDATORY) + 10) + MANDATORY
    assert (reset(data).code, reset(data).subcode) == (3, 1)


# ---- RFC 7606 s.5.1 / s.5.2 ------------------------------------------------------------------------


def test_mp_reach_is_accepted_in_any_position() -> None:
    update = decode(body(ORIGIN + AS_PATH + MP_REACH_V6, nlri=b""))
    assert not update.treat_as_withdraw and update.mp_reach is not None and update.mp_reach.nlri == (V6_KEY,)


def test_malformed_attribute_without_reachable_nlri_resets_with_its_subcode() -> None:
    med = attr(0x80, 4, b"\x00\x01")
    error = reset(body(med, nlri=b"", withdrawn=WITHDRAWN))
    assert (error.code, error.subcode, error.data) == (3, 5, med)  # Attribute Length Error
    origin = attr(0x40, 1, b"\x09")
    error = reset(body(origin, nlri=b"", withdrawn=WITHDRAWN))
    assert (error.code, error.subcode, error.data) == (3, 6, origin)  # Invalid ORIGIN Attribute
    flags = attr(0x80, 8, struct.pack(">I", 1))
    error = reset(body(flags, nlri=b"", withdrawn=WITHDRAWN))
    assert (error.code, error.subcode, error.data) == (3, 4, flags)  # Attribute Flags Error


def test_discard_without_reachable_nlri_is_no_reset() -> None:
    update = decode(body(attr(0x40, 6, b"\x01"), nlri=b"", withdrawn=WITHDRAWN))
    assert not update.treat_as_withdraw and update.discarded == ("ATOMIC_AGGREGATE",)
    assert update.withdrawn


def test_missing_attributes_without_nlri_are_no_error() -> None:
    update = decode(body(attr(0x80, 4, struct.pack(">I", 1)), nlri=b"", withdrawn=WITHDRAWN))
    assert not update.treat_as_withdraw and update.errors == ()


def test_mp_unreach_alone_with_wrong_flags_is_no_reset() -> None:
    update = decode(body(attr(0xC0, 15, bytes.fromhex("000201" + "3020010db80001")), nlri=b""))
    assert update.mp_unreach is not None and update.mp_unreach.withdrawn == (V6_KEY,)


# ---- RFC 7606 s.7.5, s.7.9, s.7.10: what an external peer must not send ------------------------


@pytest.mark.parametrize(("code", "value", "name"), [
    (9, b"\xc0\x00\x02\x09", "ORIGINATOR_ID"), (9, b"\x01", "ORIGINATOR_ID"),
    (10, b"\xc0\x00\x02\x09", "CLUSTER_LIST"), (10, b"", "CLUSTER_LIST"), (5, b"\x00\x00\x00\x64", "LOCAL_PREF")])
def test_reflection_attributes_and_local_pref_from_external_peer_are_discarded(code: int, value: bytes,
                                                                                name: str) -> None:
    flags = 0x40 if code == 5 else 0x80
    update = decode(body(MANDATORY + attr(flags, code, value)), ASN4)
    assert_discard(update, name)
    assert update.discarded == (name,)


@pytest.mark.parametrize(("code", "value"), [(9, b"\xc0\x00\x02"), (10, b"\xc0\x00\x02\x09\x01"), (10, b"")])
def test_malformed_reflection_attributes_from_internal_peer_withdraw(code: int, value: bytes) -> None:
    update = decode(body(MANDATORY + attr(0x80, code, value)), IBGP)
    assert_withdraw(update, "ORIGINATOR_ID" if code == 9 else "CLUSTER_LIST")


def test_well_formed_reflection_attributes_from_internal_peer_pass() -> None:
    update = decode(body(MANDATORY + attr(0x80, 9, b"\xc0\x00\x02\x09") + attr(0x80, 10, b"\x01\x02\x03\x04")),
                    IBGP)
    assert update.errors == () and not update.treat_as_withdraw


def test_duplicates_are_named_as_discarded() -> None:
    update = decode(body(MANDATORY + attr(0x80, 4, b"\x00\x00\x00\x01") + attr(0x80, 4, b"\x00\x00\x00\x02")))
    assert update.discarded == ("MED",) and update.attributes is not None and update.attributes.med == 1


def test_empty_as4_path_is_discarded() -> None:
    update = decode(body(ORIGIN + AS_PATH2 + NEXT_HOP + attr(0xC0, 17, b"")), ASN2)
    assert_discard(update, "AS4_PATH")


# ---- RFC 7607: AS 0 ----------------------------------------------------------------------------------


def test_as_zero_in_as_path_withdraws() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("02020000fde900000000")) + NEXT_HOP))
    assert_withdraw(update, "AS 0")
    assert update.reason == "asZero"


def test_as_zero_in_a_2_octet_as_path_withdraws() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("0202fde90000")) + NEXT_HOP), ASN2)
    assert update.treat_as_withdraw and update.reason == "asZero"


@pytest.mark.parametrize(("negotiated", "value"), [(ASN4, "00000000c0000209"), (ASN2, "0000c0000209")])
def test_as_zero_in_aggregator_is_discarded(negotiated: Negotiated, value: str) -> None:
    path = AS_PATH if negotiated.asn4 else AS_PATH2
    update = decode(body(ORIGIN + path + NEXT_HOP + attr(0xC0, 7, bytes.fromhex(value))), negotiated)
    assert_discard(update, "AGGREGATOR")
    assert update.attributes is not None and update.attributes.aggregator is None


def test_as_zero_in_as4_path_and_as4_aggregator_is_discarded() -> None:
    aggregator = attr(0xC0, 7, bytes.fromhex("5ba0c0000209"))
    as4_path = attr(0xC0, 17, bytes.fromhex("020100000000"))
    as4_aggregator = attr(0xC0, 18, bytes.fromhex("00000000c0000209"))
    update = decode(body(ORIGIN + AS_PATH2 + NEXT_HOP + aggregator + as4_path + as4_aggregator), ASN2)
    assert not update.treat_as_withdraw and update.discarded == ("AS4_PATH", "AS4_AGGREGATOR")
    assert update.attributes is not None and update.attributes.as_path == ((2, (65001,)),)


# ---- RFC 9774: AS_SET and AS_CONFED_SET; RFC 5065: confederation segments ---------------------------


def test_as_set_in_as_path_withdraws() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("02010000fde9" + "01020000000700000008")) + NEXT_HOP))
    assert_withdraw(update, "AS_SET")
    assert update.reason == "asSet"


def test_as_confed_set_from_internal_peer_withdraws() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("04010000fde8")) + NEXT_HOP), IBGP)
    assert update.treat_as_withdraw and update.reason == "asSet"


def test_as_set_in_as4_path_withdraws() -> None:
    as4_path = attr(0xC0, 17, bytes.fromhex("01020000000700000008"))
    update = decode(body(ORIGIN + AS_PATH2 + NEXT_HOP + as4_path), ASN2)
    assert update.treat_as_withdraw and update.reason == "asSet"


@pytest.mark.parametrize("segment", ["03010000fde8", "04010000fde8"])
def test_confederation_segment_from_external_peer_withdraws(segment: str) -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex(segment + "02010000fde9")) + NEXT_HOP), ASN4)
    assert_withdraw(update, "confederation")
    assert update.reason == "confedSegment"


def test_confederation_sequence_from_internal_peer_is_accepted() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("03010000fde8")) + NEXT_HOP), IBGP)
    assert not update.treat_as_withdraw and update.errors == ()


def test_nlri_is_located_after_a_broken_block_exactly() -> None:
    data = body(MANDATORY + bytes([0xC0, 32, 40]), nlri=NLRI + bytes.fromhex("10c0a8"))
    update = decode(data)
    assert update.treat_as_withdraw and len(update.nlri) == 2
