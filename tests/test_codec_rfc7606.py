"""UPDATE error handling, one test per case: RFC 4271 s.6.3 as revised by RFC 7606 (and RFC 6793).

Each test builds the UPDATE body by hand and checks the exact action: a ``BGPError`` with its
code/subcode (session reset), ``treat_as_withdraw`` with the prefixes kept for the caller to
withdraw, or the attribute dropped (attribute discard), with a reason in ``errors``.
"""

from __future__ import annotations

import struct

import pytest

from controlplane.bgp.errors import BGPError
from controlplane.bgp.messages import Negotiated, Update, decode_message
from controlplane.prefix import parse_prefix

ASN4 = Negotiated(asn4=True)
ASN2 = Negotiated(asn4=False)
IBGP = Negotiated(asn4=True, ibgp=True)

NLRI = bytes.fromhex("18c00002")  # 192.0.2.0/24
NLRI_KEY = parse_prefix("192.0.2.0/24")[1]


def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return struct.pack(">BBH", flags, code, len(value)) + value
    return struct.pack(">BBB", flags, code, len(value)) + value


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, bytes.fromhex("02010000fde9"))  # AS_SEQUENCE 65001, 4-octet
AS_PATH2 = attr(0x40, 2, bytes.fromhex("0201fde9"))  # the same, 2-octet
NEXT_HOP = attr(0x40, 3, bytes([192, 0, 2, 1]))
MANDATORY = ORIGIN + AS_PATH + NEXT_HOP
MP_REACH_V6 = attr(
    0x90, 14, bytes.fromhex("000201" + "10" + "20010db8" + "00" * 11 + "01" + "00" + "3020010db80001")
)
V6_KEY = parse_prefix("2001:db8:1::/48")[1]


