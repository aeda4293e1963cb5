"""UPDATE messages (RFC 4271 s.4.3, RFC 4760 multiprotocol): decode, encode and bulk packing.

Decoding checks the framing first (RFC 4271 s.6.3: Withdrawn Routes Length and Total Path Attribute
Length must fit the message, else 3/1), then decodes the withdrawn routes, the attributes (see
:mod:`attrdecode` for the RFC 7606 actions) and the NLRI. Any prefix field that cannot be parsed
ends the session (RFC 7606 s.3 j): without every prefix, "treat-as-withdraw" is impossible.

Packing is the send-side hot path: ``pack_announcements`` encodes the attribute block once, then
fills each UPDATE with as many prefixes as fit in the negotiated maximum message size (IPv4 in the
NLRI field, IPv6 inside MP_REACH_NLRI, which RFC 7606 s.5.1 puts first in the block).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from controlplane.bgp.attrdecode import decode_attributes
from controlplane.bgp.attributes import PathAttributes, encode_attributes
from controlplane.bgp.capabilities import Negotiated
from controlplane.bgp.constants import (
    AFI_IPV4,
    AFI_IPV6,
    FLAG_EXTENDED_LENGTH,
    FLAG_OPTIONAL,
    HEADER_LEN,
    MARKER,
    SAFI_UNICAST,
    AttrType,
    ErrorCode,
    MessageType,
    UpdateSubcode,
)
from controlplane.bgp.errors import BGPError
from controlplane.bgp.nlri import decode_nlri, encode_nlri, encode_prefixes

__all__ = [
    "MpReach",
    "MpUnreach",
    "Update",
    "decode_update",
    "encode_end_of_rib",
    "encode_update_body",
    "pack_announcements",
    "pack_withdrawals",
]

_PARSED_FAMILIES = frozenset({(AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)})
_UPDATE_FIXED = HEADER_LEN + 4  # header, Withdrawn Routes Length, Total Path Attribute Length
_MP_FLAGS = FLAG_OPTIONAL | FLAG_EXTENDED_LENGTH


@dataclass(frozen=True, slots=True)
class MpReach:
    """MP_REACH_NLRI: ``next_hop`` is one address, or (global, link-local) for IPv6."""

    afi: int
    safi: int
    next_hop: tuple[str, ...]
    nlri: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class MpUnreach:
    """MP_UNREACH_NLRI. Empty ``withdrawn`` alone in an UPDATE is an End-of-RIB marker."""

    afi: int
    safi: int
    withdrawn: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Update:
    """An UPDATE. ``withdrawn``/``nlri`` are IPv4 unicast prefix keys.

    When ``treat_as_withdraw`` is set (RFC 7606), every prefix of ``nlri`` and ``mp_reach`` must be
    handled as withdrawn; ``attributes`` then holds what could be parsed, for logs only, and ``reason``
    names the first cause for the counters. ``errors`` explains each RFC 7606 action taken (also
    attribute discards, which need no action; ``discarded`` names those attributes).
    ``treat_as_withdraw``, ``errors``, ``reason`` and ``discarded`` are ignored by the encoder.
    """

    withdrawn: tuple[int, ...] = ()
    attributes: PathAttributes | None = None
    nlri: tuple[int, ...] = ()
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    treat_as_withdraw: bool = False
    errors: tuple[str, ...] = ()
    reason: str = ""
    """The counter key of why the routes are treated as withdrawn (see :mod:`attrvalues`)."""
    discarded: tuple[str, ...] = ()
    """The names of the attributes discarded (RFC 7606 attribute discard)."""

    @property
    def end_of_rib(self) -> tuple[int, int] | None:
        """(AFI, SAFI) if this is an End-of-RIB marker (RFC 4724 s.2), else ``None``."""
        if self.withdrawn or self.nlri or self.attributes is not None or self.mp_reach is not None:
            return None
        if self.mp_unreach is None:
            return (AFI_IPV4, SAFI_UNICAST)
        if self.mp_unreach.withdrawn:
            return None
        return (self.mp_unreach.afi, self.mp_unreach.safi)


def _malformed_list(reason: str) -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", reason)


def _optional_error(raw: bytes, reason: str) -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, raw, reason)


def decode_update(body: bytes, negotiated: Negotiated) -> Update:
    """Decode an UPDATE body (the message without its 19-octet header)."""
    size = len(body)
    if size < 4:
        raise _malformed_list(f"UPDATE body of {size} octets is shorter than its two length fields")
    withdrawn_len = body[0] << 8 | body[1]
    if 4 + withdrawn_len > size:
        raise _malformed_list(f"Withdrawn Routes Length {withdrawn_len} exceeds the message")
    attr_at = 2 + withdrawn_len
    attr_len = body[attr_at] << 8 | body[attr_at + 1]
    nlri_at = attr_at + 2 + attr_len
    if nlri_at > size:
        raise _malformed_list(f"Total Path Attribute Length {attr_len} exceeds the message")

    withdrawn = tuple(decode_nlri(body[2:attr_at], AFI_IPV4)) if withdrawn_len else ()
    if not attr_len:
        if nlri_at < size:
            nlri = tuple(decode_nlri(body[nlri_at:], AFI_IPV4))
            reason = "missing well-known attribute(s) ORIGIN, AS_PATH, NEXT_HOP: treat-as-withdraw"
            return Update(withdrawn, None, nlri, treat_as_withdraw=True, errors=(reason,), reason="missingAttribute")
        return Update(withdrawn)

    decoded = decode_attributes(body[attr_at + 2 : nlri_at], negotiated, nlri_at < size)
    nlri = tuple(decode_nlri(body[nlri_at:], AFI_IPV4)) if nlri_at < size else ()
    errors = decoded.errors
    mp_reach = mp_unreach = None
    if decoded.mp_reach is not None:
        mp_reach, note = _decode_mp_reach(decoded.mp_reach, decoded.mp_reach_raw)
        errors += note
    if decoded.mp_unreach is not None:
        mp_unreach, note = _decode_mp_unreach(decoded.mp_unreach, decoded.mp_unreach_raw)
        errors += note
    return Update(withdrawn, decoded.attributes, nlri, mp_reach, mp_unreach, decoded.treat_as_withdraw, errors,
                  decoded.reason, decoded.discarded)


def _family_note(name: str, afi: int, safi: int) -> tuple[str, ...]:
    return (f"{name} for unsupported family AFI {afi} SAFI {safi}: ignored",)


def _decode_mp_reach(value: bytes, raw: bytes) -> tuple[MpReach | None, tuple[str, ...]]:
    if len(value) < 5:
        raise _optional_error(raw, f"MP_REACH_NLRI of {len(value)} octets is too short")
    afi, safi, nh_len = struct.unpack_from(">HBB", value)
    nlri_at = 5 + nh_len
    if nlri_at > len(value):
        raise _optional_error(raw, f"MP_REACH_NLRI next hop length {nh_len} overruns the attribute")
    if (afi, safi) not in _PARSED_FAMILIES:
        return None, _family_note("MP_REACH_NLRI", afi, safi)
    hop = value[4 : 4 + nh_len]
    if nh_len == 4 and afi == AFI_IPV4:
        next_hop: tuple[str, ...] = (str(ipaddress.IPv4Address(hop)),)
    elif nh_len in (16, 32):
        next_hop = tuple(ipv6_text(hop[i : i + 16]) for i in range(0, nh_len, 16))
    else:
        raise _optional_error(raw, f"MP_REACH_NLRI next hop length {nh_len} is invalid for AFI {afi}")
    return MpReach(afi, safi, next_hop, tuple(decode_nlri(value[nlri_at:], afi))), ()


def ipv6_text(packed: bytes) -> str:
    """RFC 5952 text, with the dotted form for IPv4-mapped addresses (``::ffff:127.0.0.2``)."""
    address = ipaddress.IPv6Address(packed)
    mapped = address.ipv4_mapped
    return str(address) if mapped is None else f"::ffff:{mapped}"


def _decode_mp_unreach(value: bytes, raw: bytes) -> tuple[MpUnreach | None, tuple[str, ...]]:
    if len(value) < 3:
        raise _optional_error(raw, f"MP_UNREACH_NLRI of {len(value)} octets is too short")
    afi, safi = struct.unpack_from(">HB", value)
    if (afi, safi) not in _PARSED_FAMILIES:
        return None, _family_note("MP_UNREACH_NLRI", afi, safi)
    return MpUnreach(afi, safi, tuple(decode_nlri(value[3:], afi))), ()


def _mp_attribute(code: int, value: bytes) -> bytes:
    return struct.pack(">BBH", _MP_FLAGS, code, len(value)) + value


def _next_hop_bytes(afi: int, next_hop: Iterable[str]) -> bytes:
    hops = [ipaddress.ip_address(text).packed for text in next_hop]
    if afi == AFI_IPV6 and any(len(hop) != 16 for hop in hops):
        raise ValueError("an IPv6 MP_REACH_NLRI next hop must be IPv6")
    return b"".join(hops)


def encode_mp_reach(reach: MpReach) -> bytes:
    hop = _next_hop_bytes(reach.afi, reach.next_hop)
    value = struct.pack(">HBB", reach.afi, reach.safi, len(hop)) + hop + b"\x00"
    return _mp_attribute(AttrType.MP_REACH, value + encode_nlri(reach.nlri, reach.afi))


def encode_mp_unreach(unreach: MpUnreach) -> bytes:
    value = struct.pack(">HB", unreach.afi, unreach.safi) + encode_nlri(unreach.withdrawn, unreach.afi)
    return _mp_attribute(AttrType.MP_UNREACH, value)


def encode_update_body(update: Update, negotiated: Negotiated) -> bytes:
    """The UPDATE body, with MP_UNREACH_NLRI / MP_REACH_NLRI first in the attribute block."""
    withdrawn = encode_nlri(update.withdrawn, AFI_IPV4)
    block = b""
    if update.mp_unreach is not None:
        block += encode_mp_unreach(update.mp_unreach)
    if update.mp_reach is not None:
        block += encode_mp_reach(update.mp_reach)
    if update.attributes is not None:
        block += encode_attributes(update.attributes, negotiated)
    nlri = encode_nlri(update.nlri, AFI_IPV4)
    return struct.pack(">H", len(withdrawn)) + withdrawn + struct.pack(">H", len(block)) + block + nlri


def _frame(body: bytes) -> bytes:
    return MARKER + struct.pack(">HB", HEADER_LEN + len(body), MessageType.UPDATE) + body


def _chunks(records: Iterable[bytes], room: int) -> Iterator[list[bytes]]:
    """Group encoded prefixes greedily into lists of at most ``room`` octets."""
    batch: list[bytes] = []
    used = 0
    for record in records:
        size = len(record)
        if used + size > room:
            if batch:
                yield batch
            batch = [record]
            used = size
        else:
            batch.append(record)
            used += size
    if batch:
        yield batch


def _records(afi: int, keys: Iterable[int]) -> Iterator[bytes]:
    """Encode keys in slices, so a generator of a million keys is never held in memory."""
    batch: list[int] = []
    for key in keys:
        batch.append(key)
        if len(batch) == 4096:
            yield from encode_prefixes(batch, afi)
            batch = []
    if batch:
        yield from encode_prefixes(batch, afi)


def _check_afi(afi: int) -> None:
    if afi not in (AFI_IPV4, AFI_IPV6):
        raise ValueError(f"unsupported AFI {afi}")


def pack_announcements(
    afi: int,
    keys: Iterable[int],
    attributes: PathAttributes,
    negotiated: Negotiated,
    next_hop: str,
) -> Iterator[bytes]:
    """Complete UPDATE messages announcing ``keys`` with ``attributes`` via ``next_hop``.

    IPv4: NLRI field plus a NEXT_HOP attribute. IPv6: MP_REACH_NLRI (``next_hop`` may be
    ``"global"`` or ``"global,link-local"``); any NEXT_HOP in ``attributes`` is left out.
    """
    _check_afi(afi)
    limit = negotiated.max_message_len
    if afi == AFI_IPV4:
        block = encode_attributes(replace(attributes, next_hop=next_hop), negotiated)
        room = limit - _UPDATE_FIXED - len(block)
        if room <= 0:
            raise ValueError("the path attributes leave no room for NLRI")
        head = struct.pack(">HH", 0, len(block)) + block
        for batch in _chunks(_records(afi, keys), room):
            yield _frame(head + b"".join(batch))
        return
    block = encode_attributes(replace(attributes, next_hop=None), negotiated)
    hop = _next_hop_bytes(afi, next_hop.split(","))
    mp_head = struct.pack(">HBB", afi, SAFI_UNICAST, len(hop)) + hop + b"\x00"
    room = limit - _UPDATE_FIXED - len(block) - 4 - len(mp_head)
    if room <= 0:
        raise ValueError("the path attributes leave no room for NLRI")
    for batch in _chunks(_records(afi, keys), room):
        nlri = b"".join(batch)
        mp = struct.pack(">BBH", _MP_FLAGS, AttrType.MP_REACH, len(mp_head) + len(nlri)) + mp_head
        attr_len = len(mp) + len(nlri) + len(block)
        yield _frame(struct.pack(">HH", 0, attr_len) + mp + nlri + block)


def pack_withdrawals(afi: int, keys: Iterable[int], negotiated: Negotiated) -> Iterator[bytes]:
    """Complete UPDATE messages withdrawing ``keys`` (IPv4: Withdrawn Routes; IPv6: MP_UNREACH)."""
    _check_afi(afi)
    limit = negotiated.max_message_len
    if afi == AFI_IPV4:
        for batch in _chunks(_records(afi, keys), limit - _UPDATE_FIXED):
            withdrawn = b"".join(batch)
            yield _frame(struct.pack(">H", len(withdrawn)) + withdrawn + b"\x00\x00")
        return
    for batch in _chunks(_records(afi, keys), limit - _UPDATE_FIXED - 4 - 3):
        nlri = b"".join(batch)
        mp = struct.pack(">BBHHB", _MP_FLAGS, AttrType.MP_UNREACH, 3 + len(nlri), afi, SAFI_UNICAST)
        yield _frame(struct.pack(">HH", 0, len(mp) + len(nlri)) + mp + nlri)


def encode_end_of_rib(afi: int, safi: int, negotiated: Negotiated) -> bytes:
    """The End-of-RIB marker (RFC 4724 s.2): an empty UPDATE for IPv4 unicast, else an UPDATE
    holding only an empty MP_UNREACH_NLRI."""
    if (afi, safi) == (AFI_IPV4, SAFI_UNICAST):
        return _frame(b"\x00\x00\x00\x00")
    mp = struct.pack(">BBBHB", FLAG_OPTIONAL, AttrType.MP_UNREACH, 3, afi, safi)
    return _frame(struct.pack(">HH", 0, len(mp)) + mp)
