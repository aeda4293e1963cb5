"""Path attribute decoding with the error handling of RFC 7606 (and RFC 6793 for AS4_*).

``decode_attributes`` walks the attribute block once. Framing errors (an attribute running past the
block, a duplicate MP_REACH_NLRI / MP_UNREACH_NLRI) and an unrecognized well-known attribute raise
``BGPError`` (session reset). Every other problem is handled per attribute with the action RFC 7606
s.7 gives it, and the walk goes on:

* treat-as-withdraw (ORIGIN, AS_PATH, NEXT_HOP, MED, iBGP LOCAL_PREF, COMMUNITIES,
  EXTENDED_COMMUNITIES, LARGE_COMMUNITIES, MP_REACH/MP_UNREACH flags; missing mandatory attributes):
  the result says so, and the caller withdraws every prefix of the UPDATE;
* attribute discard (ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR, eBGP LOCAL_PREF,
  duplicates): the attribute is dropped.

Wrong Optional/Transitive flags on a known attribute count as that attribute being malformed
(RFC 7606 s.3 c). Each action leaves a sentence in ``errors`` for the logs. MP_REACH_NLRI and
MP_UNREACH_NLRI are returned raw: :mod:`update` parses them.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from controlplane.bgp.attributes import AsPath, PathAttributes, as_path_length
from controlplane.bgp.capabilities import Negotiated
from controlplane.bgp.constants import (
    AS_TRANS,
    FLAG_EXTENDED_LENGTH,
    FLAG_OPTIONAL,
    FLAG_PARTIAL,
    FLAG_TRANSITIVE,
    AttrType,
    ErrorCode,
    SegmentType,
    UpdateSubcode,
)
from controlplane.bgp.errors import BGPError

__all__ = ["DecodedAttributes", "decode_attributes", "merge_as4_path"]


class DecodedAttributes(NamedTuple):
    attributes: PathAttributes | None
    """``None`` when the block held nothing but MP_REACH_NLRI / MP_UNREACH_NLRI."""
    mp_reach: bytes | None
    mp_unreach: bytes | None
    mp_reach_raw: bytes
    """The whole MP_REACH_NLRI attribute (header included), for NOTIFICATION data."""
    mp_unreach_raw: bytes
    treat_as_withdraw: bool
    errors: tuple[str, ...]


class _Malformed(Exception):
    """An attribute value that fails its syntax check; the message says why."""


_WITHDRAW: Final = "treat-as-withdraw"
_DISCARD: Final = "attribute discarded"

_WELL_KNOWN = FLAG_TRANSITIVE
_OPTIONAL_TRANSITIVE = FLAG_OPTIONAL | FLAG_TRANSITIVE

# type -> (expected Optional/Transitive flags, action when malformed)
_KNOWN: Final[dict[int, tuple[int, str]]] = {
    AttrType.ORIGIN: (_WELL_KNOWN, _WITHDRAW),
    AttrType.AS_PATH: (_WELL_KNOWN, _WITHDRAW),
    AttrType.NEXT_HOP: (_WELL_KNOWN, _WITHDRAW),
    AttrType.MED: (FLAG_OPTIONAL, _WITHDRAW),
    AttrType.LOCAL_PREF: (_WELL_KNOWN, _WITHDRAW),
    AttrType.ATOMIC_AGGREGATE: (_WELL_KNOWN, _DISCARD),
    AttrType.AGGREGATOR: (_OPTIONAL_TRANSITIVE, _DISCARD),
    AttrType.COMMUNITIES: (_OPTIONAL_TRANSITIVE, _WITHDRAW),
    AttrType.MP_REACH: (FLAG_OPTIONAL, _WITHDRAW),
    AttrType.MP_UNREACH: (FLAG_OPTIONAL, _WITHDRAW),
    AttrType.EXTENDED_COMMUNITIES: (_OPTIONAL_TRANSITIVE, _WITHDRAW),
    AttrType.AS4_PATH: (_OPTIONAL_TRANSITIVE, _DISCARD),
    AttrType.AS4_AGGREGATOR: (_OPTIONAL_TRANSITIVE, _DISCARD),
    AttrType.LARGE_COMMUNITIES: (_OPTIONAL_TRANSITIVE, _WITHDRAW),
}

_NAMES: Final = {int(code): code.name for code in AttrType}
_CONFED: Final = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)


def _name(code: int) -> str:
    return _NAMES.get(code, f"attribute {code}")


def _malformed_list(reason: str) -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", reason)


def decode_attributes(data: bytes, negotiated: Negotiated, has_nlri: bool) -> DecodedAttributes:
    """Decode a path attribute block. ``has_nlri``: the UPDATE's (IPv4) NLRI field is not empty."""
    asn4 = negotiated.asn4
    errors: list[str] = []
    withdraw = False
    seen: set[int] = set()
    origin: int | None = None
    as_path: AsPath = ()
    next_hop: str | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate = False
    aggregator: tuple[int, str] | None = None
    communities: tuple[int, ...] = ()
    extended: tuple[bytes, ...] = ()
    large: tuple[tuple[int, int, int], ...] = ()
    unknown: list[tuple[int, int, bytes]] = []
    as4_path: AsPath | None = None
    as4_aggregator: tuple[int, str] | None = None
    mp_reach: bytes | None = None
    mp_unreach: bytes | None = None
    mp_reach_raw = mp_unreach_raw = b""
    got_as_path = False

    end = len(data)
    i = 0
    while i < end:
        if end - i < 3:
            raise _malformed_list(f"{end - i} octet(s) left at offset {i}: too short for an attribute")
        flags = data[i]
        code = data[i + 1]
        if flags & FLAG_EXTENDED_LENGTH:
            if end - i < 4:
                raise _malformed_list(f"attribute {code} header truncated at offset {i}")
            length = data[i + 2] << 8 | data[i + 3]
            start = i + 4
        else:
            length = data[i + 2]
            start = i + 3
        stop = start + length
        if stop > end:
            raise _malformed_list(
                f"{_name(code)} at offset {i} has length {length}, running past the attribute block"
            )
        value = data[start:stop]
        raw_start = i
        i = stop

        if code in seen:
            if code in (AttrType.MP_REACH, AttrType.MP_UNREACH):
                raise _malformed_list(f"{_name(code)} appears more than once")
            errors.append(f"{_name(code)}: duplicate, {_DISCARD}")
            continue
        seen.add(code)

        known = _KNOWN.get(code)
        if known is None:
            if not flags & FLAG_OPTIONAL:
                raise BGPError(
                    ErrorCode.UPDATE_MESSAGE,
                    UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    data[raw_start:stop],
                    f"unrecognized well-known attribute {code}",
                )
            if flags & FLAG_TRANSITIVE:
                unknown.append((FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL, code, value))
            continue  # unrecognized optional non-transitive: quietly ignored (RFC 4271 s.5)

        expected_flags, action = known
        if code == AttrType.LOCAL_PREF and not negotiated.ibgp:
            errors.append(f"LOCAL_PREF from an external peer: {_DISCARD}")
            continue
        if code == AttrType.NEXT_HOP and not has_nlri:
            action = _DISCARD  # without IPv4 NLRI, NEXT_HOP is ignored (RFC 4760 s.3)
        if code in (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR) and asn4:
            errors.append(f"{_name(code)} from a 4-octet AS peer: {_DISCARD}")
            continue
        try:
            if flags & _OPTIONAL_TRANSITIVE != expected_flags:
                raise _Malformed(f"flags 0x{flags:02x} conflict with the attribute type")
            if code == AttrType.ORIGIN:
                if length != 1:
                    raise _Malformed(f"length {length}, expected 1")
                if value[0] > 2:
                    raise _Malformed(f"undefined value {value[0]}")
                origin = value[0]
            elif code == AttrType.AS_PATH:
                as_path = _as_path(value, 4 if asn4 else 2)
                got_as_path = True
            elif code == AttrType.NEXT_HOP:
                next_hop = _next_hop(value)
            elif code == AttrType.MED:
                med = _u32(value)
            elif code == AttrType.LOCAL_PREF:
                local_pref = _u32(value)
            elif code == AttrType.ATOMIC_AGGREGATE:
                if length:
                    raise _Malformed(f"length {length}, expected 0")
                atomic_aggregate = True
            elif code == AttrType.AGGREGATOR:
                aggregator = _aggregator(value, 4 if asn4 else 2)
            elif code == AttrType.COMMUNITIES:
                _check_multiple(length, 4)
                communities = struct.unpack(f">{length >> 2}I", value)
            elif code == AttrType.EXTENDED_COMMUNITIES:
                _check_multiple(length, 8)
                extended = tuple(value[j : j + 8] for j in range(0, length, 8))
            elif code == AttrType.LARGE_COMMUNITIES:
                _check_multiple(length, 12)
                words = struct.unpack(f">{length >> 2}I", value)
                large = tuple(zip(words[::3], words[1::3], words[2::3], strict=True))
            elif code == AttrType.AS4_PATH:
                as4_path = _as4_path(value, errors)
            elif code == AttrType.AS4_AGGREGATOR:
                as4_aggregator = _aggregator(value, 4)
        except _Malformed as problem:
            if action == _WITHDRAW:
                withdraw = True
            errors.append(f"{_name(code)}: {problem}, {action}")
            if code not in (AttrType.MP_REACH, AttrType.MP_UNREACH):
                continue
        if code == AttrType.MP_REACH:
            mp_reach, mp_reach_raw = value, data[raw_start:stop]
        elif code == AttrType.MP_UNREACH:
            mp_unreach, mp_unreach_raw = value, data[raw_start:stop]

    if has_nlri or mp_reach is not None:
        missing = [
            name
            for name, code in (("ORIGIN", AttrType.ORIGIN), ("AS_PATH", AttrType.AS_PATH))
            if code not in seen
        ]
        if has_nlri and AttrType.NEXT_HOP not in seen:
            missing.append("NEXT_HOP")
        if missing:
            withdraw = True
            errors.append(f"missing well-known attribute(s) {', '.join(missing)}: {_WITHDRAW}")

    if not asn4 and (as4_path is not None or as4_aggregator is not None):
        if aggregator is not None and aggregator[0] != AS_TRANS:
            errors.append("AGGREGATOR from a 2-octet AS speaker: AS4_PATH and AS4_AGGREGATOR ignored")
        else:
            if aggregator is not None and as4_aggregator is not None:
                aggregator = as4_aggregator
            if as4_path is not None and got_as_path:
                merged = merge_as4_path(as_path, as4_path)
                if merged is None:
                    errors.append("AS4_PATH longer than AS_PATH: AS4_PATH ignored")
                else:
                    as_path = merged

    attributes = None
    if seen - {AttrType.MP_REACH, AttrType.MP_UNREACH}:
        attributes = PathAttributes(
            origin,
            as_path,
            next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities,
            extended,
            large,
            tuple(unknown),
        )
    return DecodedAttributes(
        attributes, mp_reach, mp_unreach, mp_reach_raw, mp_unreach_raw, withdraw, tuple(errors)
    )