def body(attributes: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    return (
        struct.pack(">H", len(withdrawn)) + withdrawn + struct.pack(">H", len(attributes)) + attributes + nlri
    )


def decode(data: bytes, negotiated: Negotiated = ASN4) -> Update:
    message = decode_message(2, data, negotiated)
    assert isinstance(message, Update)
    return message


def reset(data: bytes, negotiated: Negotiated = ASN4) -> BGPError:
    with pytest.raises(BGPError) as info:
        decode_message(2, data, negotiated)
    return info.value


def assert_withdraw(update: Update, fragment: str) -> None:
    assert update.treat_as_withdraw
    assert update.nlri == (NLRI_KEY,)  # kept, so the caller can withdraw them
    assert any(fragment in error and "treat-as-withdraw" in error for error in update.errors), update.errors


def assert_discard(update: Update, fragment: str) -> None:
    assert not update.treat_as_withdraw
    assert any(fragment in error and "discard" in error for error in update.errors), update.errors


# ---- session reset: framing of the UPDATE itself -------------------------------------------------


def test_withdrawn_routes_length_too_large_is_malformed_attribute_list() -> None:
    data = struct.pack(">H", 10) + bytes.fromhex("080a") + b"\x00\x00"
    error = reset(data)
    assert (error.code, error.subcode) == (3, 1)


def test_total_attribute_length_too_large_is_malformed_attribute_list() -> None:
    data = b"\x00\x00" + struct.pack(">H", len(MANDATORY) + 10) + MANDATORY
    error = reset(data)
    assert (error.code, error.subcode) == (3, 1)


def test_truncated_attribute_block_without_nlri_is_malformed_attribute_list() -> None:
    # RFC 7606 s.4 would treat as withdraw, but without reachable NLRI s.5.2 resets the session.
    error = reset(body(MANDATORY + bytes([0x40, 1, 5, 0]), nlri=b""))
    assert (error.code, error.subcode) == (3, 1)
    error = reset(body(MANDATORY + b"\x40\x01", nlri=b""))
    assert (error.code, error.subcode) == (3, 1)


def test_update_body_shorter_than_its_length_fields() -> None:
    error = reset(b"\x00\x00\x00")
    assert (error.code, error.subcode) == (1, 2)


# ---- session reset: prefixes that cannot be parsed (RFC 7606 s.3 j, s.5.3) -----------------------


def test_nlri_prefix_length_over_32_is_invalid_network_field() -> None:
    error = reset(body(MANDATORY, nlri=bytes.fromhex("21c0000201")))
    assert (error.code, error.subcode) == (3, 10)


def test_nlri_truncated_is_invalid_network_field() -> None:
    error = reset(body(MANDATORY, nlri=bytes.fromhex("18c000")))
    assert (error.code, error.subcode) == (3, 10)


def test_withdrawn_routes_malformed_is_invalid_network_field() -> None:
    error = reset(body(b"", nlri=b"", withdrawn=bytes.fromhex("2001")))
    assert (error.code, error.subcode) == (3, 10)


def test_mp_reach_too_short_is_optional_attribute_error() -> None:
    error = reset(body(ORIGIN + AS_PATH + attr(0x80, 14, b"\x00\x02\x01"), nlri=b""))
    assert (error.code, error.subcode) == (3, 9)


def test_mp_reach_next_hop_overrunning_is_optional_attribute_error() -> None:
    value = bytes.fromhex("000201" + "20") + b"\x00" * 16
    error = reset(body(ORIGIN + AS_PATH + attr(0x80, 14, value), nlri=b""))
    assert (error.code, error.subcode) == (3, 9)
    assert error.data[:2] == b"\x80\x0e"  # the attribute, for the NOTIFICATION


def test_mp_reach_next_hop_length_invalid_for_family_is_optional_attribute_error() -> None:
    value = bytes.fromhex("000201" + "04" + "c0000201" + "00")  # IPv6 with a 4-octet next hop
    error = reset(body(ORIGIN + AS_PATH + attr(0x80, 14, value), nlri=b""))
    assert (error.code, error.subcode) == (3, 9)


def test_mp_reach_bad_nlri_is_invalid_network_field() -> None:
    value = bytes.fromhex("000201" + "10") + b"\x20" * 16 + b"\x00" + bytes.fromhex("81")  # /129
    error = reset(body(ORIGIN + AS_PATH + attr(0x80, 14, value), nlri=b""))
    assert (error.code, error.subcode) == (3, 10)


def test_mp_unreach_too_short_is_optional_attribute_error() -> None:
    error = reset(body(attr(0x80, 15, b"\x00\x02"), nlri=b""))
    assert (error.code, error.subcode) == (3, 9)


def test_mp_unreach_bad_nlri_is_invalid_network_field() -> None:
    error = reset(body(attr(0x80, 15, bytes.fromhex("000201" + "3020010d")), nlri=b""))
    assert (error.code, error.subcode) == (3, 10)


def test_duplicate_mp_reach_is_malformed_attribute_list() -> None:
    error = reset(body(ORIGIN + AS_PATH + MP_REACH_V6 + MP_REACH_V6, nlri=b""))
    assert (error.code, error.subcode) == (3, 1)


def test_duplicate_mp_unreach_is_malformed_attribute_list() -> None:
    unreach = attr(0x80, 15, bytes.fromhex("000201"))
    error = reset(body(unreach + unreach, nlri=b""))
    assert (error.code, error.subcode) == (3, 1)


def test_unrecognized_well_known_attribute_is_3_2_with_the_attribute() -> None:
    strange = attr(0x40, 99, b"\x01\x02")
    error = reset(body(MANDATORY + strange))
    assert (error.code, error.subcode, error.data) == (3, 2, strange)


# ---- attributes RFC 7606 s.7 treats as withdraw ----------------------------------------------------


@pytest.mark.parametrize("value", [b"", b"\x00\x00"])
def test_origin_bad_length_withdraws(value: bytes) -> None:
    assert_withdraw(decode(body(attr(0x40, 1, value) + AS_PATH + NEXT_HOP)), "ORIGIN")


def test_origin_undefined_value_withdraws() -> None:
    assert_withdraw(decode(body(attr(0x40, 1, b"\x03") + AS_PATH + NEXT_HOP)), "ORIGIN")


@pytest.mark.parametrize(
    ("segments", "why"),
    [
        ("05010000fde9", "unknown segment type"),
        ("0200", "length zero"),
        ("02020000fde9", "overruns"),
        ("02010000fde902", "single octet"),
    ],
)
def test_malformed_as_path_withdraws(segments: str, why: str) -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex(segments)) + NEXT_HOP))
    assert_withdraw(update, "AS_PATH")
    assert any(why in error for error in update.errors)


def test_as_path_in_wrong_width_withdraws() -> None:
    # A 2-octet AS_PATH sent on a 4-octet session overruns its segment.
    assert_withdraw(decode(body(ORIGIN + attr(0x40, 2, bytes.fromhex("0202fde9fc00")) + NEXT_HOP)), "AS_PATH")


