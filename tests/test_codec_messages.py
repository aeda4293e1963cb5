"""Header checks, OPEN/NOTIFICATION/KEEPALIVE/ROUTE-REFRESH decoding errors, and small helpers."""

from __future__ import annotations

import struct

import pytest

from controlplane.bgp.constants import MARKER, ErrorCode, UpdateSubcode, error_name
from controlplane.bgp.errors import BGPError
from controlplane.bgp.messages import (
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
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
    encode_keepalive,
    negotiate,
    parse_header,
)


def header(length: int, kind: int, marker: bytes = MARKER) -> bytes:
    return marker + struct.pack(">HB", length, kind)


def header_error(buf: bytes, max_len: int = 4096) -> BGPError:
    with pytest.raises(BGPError) as info:
        parse_header(buf, max_len)
    return info.value


# ---- parse_header ---------------------------------------------------------------------------------


def test_header_ok() -> None:
    assert parse_header(header(19, 4), 4096) == (19, 4)
    assert parse_header(memoryview(header(4096, 2)), 4096) == (4096, 2)
    assert parse_header(header(65535, 2), 65535) == (65535, 2)


def test_marker_checked_first() -> None:
    error = header_error(header(0, 99, b"\xff" * 15 + b"\xfe"))
    assert (error.code, error.subcode) == (1, 1)


@pytest.mark.parametrize("length", [0, 18, 4097])
def test_bad_length_checked_before_type(length: int) -> None:
    error = header_error(header(length, 99))
    assert (error.code, error.subcode, error.data) == (1, 2, struct.pack(">H", length))


def test_extended_length_needs_extended_max() -> None:
    assert header_error(header(5000, 2)).subcode == 2
    assert parse_header(header(5000, 2), 65535) == (5000, 2)


@pytest.mark.parametrize("kind", [0, 6, 255])
def test_unknown_type(kind: int) -> None:
    error = header_error(header(19, kind))
    assert (error.code, error.subcode, error.data) == (1, 3, bytes([kind]))


@pytest.mark.parametrize(("kind", "length"), [(1, 28), (2, 22), (3, 20), (4, 20), (4, 23), (1, 4097)])
def test_per_type_length(kind: int, length: int) -> None:
    error = header_error(header(length, kind), 65535)
    assert (error.code, error.subcode, error.data) == (1, 2, struct.pack(">H", length))


@pytest.mark.parametrize("length", [19, 22, 24, 100])
@pytest.mark.parametrize("subtype", [0, 1, 2])
def test_route_refresh_wrong_length_is_7_1(length: int, subtype: int) -> None:
    raw = header(length, 5) + (b"\x00\x01" + bytes([subtype]) + b"\x01" * 97)[: length - 19]
    assert parse_header(raw[:19], 4096) == (length, 5)  # the header alone is fine: the body decides
    with pytest.raises(BGPError) as info:
        decode_message(5, raw[19:], Negotiated())
    assert (info.value.code, info.value.subcode) == (7, 1)
    assert info.value.data == raw  # RFC 7313 s.5: the complete message


@pytest.mark.parametrize("body", ["000103", "00010301", "000180010203"])
def test_route_refresh_unknown_subtype_is_returned_for_the_session_to_ignore(body: str) -> None:
    message = decode_message(5, bytes.fromhex(body), Negotiated())
    assert isinstance(message, RouteRefresh) and message.subtype in (3, 128)


def test_truncated_header_is_a_bgp_error() -> None:
    assert header_error(MARKER).code == 1


# ---- the other message types ----------------------------------------------------------------------


def test_keepalive_with_body_is_bad_length() -> None:
    with pytest.raises(BGPError) as info:
        decode_message(4, b"\x00", Negotiated())
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 2, b"\x00\x14")


def test_keepalive_constant() -> None:
    assert encode_keepalive() == MARKER + b"\x00\x13\x04"
    assert encode(Keepalive(), Negotiated()) == encode_keepalive()


@pytest.mark.parametrize("data", [b"", b"\x06"])
def test_notification_shorter_than_two_octets(data: bytes) -> None:
    with pytest.raises(BGPError) as info:
        decode_message(3, data, Negotiated())
    assert (info.value.code, info.value.subcode) == (1, 2)


@pytest.mark.parametrize("data", [b"\x00\x00", b"\xff\xff", b"\x03\x01\x40\x01\x01\x05"])
def test_any_notification_of_two_octets_or_more_decodes(data: bytes) -> None:
    assert decode_message(3, data, Negotiated()) == Notification(data[0], data[1], data[2:])


def test_notification_data_is_cut_to_fit() -> None:
    raw = encode(Notification(3, 1, b"x" * 5000), Negotiated())
    assert len(raw) == 4096
    assert len(encode(Notification(3, 1, b"x" * 5000), Negotiated(extended_message=True))) == 19 + 2 + 5000


def test_notification_from_error() -> None:
    error = BGPError(3, 2, b"\x40\x63\x00", "why")
    assert Notification.from_error(error) == Notification(3, 2, b"\x40\x63\x00")
    assert "UPDATE_MESSAGE/UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE" in str(error) and "why" in str(error)
    assert error_name(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_AS_PATH) == (
        "UPDATE_MESSAGE/MALFORMED_AS_PATH"
    )
    assert error_name(9, 9) == "9/9" and error_name(4, 0) == "HOLD_TIMER_EXPIRED/0"


@pytest.mark.parametrize(
    ("body", "expected"), [("00010001", RouteRefresh(1, 1)), ("00020280", RouteRefresh(2, 128, 2))]
)
def test_route_refresh_decodes_any_family_and_subtype(body: str, expected: RouteRefresh) -> None:
    assert decode_message(5, bytes.fromhex(body), Negotiated()) == expected