def _u32(value: bytes) -> int:
    if len(value) != 4:
        raise _Malformed(f"length {len(value)}, expected 4")
    return int.from_bytes(value, "big")


def _check_multiple(length: int, unit: int) -> None:
    if length == 0 or length % unit:
        raise _Malformed(f"length {length} is not a non-zero multiple of {unit}")


def _ipv4_text(value: bytes) -> str:
    return f"{value[0]}.{value[1]}.{value[2]}.{value[3]}"


def _next_hop(value: bytes) -> str:
    if len(value) != 4:
        raise _Malformed(f"length {len(value)}, expected 4")
    first = value[0]
    if value == b"\x00\x00\x00\x00" or value == b"\xff\xff\xff\xff" or 224 <= first <= 239:
        raise _Malformed(f"{_ipv4_text(value)} is not a unicast host address")
    return _ipv4_text(value)


def _aggregator(value: bytes, width: int) -> tuple[int, str]:
    if len(value) != width + 4:
        raise _Malformed(f"length {len(value)}, expected {width + 4}")
    return int.from_bytes(value[:width], "big"), _ipv4_text(value[width:])


def _as_path(value: bytes, width: int) -> AsPath:
    """Segments of an AS_PATH or AS4_PATH; malformed per RFC 7606 s.7.2."""
    segments: list[tuple[int, tuple[int, ...]]] = []
    end = len(value)
    i = 0
    kind_format = "H" if width == 2 else "I"
    while i < end:
        if end - i < 2:
            raise _Malformed("a single octet left after the last segment")
        kind = value[i]
        count = value[i + 1]
        if not 1 <= kind <= 4:
            raise _Malformed(f"unknown segment type {kind}")
        if count == 0:
            raise _Malformed("segment of length zero")
        stop = i + 2 + count * width
        if stop > end:
            raise _Malformed(f"segment of {count} AS numbers overruns the attribute")
        segments.append((kind, struct.unpack_from(f">{count}{kind_format}", value, i + 2)))
        i = stop
    return tuple(segments)