@pytest.mark.parametrize("value", [b"", b"\xc0\x00\x02", b"\xc0\x00\x02\x01\x05"])
def test_next_hop_bad_length_withdraws(value: bytes) -> None:
    assert_withdraw(decode(body(ORIGIN + AS_PATH + attr(0x40, 3, value))), "NEXT_HOP")


@pytest.mark.parametrize("address", ["0.0.0.0", "255.255.255.255", "224.0.0.5", "239.255.255.255", "240.0.0.1"])
def test_next_hop_not_a_unicast_host_withdraws(address: str) -> None:
    value = bytes(int(part) for part in address.split("."))
    update = decode(body(ORIGIN + AS_PATH + attr(0x40, 3, value)))
    assert_withdraw(update, "NEXT_HOP")
    assert update.reason == "nextHop"
    assert update.attributes is not None and update.attributes.next_hop is None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "223.255.255.254", "1.0.0.0"])
def test_next_hop_any_other_address_is_accepted(address: str) -> None:
    value = bytes(int(part) for part in address.split("."))
    update = decode(body(ORIGIN + AS_PATH + attr(0x40, 3, value)))
    assert not update.treat_as_withdraw and update.errors == ()
    assert update.attributes is not None and update.attributes.next_hop == address


def test_next_hop_invalid_without_ipv4_nlri_is_only_discarded() -> None:
    # RFC 4760 s.3: with only MP_REACH_NLRI, NEXT_HOP is ignored, so it cannot withdraw the routes.
    update = decode(body(MP_REACH_V6 + ORIGIN + AS_PATH + attr(0x40, 3, b"\x00\x00\x00\x00"), nlri=b""))
    assert_discard(update, "NEXT_HOP")
    assert update.mp_reach is not None and update.mp_reach.nlri == (V6_KEY,)


@pytest.mark.parametrize("value", [b"", b"\x00\x00\x00", b"\x00\x00\x00\x00\x01"])
def test_med_bad_length_withdraws(value: bytes) -> None:
    assert_withdraw(decode(body(MANDATORY + attr(0x80, 4, value))), "MED")


def test_local_pref_bad_length_from_internal_peer_withdraws() -> None:
    assert_withdraw(decode(body(MANDATORY + attr(0x40, 5, b"\x00\x64")), IBGP), "LOCAL_PREF")


def test_local_pref_from_internal_peer_is_kept() -> None:
    update = decode(body(MANDATORY + attr(0x40, 5, struct.pack(">I", 300))), IBGP)
    assert update.attributes is not None and update.attributes.local_pref == 300
    assert update.errors == ()


@pytest.mark.parametrize("value", [struct.pack(">I", 300), b"\x01"])
def test_local_pref_from_external_peer_is_discarded(value: bytes) -> None:
    update = decode(body(MANDATORY + attr(0x40, 5, value)), ASN4)
    assert_discard(update, "LOCAL_PREF")
    assert update.attributes is not None and update.attributes.local_pref is None


@pytest.mark.parametrize(("code", "unit"), [(8, 4), (16, 8), (32, 12)])
@pytest.mark.parametrize("extra", [-1, 1])
def test_communities_not_a_multiple_withdraw(code: int, unit: int, extra: int) -> None:
    value = b"\x01" * (unit * 2 + extra)
    name = {8: "COMMUNITIES", 16: "EXTENDED_COMMUNITIES", 32: "LARGE_COMMUNITIES"}[code]
    assert_withdraw(decode(body(MANDATORY + attr(0xC0, code, value))), name)


@pytest.mark.parametrize("code", [8, 16, 32])
def test_empty_communities_withdraw(code: int) -> None:
    update = decode(body(MANDATORY + attr(0xC0, code, b"")))
    assert update.treat_as_withdraw and any("non-zero multiple" in error for error in update.errors)


@pytest.mark.parametrize(("code", "name"), [(1, "ORIGIN"), (3, "NEXT_HOP"), (4, "MED")])
def test_zero_length_attribute_needing_data_withdraws(code: int, name: str) -> None:
    flags = 0x80 if code == 4 else 0x40
    attributes = {1: ORIGIN, 2: AS_PATH, 3: NEXT_HOP}
    attributes[code] = attr(flags, code, b"")
    assert_withdraw(decode(body(b"".join(attributes.values()))), name)


