"""BGP-4 messages: header framing, the five message types, and ``encode``/``decode_message``.

The session reads 19 octets, calls ``parse_header`` (which checks the header in RFC 4271 s.6.1
order and returns the length and type), reads the rest, and calls ``decode_message`` with the body.
Both raise only ``BGPError``, whose code/subcode/data are the NOTIFICATION to send; everything the
session may survive comes back inside the decoded message. ``encode`` is the inverse of both.

Messages are frozen dataclasses. UPDATE lives in :mod:`update` and capabilities in
:mod:`capabilities`; both are re-exported here, so ``messages`` is the one import a session needs.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from controlplane.bgp.capabilities import (
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    MultiprotocolCapability,
    Negotiated,
    RouteRefreshCapability,
    UnknownCapability,
    decode_capability,
)
from controlplane.bgp.constants import (
    AFI_IPV4,
    AS_TRANS,
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE_LEN,
    SAFI_UNICAST,
    ErrorCode,
    HeaderSubcode,
    MessageType,
    OpenSubcode,
    OptionalParameterType,
    RouteRefreshSubcode,
    RouteRefreshSubtype,
)
from controlplane.bgp.errors import BGPError
from controlplane.bgp.update import (
    MpReach,
    MpUnreach,
    Update,
    decode_update,
    encode_end_of_rib,
    encode_update_body,
    pack_announcements,
    pack_withdrawals,
)

__all__ = [
    "Capability",
    "EnhancedRouteRefreshCapability",
    "ExtendedMessageCapability",
    "FourOctetAsCapability",
    "GracefulRestartCapability",
    "Keepalive",
    "Message",
    "MpReach",
    "MpUnreach",
    "MultiprotocolCapability",
    "Negotiated",
    "Notification",
    "Open",
    "RouteRefresh",
    "RouteRefreshCapability",
    "UnknownCapability",
    "Update",
    "decode_message",
    "encode",
    "encode_end_of_rib",
    "encode_keepalive",
    "negotiate",
    "pack_announcements",
    "pack_withdrawals",
    "parse_header",
]

_MIN_LENGTH: dict[int, int] = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


@dataclass(frozen=True, slots=True)
class Open:
    """OPEN (RFC 4271 s.4.2). ``my_as`` is the raw 2-octet field (AS_TRANS for a 4-octet AS)."""

    version: int
    my_as: int
    hold_time: int
    bgp_identifier: str
    capabilities: tuple[Capability, ...] = ()

    @property
    def asn(self) -> int:
        """The sender's AS: the 4-octet AS capability if present (RFC 6793), else ``my_as``."""
        for capability in self.capabilities:
            if isinstance(capability, FourOctetAsCapability):
                return capability.asn
        return self.my_as

    @classmethod
    def make(
        cls, asn: int, hold_time: int, bgp_identifier: str, capabilities: tuple[Capability, ...] = ()
    ) -> Open:
        """An OPEN for ``asn`` that always offers the 4-octet AS capability."""
        if not any(isinstance(capability, FourOctetAsCapability) for capability in capabilities):
            capabilities = (*capabilities, FourOctetAsCapability(asn))
        return cls(4, asn if asn <= 0xFFFF else AS_TRANS, hold_time, bgp_identifier, capabilities)


@dataclass(frozen=True, slots=True)
class Notification:
    code: int
    subcode: int
    data: bytes = b""

    @classmethod
    def from_error(cls, error: BGPError) -> Notification:
        return cls(error.code, error.subcode, error.data)


@dataclass(frozen=True, slots=True)
class Keepalive:
    pass


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """ROUTE-REFRESH (RFC 2918); ``subtype`` 1/2 are BoRR/EoRR of RFC 7313, others are ignored."""

    afi: int
    safi: int
    subtype: int = 0


Message = Open | Update | Notification | Keepalive | RouteRefresh

_KEEPALIVE = MARKER + struct.pack(">HB", HEADER_LEN, MessageType.KEEPALIVE)


def encode_keepalive() -> bytes:
    return _KEEPALIVE


def _header_error(subcode: int, data: bytes, reason: str) -> BGPError:
    return BGPError(ErrorCode.MESSAGE_HEADER, subcode, data, reason)