def _as4_path(value: bytes, errors: list[str]) -> AsPath:
    path = _as_path(value, 4)
    kept = tuple(segment for segment in path if segment[0] not in _CONFED)
    if len(kept) != len(path):
        errors.append("AS4_PATH: confederation segments discarded (RFC 6793 s.6)")
    return kept


def merge_as4_path(as_path: AsPath, as4_path: AsPath) -> AsPath | None:
    """RFC 6793 s.4.2.3: rebuild the path of a 2-octet speaker's UPDATE.

    Counting AS numbers as for path length (an AS_SET counts 1, confederation segments 0), keep the
    leading part of AS_PATH that AS4_PATH lacks and append AS4_PATH. Leading confederation
    segments, and those right after a kept segment, are kept too. ``None``: AS4_PATH is longer than
    AS_PATH and must be ignored.
    """
    need = as_path_length(as_path) - as_path_length(as4_path)
    if need < 0:
        return None
    head: list[tuple[int, tuple[int, ...]]] = []
    cut = False
    for kind, asns in as_path:
        if kind in _CONFED:
            head.append((kind, asns))  # leading, or right after a kept segment
            continue
        if need <= 0:
            break
        if kind == SegmentType.AS_SEQUENCE:
            take = asns[:need]
            need -= len(take)
            head.append((kind, take))
            if len(take) < len(asns):
                cut = True
                break
        else:
            head.append((kind, asns))
            need -= 1
    tail = list(as4_path)
    if cut and tail and tail[0][0] == SegmentType.AS_SEQUENCE and len(head[-1][1]) + len(tail[0][1]) <= 255:
        kind, asns = head.pop()
        tail[0] = (kind, asns + tail[0][1])
    return tuple(head + tail)