def test_empty_as_path_is_valid() -> None:
    update = decode(body(ORIGIN + attr(0x40, 2, b"") + NEXT_HOP), IBGP)
    assert not update.treat_as_withdraw and update.attributes is not None
    assert update.attributes.as_path == ()


# ---- flags (RFC 7606 s.3 c) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "name"),
    [
        (attr(0xC0, 1, b"\x00"), "ORIGIN"),  # well-known sent as optional
        (attr(0x00, 2, b""), "AS_PATH"),  # transitive bit missing
        (attr(0xC0, 4, b"\x00\x00\x00\x01"), "MED"),  # optional non-transitive sent transitive
        (attr(0x80, 8, b"\x00\x00\x00\x01"), "COMMUNITIES"),
    ],
)
def test_wrong_flags_withdraw(attribute: bytes, name: str) -> None:
    others = [a for a in (ORIGIN, AS_PATH, NEXT_HOP) if a[1] != attribute[1]]
    update = decode(body(b"".join(others) + attribute))
    assert_withdraw(update, name)
    assert any("flags" in error for error in update.errors)


def test_wrong_flags_on_mp_reach_withdraws_its_prefixes() -> None:
    wrong = bytes([0xD0]) + MP_REACH_V6[1:]  # optional transitive instead of optional
    update = decode(body(wrong + ORIGIN + AS_PATH, nlri=b""))
    assert update.treat_as_withdraw
    assert update.mp_reach is not None and update.mp_reach.nlri == (V6_KEY,)


@pytest.mark.parametrize(
    ("attribute", "name"),
    [
        (attr(0x80, 7, bytes.fromhex("0000fde9c0000209")), "AGGREGATOR"),
        (attr(0xC0, 6, b""), "ATOMIC_AGGREGATE"),
    ],
)
def test_wrong_flags_on_discardable_attributes_discard(attribute: bytes, name: str) -> None:
    update = decode(body(MANDATORY + attribute))
    assert_discard(update, name)


# ---- attribute discard (RFC 7606 s.7.6, s.7.7, RFC 6793 s.6) ---------------------------------------


def test_atomic_aggregate_with_data_is_discarded() -> None:
    update = decode(body(MANDATORY + attr(0x40, 6, b"\x01")))
    assert_discard(update, "ATOMIC_AGGREGATE")
    assert update.attributes is not None and not update.attributes.atomic_aggregate


@pytest.mark.parametrize(
    ("negotiated", "value"),
    [(ASN4, bytes.fromhex("fde9c0000209")), (ASN2, bytes.fromhex("0000fde9c0000209")), (ASN4, b"")],
)
def test_aggregator_wrong_length_is_discarded(negotiated: Negotiated, value: bytes) -> None:
    path = AS_PATH if negotiated.asn4 else AS_PATH2
    update = decode(body(ORIGIN + path + NEXT_HOP + attr(0xC0, 7, value)), negotiated)
    assert_discard(update, "AGGREGATOR")
    assert update.attributes is not None and update.attributes.aggregator is None


def test_malformed_as4_path_is_discarded() -> None:
    update = decode(body(ORIGIN + AS_PATH2 + NEXT_HOP + attr(0xC0, 17, bytes.fromhex("0203000000"))), ASN2)
    assert_discard(update, "AS4_PATH")
    assert update.attributes is not None and update.attributes.as_path == ((2, (65001,)),)


def test_malformed_as4_aggregator_is_discarded() -> None:
    aggregator = attr(0xC0, 7, bytes.fromhex("5ba0c0000209"))
    update = decode(body(ORIGIN + AS_PATH2 + NEXT_HOP + aggregator + attr(0xC0, 18, b"\x00\x01")), ASN2)
    assert_discard(update, "AS4_AGGREGATOR")
    assert update.attributes is not None and update.attributes.aggregator == (23456, "192.0.2.9")


@pytest.mark.parametrize("code", [17, 18])
def test_as4_attributes_from_a_4_octet_peer_are_discarded(code: int) -> None:
    value = bytes.fromhex("02010000fde9" if code == 17 else "fa56ea00c0000209")
    update = decode(body(MANDATORY + attr(0xC0, code, value)), ASN4)
    assert_discard(update, "from a 4-octet AS peer")
    assert update.attributes is not None and update.attributes.as_path == ((2, (65001,)),)