def parse_header(buf: bytes | memoryview, max_len: int) -> tuple[int, int]:
    """``(length, type)`` of the message starting ``buf`` (at least its 19 header octets).

    Checks, in this order: the Marker (1/1), the length against 19..``max_len`` (1/2), the type
    (1/3), and the length allowed for the type (1/2). An OPEN may not exceed 4096 octets even with
    extended messages (RFC 8654). A ROUTE-REFRESH of the wrong length is left to ``decode_message``,
    since its NOTIFICATION (7/1) carries the complete message (RFC 7313 s.5).
    """
    if len(buf) < HEADER_LEN:
        raise _header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, b"", f"header of {len(buf)} octets")
    if buf[:16] != MARKER:
        raise _header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, b"", "marker is not all ones")
    length = buf[16] << 8 | buf[17]
    kind = buf[18]
    length_field = bytes(buf[16:18])
    if not HEADER_LEN <= length <= max_len:
        raise _header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, length_field, f"length {length}")
    minimum = _MIN_LENGTH.get(kind)
    if minimum is None:
        raise _header_error(HeaderSubcode.BAD_MESSAGE_TYPE, bytes([kind]), f"message type {kind}")
    if kind != MessageType.ROUTE_REFRESH and (
        length < minimum
        or (kind == MessageType.KEEPALIVE and length != HEADER_LEN)
        or (kind == MessageType.OPEN and length > MAX_MESSAGE_LEN)
    ):
        name = MessageType(kind).name
        raise _header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, length_field, f"{name} of length {length}")
    return length, kind


def _length_error(body: bytes, kind: int) -> BGPError:
    length = HEADER_LEN + len(body)
    return _header_error(
        HeaderSubcode.BAD_MESSAGE_LENGTH,
        struct.pack(">H", min(length, 0xFFFF)),
        f"{MessageType(kind).name} of length {length}",
    )


def decode_message(msg_type: int, body: bytes | memoryview, negotiated: Negotiated) -> Message:
    """Decode a message body (the octets after the header) of type ``msg_type``."""
    data = body.tobytes() if isinstance(body, memoryview) else bytes(body)
    if msg_type == MessageType.UPDATE:
        if len(data) < 4:
            raise _length_error(data, msg_type)
        return decode_update(data, negotiated)
    if msg_type == MessageType.KEEPALIVE:
        if data:
            raise _length_error(data, msg_type)
        return Keepalive()
    if msg_type == MessageType.NOTIFICATION:
        if len(data) < 2:
            raise _length_error(data, msg_type)
        return Notification(data[0], data[1], data[2:])
    if msg_type == MessageType.ROUTE_REFRESH:
        if len(data) != 4:
            if len(data) >= 3 and data[2] > RouteRefreshSubtype.END_OF_ROUTE_REFRESH:
                # RFC 7313 s.5: an unknown subtype is ignored (by the session), whatever its length
                return RouteRefresh(data[0] << 8 | data[1], data[3] if len(data) > 3 else 0, data[2])
            raise BGPError(
                ErrorCode.ROUTE_REFRESH_MESSAGE,
                RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                MARKER + struct.pack(">HB", min(HEADER_LEN + len(data), 0xFFFF), msg_type) + data,
                f"ROUTE-REFRESH body of {len(data)} octets",
            )
        afi, subtype, safi = struct.unpack(">HBB", data)
        return RouteRefresh(afi, safi, subtype)
    if msg_type == MessageType.OPEN:
        if len(data) < 10:
            raise _length_error(data, msg_type)
        return _decode_open(data)
    raise _header_error(HeaderSubcode.BAD_MESSAGE_TYPE, bytes([msg_type & 0xFF]), f"message type {msg_type}")


_EXTENDED_PARAMS: Final = bytes([OptionalParameterType.EXTENDED_LENGTH])


def _open_error(reason: str, subcode: int = OpenSubcode.UNSPECIFIC, data: bytes = b"") -> BGPError:
    return BGPError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def _decode_open(data: bytes) -> Open:
    version, my_as, hold_time = struct.unpack_from(">BHH", data)
    identifier = str(ipaddress.IPv4Address(data[5:9]))
    params_len = data[9]
    params = data[10:]
    wide = False
    if params_len == 255 and params[:1] == _EXTENDED_PARAMS:  # RFC 9072 extended optional parameters
        if len(params) < 3:
            raise _open_error("extended optional parameters length truncated")
        params_len = params[1] << 8 | params[2]
        params = params[3:]
        wide = True
    if params_len != len(params):
        raise _open_error(f"optional parameters length {params_len} but {len(params)} octets follow")
    capabilities: list[Capability] = []
    head = 3 if wide else 2
    i = 0
    while i < len(params):
        if len(params) - i < head:
            raise _open_error("optional parameter header truncated")
        kind = params[i]
        size = params[i + 1] << 8 | params[i + 2] if wide else params[i + 1]
        start = i + head
        i = start + size
        if i > len(params):
            raise _open_error(f"optional parameter {kind} of length {size} overruns the OPEN")
        if kind != OptionalParameterType.CAPABILITIES:
            raise _open_error(
                f"optional parameter type {kind}",
                OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                params[start - head : i],
            )
        capabilities.extend(_decode_capabilities(params[start:i]))
    return Open(version, my_as, hold_time, identifier, tuple(capabilities))