def test_route_refresh_body_wrong_length_is_7_1() -> None:
    with pytest.raises(BGPError) as info:
        decode_message(5, b"\x00\x01\x00", Negotiated())
    assert (info.value.code, info.value.subcode) == (7, 1)
    assert info.value.data == header(22, 5) + b"\x00\x01\x00"


def test_decode_message_unknown_type() -> None:
    with pytest.raises(BGPError) as info:
        decode_message(9, b"", Negotiated())
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 3, b"\x09")


def test_update_accepts_memoryview() -> None:
    message = decode_message(2, memoryview(b"\x00\x00\x00\x00"), Negotiated())
    assert message == Update()


# ---- OPEN -----------------------------------------------------------------------------------------


def open_body(params: bytes, params_len: int | None = None) -> bytes:
    size = len(params) if params_len is None else params_len
    return bytes.fromhex("04fde900b40a000001") + bytes([size]) + params


def open_error(params: bytes, params_len: int | None = None) -> BGPError:
    with pytest.raises(BGPError) as info:
        decode_message(1, open_body(params, params_len), Negotiated())
    return info.value


def test_open_too_short() -> None:
    with pytest.raises(BGPError) as info:
        decode_message(1, b"\x04\xfd\xe9", Negotiated())
    assert (info.value.code, info.value.subcode) == (1, 2)


@pytest.mark.parametrize("params_len", [1, 5])
def test_open_parameters_length_mismatch_is_2_0(params_len: int) -> None:
    error = open_error(bytes.fromhex("02020200"), params_len)
    assert (error.code, error.subcode) == (2, 0)


def test_open_parameter_overrun_is_2_0() -> None:
    assert (open_error(bytes.fromhex("0205020000")).code, open_error(bytes.fromhex("02")).subcode) == (2, 0)


@pytest.mark.parametrize("kind", [1, 3, 254])
def test_open_unsupported_optional_parameter_is_2_4(kind: int) -> None:
    error = open_error(bytes([kind, 2, 0xAB, 0xCD]))
    assert (error.code, error.subcode, error.data) == (2, 4, bytes([kind, 2, 0xAB, 0xCD]))


@pytest.mark.parametrize(
    "capability",
    [
        "0103000100",
        "010500010001ff",
        "020100",
        "060101",
        "4103000000",
        "4105000000ffff",
        "4001ff",
        "4005807800010180",
    ],
)
def test_known_capability_with_bad_length_is_2_0(capability: str) -> None:
    value = bytes.fromhex(capability)
    error = open_error(bytes([2, len(value)]) + value)
    assert (error.code, error.subcode) == (2, 0)


def test_capability_overrunning_its_parameter_is_2_0() -> None:
    error = open_error(bytes.fromhex("0203010400"))
    assert (error.code, error.subcode) == (2, 0)
    error = open_error(bytes.fromhex("020101"))
    assert (error.code, error.subcode) == (2, 0)


def test_unknown_capabilities_are_never_fatal() -> None:
    params = bytes.fromhex("0206" + "4904deadbeef" + "0202" + "8000" + "0200")
    message = decode_message(1, open_body(params), Negotiated())
    assert isinstance(message, Open)
    assert message.capabilities == (UnknownCapability(73, bytes.fromhex("deadbeef")), UnknownCapability(128))


def test_open_rfc9072_extended_parameters() -> None:
    big = UnknownCapability(200, b"z" * 250)
    message = Open(4, 65001, 90, "10.0.0.1", (big, RouteRefreshCapability()))
    raw = encode(message, Negotiated())
    assert raw[19 + 9 : 19 + 11] == b"\xff\xff"
    assert decode_message(1, raw[19:], Negotiated()) == message
    with pytest.raises(BGPError):
        decode_message(1, open_body(b"\xff\x00", 255), Negotiated())


def test_open_helpers() -> None:
    message = Open.make(4200000000, 90, "10.0.0.1", (RouteRefreshCapability(),))
    assert message.my_as == 23456 and message.asn == 4200000000
    assert Open(4, 65001, 90, "10.0.0.1").asn == 65001
    ours = Open.make(
        31898,
        90,
        "10.0.0.1",
        (MultiprotocolCapability(1, 1), MultiprotocolCapability(2, 1), ExtendedMessageCapability()),
    )
    theirs = Open(4, 65001, 30, "10.0.0.2", (FourOctetAsCapability(65001), MultiprotocolCapability(2, 1)))
    # 4-octet AS on both sides; extended messages only on ours; IPv6 unicast is the one common family.
    assert negotiate(ours, theirs) == Negotiated(asn4=True, extended_message=False,
                                                 families=frozenset({(2, 1)}), ibgp=False)
    # No capabilities at all: 2-octet AS, IPv4 unicast (RFC 4760 s.1), iBGP as the ASes are equal.
    assert negotiate(Open(4, 1, 90, "1.1.1.1"), Open(4, 1, 90, "2.2.2.2")) == Negotiated(
        asn4=False, extended_message=False, families=frozenset({(1, 1)}), ibgp=True)


def test_encode_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        encode(Open(4, 70000, 90, "10.0.0.1"), Negotiated())
    with pytest.raises(ValueError):
        encode(Open(4, 1, 90, "10.0.0.1", (GracefulRestartCapability(16, 0),)), Negotiated())
    with pytest.raises(ValueError):
        encode(RouteRefresh(70000, 1), Negotiated())
    with pytest.raises(ValueError):
        encode(Open(4, 1, 90, "not an address"), Negotiated())


def test_bgp_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(BGPError(3, 1, b"\x01", "reason")))
    assert (error.code, error.subcode, error.data, error.reason) == (3, 1, b"\x01", "reason")