def test_as4_path_confederation_segments_are_discarded() -> None:
    as_path = attr(0x40, 2, bytes.fromhex("0301fde8" + "02025ba0fde9"))
    as4_path = attr(0xC0, 17, bytes.fromhex("03010000fde8" + "0202fa56ea000000fde9"))
    update = decode(body(ORIGIN + as_path + NEXT_HOP + as4_path), Negotiated(ibgp=True))  # RFC 5065: internal
    assert not update.treat_as_withdraw
    assert any("confederation segments discarded" in error for error in update.errors)
    assert update.attributes is not None
    assert update.attributes.as_path == ((3, (65000,)), (2, (4200000000, 65001)))


# ---- duplicates and missing attributes (RFC 7606 s.3 d, g) -----------------------------------------


def test_duplicate_attribute_keeps_the_first() -> None:
    first = attr(0xC0, 8, struct.pack(">I", 1))
    second = attr(0xC0, 8, struct.pack(">I", 2))
    update = decode(body(MANDATORY + first + second))
    assert_discard(update, "COMMUNITIES: duplicate")
    assert update.attributes is not None and update.attributes.communities == (1,)


def test_duplicate_unknown_attribute_keeps_the_first() -> None:
    update = decode(body(MANDATORY + attr(0xC0, 99, b"a") + attr(0xC0, 99, b"b")))
    assert_discard(update, "attribute 99: duplicate")
    assert update.attributes is not None and update.attributes.unknown == ((0xE0, 99, b"a"),)


@pytest.mark.parametrize(
    ("attributes", "missing"),
    [(AS_PATH + NEXT_HOP, "ORIGIN"), (ORIGIN + NEXT_HOP, "AS_PATH"), (ORIGIN + AS_PATH, "NEXT_HOP")],
)
def test_missing_mandatory_attribute_withdraws(attributes: bytes, missing: str) -> None:
    update = decode(body(attributes))
    assert update.treat_as_withdraw and update.nlri == (NLRI_KEY,)
    assert any("missing" in error and missing in error for error in update.errors)


def test_nlri_without_any_attribute_withdraws() -> None:
    update = decode(body(b""))
    assert update.treat_as_withdraw and update.nlri == (NLRI_KEY,) and update.attributes is None


def test_mp_reach_without_origin_withdraws() -> None:
    update = decode(body(MP_REACH_V6 + AS_PATH, nlri=b""))
    assert update.treat_as_withdraw and any("ORIGIN" in error for error in update.errors)
    assert update.mp_reach is not None and update.mp_reach.nlri == (V6_KEY,)


def test_mp_reach_needs_no_next_hop_attribute() -> None:
    update = decode(body(MP_REACH_V6 + ORIGIN + AS_PATH, nlri=b""))
    assert not update.treat_as_withdraw and update.errors == ()


def test_withdraw_only_update_needs_no_attributes() -> None:
    update = decode(body(attr(0x80, 4, struct.pack(">I", 5)), nlri=b"", withdrawn=NLRI))
    assert not update.treat_as_withdraw and update.errors == () and update.withdrawn == (NLRI_KEY,)


# ---- unknown attributes (RFC 4271 s.5, s.9) ----------------------------------------------------------


def test_unknown_optional_transitive_is_kept_with_partial_bit() -> None:
    update = decode(body(MANDATORY + attr(0xC0, 99, b"xyz")))
    assert update.attributes is not None and update.attributes.unknown == ((0xE0, 99, b"xyz"),)
    assert update.errors == ()


def test_unknown_optional_non_transitive_is_dropped_quietly() -> None:
    update = decode(body(MANDATORY + attr(0x80, 100, b"xyz")))
    assert update.attributes is not None and update.attributes.unknown == ()
    assert update.errors == () and not update.treat_as_withdraw


def test_mp_reach_for_an_unsupported_family_is_ignored() -> None:
    value = bytes.fromhex("000180" + "0c" + "00" * 12 + "00" + "58000001")  # VPNv4: AFI 1 SAFI 128
    update = decode(body(ORIGIN + AS_PATH + attr(0x80, 14, value), nlri=b""))
    assert update.mp_reach is None and not update.treat_as_withdraw
    assert any("unsupported family" in error for error in update.errors)


def test_strongest_action_wins() -> None:
    # RFC 7606 s.3 h: a discard and a withdraw together withdraw.
    update = decode(body(MANDATORY + attr(0x40, 6, b"\x01") + attr(0x80, 4, b"\x01")))
    assert update.treat_as_withdraw and len(update.errors) == 2