def _decode_capabilities(value: bytes) -> list[Capability]:
    found: list[Capability] = []
    i = 0
    while i < len(value):
        if len(value) - i < 2:
            raise _open_error("capability header truncated")
        code, size = value[i], value[i + 1]
        start = i + 2
        i = start + size
        if i > len(value):
            raise _open_error(f"capability {code} of length {size} overruns its parameter")
        found.append(decode_capability(code, value[start:i]))
    return found


def _encode_open(message: Open) -> bytes:
    params = b"".join(
        struct.pack(">BBBB", OptionalParameterType.CAPABILITIES, len(value) + 2, capability.code, len(value))
        + value
        for capability in message.capabilities
        for value in (capability.encode_value(),)
    )
    head = struct.pack(">BHH", message.version, message.my_as, message.hold_time)
    head += ipaddress.IPv4Address(message.bgp_identifier).packed
    if len(params) < 255:
        return head + bytes([len(params)]) + params
    # RFC 9072: the non-extended length 255, type 255, then a 2-octet length and 2-octet params.
    wide = b"".join(
        struct.pack(">BHBB", OptionalParameterType.CAPABILITIES, len(value) + 2, capability.code, len(value))
        + value
        for capability in message.capabilities
        for value in (capability.encode_value(),)
    )
    return head + struct.pack(">BBH", 255, OptionalParameterType.EXTENDED_LENGTH, len(wide)) + wide


def encode(msg: Message, negotiated: Negotiated) -> bytes:
    """The complete message, header included.

    Raises ``ValueError`` for a message that cannot be encoded (a value out of range, or an OPEN or
    UPDATE larger than allowed). A NOTIFICATION's data is cut to fit the maximum message size.
    """
    try:
        if isinstance(msg, Update):
            kind, body = MessageType.UPDATE, encode_update_body(msg, negotiated)
        elif isinstance(msg, Keepalive):
            return _KEEPALIVE
        elif isinstance(msg, Notification):
            room = negotiated.max_message_len - HEADER_LEN - 2
            kind, body = MessageType.NOTIFICATION, struct.pack(">BB", msg.code, msg.subcode) + msg.data[:room]
        elif isinstance(msg, RouteRefresh):
            kind, body = MessageType.ROUTE_REFRESH, struct.pack(">HBB", msg.afi, msg.subtype, msg.safi)
        else:
            kind, body = MessageType.OPEN, _encode_open(msg)
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    length = HEADER_LEN + len(body)
    limit = MAX_MESSAGE_LEN if kind == MessageType.OPEN else negotiated.max_message_len
    if length > limit:
        raise ValueError(f"{kind.name} of {length} octets exceeds the {limit}-octet limit")
    return MARKER + struct.pack(">HB", length, kind) + body


def negotiate(sent: Open, received: Open) -> Negotiated:
    """What two OPENs agree on. Without multiprotocol capabilities a side supports IPv4 unicast
    only (RFC 4760 s.8)."""

    def families(message: Open) -> set[tuple[int, int]]:
        found = {
            (capability.afi, capability.safi)
            for capability in message.capabilities
            if isinstance(capability, MultiprotocolCapability)
        }
        return found or {(AFI_IPV4, SAFI_UNICAST)}

    def has(message: Open, kind: type) -> bool:
        return any(isinstance(capability, kind) for capability in message.capabilities)

    return Negotiated(
        asn4=has(sent, FourOctetAsCapability) and has(received, FourOctetAsCapability),
        extended_message=has(sent, ExtendedMessageCapability) and has(received, ExtendedMessageCapability),
        families=frozenset(families(sent) & families(received)),
        ibgp=sent.asn == received.asn,
    )
