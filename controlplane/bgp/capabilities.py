"""OPEN capabilities (RFC 5492) and ``Negotiated``, the session context every codec call takes.

Each capability is a frozen dataclass with ``encode_value()`` (the bytes after code and length);
``decode_capability(code, value)`` is the inverse and never fails on an unknown code (it returns
``UnknownCapability``). A known capability whose value has the wrong size is an OPEN Message Error
2/0: RFC 5492 gives it no subcode of its own.

``Negotiated`` is what the two OPENs agreed on (``negotiate()`` in :mod:`messages` computes it) plus
whether the session is iBGP. The codec reads it to choose 2- or 4-octet AS numbers, the maximum
message size, and whether LOCAL_PREF may cross the session.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar

from controlplane.bgp.constants import (
    AFI_IPV4,
    EXTENDED_MAX_MESSAGE_LEN,
    MAX_MESSAGE_LEN,
    SAFI_UNICAST,
    CapabilityCode,
    ErrorCode,
    OpenSubcode,
)
from controlplane.bgp.errors import BGPError

__all__ = [
    "Capability",
    "EnhancedRouteRefreshCapability",
    "ExtendedMessageCapability",
    "FourOctetAsCapability",
    "GracefulRestartCapability",
    "MultiprotocolCapability",
    "Negotiated",
    "RouteRefreshCapability",
    "UnknownCapability",
    "decode_capability",
]


_IPV4_UNICAST = frozenset({(AFI_IPV4, SAFI_UNICAST)})


@dataclass(frozen=True, slots=True)
class Negotiated:
    """Session parameters the codec depends on.

    ``asn4``: both sides sent the 4-octet AS capability (RFC 6793). ``extended_message``: both sent
    the extended message capability (RFC 8654). ``families``: the (AFI, SAFI) pairs both sides
    support. ``ibgp``: the peer is in our AS; on an eBGP session LOCAL_PREF is neither sent nor
    accepted (RFC 4271 s.5.1.5, RFC 7606 s.7.5).
    """

    asn4: bool = False
    extended_message: bool = False
    families: frozenset[tuple[int, int]] = field(default_factory=lambda: _IPV4_UNICAST)
    ibgp: bool = False

    @property
    def max_message_len(self) -> int:
        return EXTENDED_MAX_MESSAGE_LEN if self.extended_message else MAX_MESSAGE_LEN


@dataclass(frozen=True, slots=True)
class MultiprotocolCapability:
    """RFC 4760: the sender can carry ``afi``/``safi`` routes."""

    afi: int
    safi: int

    code: ClassVar[int] = CapabilityCode.MULTIPROTOCOL

    def encode_value(self) -> bytes:
        return struct.pack(">HBB", self.afi, 0, self.safi)


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability:
    """RFC 2918: the sender accepts ROUTE-REFRESH messages."""

    code: ClassVar[int] = CapabilityCode.ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefreshCapability:
    """RFC 7313: the sender marks a refresh with BoRR / EoRR and understands them."""

    code: ClassVar[int] = CapabilityCode.ENHANCED_ROUTE_REFRESH

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ExtendedMessageCapability:
    """RFC 8654: the sender accepts messages up to 65535 octets."""

    code: ClassVar[int] = CapabilityCode.EXTENDED_MESSAGE

    def encode_value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class FourOctetAsCapability:
    """RFC 6793: the sender's real AS number, which may not fit the OPEN's 2-octet field."""

    asn: int

    code: ClassVar[int] = CapabilityCode.FOUR_OCTET_AS

    def encode_value(self) -> bytes:
        return struct.pack(">I", self.asn)


@dataclass(frozen=True, slots=True)
class GracefulRestartCapability:
    """RFC 4724. ``restart_flags`` is the top nibble (R = 8, N = 4 of RFC 8538), ``restart_time``
    12 bits of seconds, ``families`` (AFI, SAFI, flags) with flag 0x80 = forwarding state kept."""

    restart_flags: int
    restart_time: int
    families: tuple[tuple[int, int, int], ...] = ()

    code: ClassVar[int] = CapabilityCode.GRACEFUL_RESTART

    def encode_value(self) -> bytes:
        if not (0 <= self.restart_flags <= 0xF and 0 <= self.restart_time <= 0xFFF):
            raise ValueError("graceful restart flags are 4 bits and the restart time 12 bits")
        head = struct.pack(">H", self.restart_flags << 12 | self.restart_time)
        return head + b"".join(struct.pack(">HBB", afi, safi, flags) for afi, safi, flags in self.families)


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    """Any capability this codec does not interpret, kept verbatim."""

    code: int
    value: bytes = b""

    def encode_value(self) -> bytes:
        return self.value


Capability = (
    MultiprotocolCapability
    | RouteRefreshCapability
    | EnhancedRouteRefreshCapability
    | ExtendedMessageCapability
    | FourOctetAsCapability
    | GracefulRestartCapability
    | UnknownCapability
)


def _bad_length(name: str, value: bytes, expected: str) -> BGPError:
    return BGPError(
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.UNSPECIFIC,
        b"",
        f"{name} capability has {len(value)} octets, expected {expected}",
    )


def decode_capability(code: int, value: bytes) -> Capability:
    """The capability ``code`` with ``value``; unknown codes never fail, bad lengths are 2/0."""
    if code == CapabilityCode.MULTIPROTOCOL:
        if len(value) != 4:
            raise _bad_length("multiprotocol", value, "4")
        afi, _reserved, safi = struct.unpack(">HBB", value)
        return MultiprotocolCapability(afi, safi)
    if code == CapabilityCode.ROUTE_REFRESH:
        if value:
            raise _bad_length("route refresh", value, "0")
        return RouteRefreshCapability()
    if code == CapabilityCode.ENHANCED_ROUTE_REFRESH:
        if value:
            raise _bad_length("enhanced route refresh", value, "0")
        return EnhancedRouteRefreshCapability()
    if code == CapabilityCode.EXTENDED_MESSAGE:
        if value:
            raise _bad_length("extended message", value, "0")
        return ExtendedMessageCapability()
    if code == CapabilityCode.FOUR_OCTET_AS:
        if len(value) != 4:
            raise _bad_length("4-octet AS", value, "4")
        return FourOctetAsCapability(struct.unpack(">I", value)[0])
    if code == CapabilityCode.GRACEFUL_RESTART:
        if len(value) < 2 or (len(value) - 2) % 4:
            raise _bad_length("graceful restart", value, "2 + 4 * n")
        (head,) = struct.unpack_from(">H", value)
        families = tuple(struct.iter_unpack(">HBB", value[2:]))
        return GracefulRestartCapability(head >> 12, head & 0xFFF, families)
    return UnknownCapability(code, bytes(value))
