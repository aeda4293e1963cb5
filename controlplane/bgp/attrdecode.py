"""Path attribute decoding with the error handling of RFC 7606 (and RFC 6793 for AS4_*).

``decode_attributes`` walks the attribute block once, keeping what it finds in a :class:`_Walk`.
Framing errors (an attribute running past the block, a duplicate MP_REACH_NLRI / MP_UNREACH_NLRI)
and an unrecognized well-known attribute raise ``BGPError`` (session reset). Every known attribute
type has a :class:`_Rule` in ``_RULES``: the Optional/Transitive flags it must carry, the action RFC
7606 s.7 gives it when malformed, and a small checker that parses its value. Every other problem is
handled per attribute with that action, and the walk goes on:

* treat-as-withdraw (ORIGIN, AS_PATH, NEXT_HOP, MED, iBGP LOCAL_PREF, COMMUNITIES,
  EXTENDED_COMMUNITIES, LARGE_COMMUNITIES, MP_REACH/MP_UNREACH flags; missing mandatory attributes):
  the result says so, and the caller withdraws every prefix of the UPDATE;
* attribute discard (ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR, eBGP LOCAL_PREF,
  duplicates): the attribute is dropped.

Wrong Optional/Transitive flags on a known attribute count as that attribute being malformed
(RFC 7606 s.3 c). Each action leaves a sentence in ``errors`` for the logs. After the walk come the
checks on the whole block: mandatory attributes present (RFC 7606 s.3 d), then the AS4_PATH /
AS4_AGGREGATOR merge for a 2-octet speaker (RFC 6793 s.4.2.3). MP_REACH_NLRI and MP_UNREACH_NLRI
are returned raw: :mod:`update` parses them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
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
    Origin,
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

_NAMES: Final = {int(code): code.name for code in AttrType}
_CONFED: Final = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)
_MP: Final = (AttrType.MP_REACH, AttrType.MP_UNREACH)
_AS4: Final = (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)


def _name(code: int) -> str:
    return _NAMES.get(code, f"attribute {code}")


def _malformed_list(reason: str) -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", reason)


def decode_attributes(data: bytes, negotiated: Negotiated, has_nlri: bool) -> DecodedAttributes:
    """Decode a path attribute block. ``has_nlri``: the UPDATE's (IPv4) NLRI field is not empty."""
    walk = _Walk(negotiated, has_nlri)
    for flags, code, value, raw in _split(data):
        walk.take(flags, code, value, raw)
    walk.check_mandatory()
    walk.merge_as4()
    return walk.result()


def _split(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Frame the block: (flags, type code, value, whole attribute) for each attribute in order."""
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
        yield flags, code, data[start:stop], data[i:stop]
        i = stop


class _Walk:
    """One pass over an attribute block: the attributes found so far and what went wrong."""

    __slots__ = (
        "aggregator",
        "as4_aggregator",
        "as4_path",
        "as_path",
        "asn4",
        "atomic_aggregate",
        "communities",
        "errors",
        "extended",
        "got_as_path",
        "has_nlri",
        "ibgp",
        "large",
        "local_pref",
        "med",
        "mp_reach",
        "mp_reach_raw",
        "mp_unreach",
        "mp_unreach_raw",
        "next_hop",
        "origin",
        "seen",
        "unknown",
        "withdraw",
    )

    def __init__(self, negotiated: Negotiated, has_nlri: bool) -> None:
        self.asn4 = negotiated.asn4
        self.ibgp = negotiated.ibgp
        self.has_nlri = has_nlri
        self.errors: list[str] = []
        self.withdraw = False
        self.seen: set[int] = set()
        self.origin: int | None = None
        self.as_path: AsPath = ()
        self.got_as_path = False
        self.next_hop: str | None = None
        self.med: int | None = None
        self.local_pref: int | None = None
        self.atomic_aggregate = False
        self.aggregator: tuple[int, str] | None = None
        self.communities: tuple[int, ...] = ()
        self.extended: tuple[bytes, ...] = ()
        self.large: tuple[tuple[int, int, int], ...] = ()
        self.unknown: list[tuple[int, int, bytes]] = []
        self.as4_path: AsPath | None = None
        self.as4_aggregator: tuple[int, str] | None = None
        self.mp_reach: bytes | None = None
        self.mp_unreach: bytes | None = None
        self.mp_reach_raw: bytes = b""
        self.mp_unreach_raw: bytes = b""

    def take(self, flags: int, code: int, value: bytes, raw: bytes) -> None:
        """One attribute: ``value`` is its content, ``raw`` the whole attribute (header included)."""
        if code in self.seen:
            if code in _MP:
                raise _malformed_list(f"{_name(code)} appears more than once")
            self.errors.append(f"{_name(code)}: duplicate, {_DISCARD}")
            return
        self.seen.add(code)
        rule = _RULES.get(code)
        if rule is None:
            self._unrecognized(flags, code, value, raw)
            return
        action = self._action(code, rule.action)
        if action is None:
            return
        try:
            if flags & _OPTIONAL_TRANSITIVE != rule.flags:
                raise _Malformed(f"flags 0x{flags:02x} conflict with the attribute type")
            rule.check(self, value)
        except _Malformed as problem:
            if action == _WITHDRAW:
                self.withdraw = True
            self.errors.append(f"{_name(code)}: {problem}, {action}")
            if code not in _MP:
                return
        if code == AttrType.MP_REACH:
            self.mp_reach, self.mp_reach_raw = value, raw
        elif code == AttrType.MP_UNREACH:
            self.mp_unreach, self.mp_unreach_raw = value, raw

    def _unrecognized(self, flags: int, code: int, value: bytes, raw: bytes) -> None:
        """RFC 4271 s.5 / s.6.3: well-known is an error, optional transitive is passed on (Partial),
        optional non-transitive is quietly ignored."""
        if not flags & FLAG_OPTIONAL:
            raise BGPError(
                ErrorCode.UPDATE_MESSAGE,
                UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                raw,
                f"unrecognized well-known attribute {code}",
            )
        if flags & FLAG_TRANSITIVE:
            self.unknown.append((FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL, code, value))

    def _action(self, code: int, action: str) -> str | None:
        """The action for a malformed attribute of this type here; ``None``: dropped unread."""
        if code == AttrType.LOCAL_PREF and not self.ibgp:
            self.errors.append(f"LOCAL_PREF from an external peer: {_DISCARD}")
            return None
        if code in _AS4 and self.asn4:
            self.errors.append(f"{_name(code)} from a 4-octet AS peer: {_DISCARD}")
            return None
        if code == AttrType.NEXT_HOP and not self.has_nlri:
            return _DISCARD  # without IPv4 NLRI, NEXT_HOP is ignored (RFC 4760 s.3)
        return action

    def check_mandatory(self) -> None:
        """Routes need ORIGIN and AS_PATH, and NEXT_HOP for IPv4 NLRI (RFC 7606 s.3 d)."""
        if not (self.has_nlri or self.mp_reach is not None):
            return
        seen = self.seen
        missing = [
            name
            for name, code in (("ORIGIN", AttrType.ORIGIN), ("AS_PATH", AttrType.AS_PATH))
            if code not in seen
        ]
        if self.has_nlri and AttrType.NEXT_HOP not in seen:
            missing.append("NEXT_HOP")
        if missing:
            self.withdraw = True
            self.errors.append(f"missing well-known attribute(s) {', '.join(missing)}: {_WITHDRAW}")

    def merge_as4(self) -> None:
        """A 2-octet speaker's AS4_PATH / AS4_AGGREGATOR into AS_PATH / AGGREGATOR (RFC 6793 s.4.2.3)."""
        if self.asn4 or (self.as4_path is None and self.as4_aggregator is None):
            return
        aggregator = self.aggregator
        if aggregator is not None and aggregator[0] != AS_TRANS:
            self.errors.append("AGGREGATOR from a 2-octet AS speaker: AS4_PATH and AS4_AGGREGATOR ignored")
            return
        if aggregator is not None and self.as4_aggregator is not None:
            self.aggregator = self.as4_aggregator
        if self.as4_path is not None and self.got_as_path:
            merged = merge_as4_path(self.as_path, self.as4_path)
            if merged is None:
                self.errors.append("AS4_PATH longer than AS_PATH: AS4_PATH ignored")
            else:
                self.as_path = merged

    def result(self) -> DecodedAttributes:
        attributes = None
        if self.seen - {AttrType.MP_REACH, AttrType.MP_UNREACH}:
            attributes = PathAttributes(
                self.origin,
                self.as_path,
                self.next_hop,
                self.med,
                self.local_pref,
                self.atomic_aggregate,
                self.aggregator,
                self.communities,
                self.extended,
                self.large,
                tuple(self.unknown),
            )
        return DecodedAttributes(
            attributes,
            self.mp_reach,
            self.mp_unreach,
            self.mp_reach_raw,
            self.mp_unreach_raw,
            self.withdraw,
            tuple(self.errors),
        )


# ---- one checker per attribute type (RFC 7606 s.7): parse the value into the walk or raise ----


def _check_origin(walk: _Walk, value: bytes) -> None:
    if len(value) != 1:
        raise _Malformed(f"length {len(value)}, expected 1")
    if value[0] > Origin.INCOMPLETE:
        raise _Malformed(f"undefined value {value[0]}")
    walk.origin = value[0]


def _check_as_path(walk: _Walk, value: bytes) -> None:
    walk.as_path = _as_path(value, 4 if walk.asn4 else 2)
    walk.got_as_path = True


def _check_next_hop(walk: _Walk, value: bytes) -> None:
    walk.next_hop = _next_hop(value)


def _check_med(walk: _Walk, value: bytes) -> None:
    walk.med = _u32(value)


def _check_local_pref(walk: _Walk, value: bytes) -> None:
    walk.local_pref = _u32(value)


def _check_atomic_aggregate(walk: _Walk, value: bytes) -> None:
    if len(value):
        raise _Malformed(f"length {len(value)}, expected 0")
    walk.atomic_aggregate = True


def _check_aggregator(walk: _Walk, value: bytes) -> None:
    walk.aggregator = _aggregator(value, 4 if walk.asn4 else 2)


def _check_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    _check_multiple(length, 4)
    walk.communities = struct.unpack(f">{length >> 2}I", value)


def _check_extended_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    _check_multiple(length, 8)
    walk.extended = tuple(value[j : j + 8] for j in range(0, length, 8))


def _check_large_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    _check_multiple(length, 12)
    words = struct.unpack(f">{length >> 2}I", value)
    walk.large = tuple(zip(words[::3], words[1::3], words[2::3], strict=True))


def _check_as4_path(walk: _Walk, value: bytes) -> None:
    walk.as4_path = _as4_path(value, walk.errors)


def _check_as4_aggregator(walk: _Walk, value: bytes) -> None:
    walk.as4_aggregator = _aggregator(value, 4)


def _check_mp(walk: _Walk, value: bytes) -> None:
    """MP_REACH_NLRI / MP_UNREACH_NLRI: only the flags are checked here; :mod:`update` parses them."""


class _Rule(NamedTuple):
    """How one known attribute type is checked, and what RFC 7606 s.7 does when it is malformed."""

    flags: int
    """The Optional/Transitive bits it must carry."""
    action: str
    """``_WITHDRAW`` or ``_DISCARD``."""
    check: Callable[[_Walk, bytes], None]


_RULES: Final[dict[int, _Rule]] = {
    AttrType.ORIGIN: _Rule(_WELL_KNOWN, _WITHDRAW, _check_origin),
    AttrType.AS_PATH: _Rule(_WELL_KNOWN, _WITHDRAW, _check_as_path),
    AttrType.NEXT_HOP: _Rule(_WELL_KNOWN, _WITHDRAW, _check_next_hop),
    AttrType.MED: _Rule(FLAG_OPTIONAL, _WITHDRAW, _check_med),
    AttrType.LOCAL_PREF: _Rule(_WELL_KNOWN, _WITHDRAW, _check_local_pref),
    AttrType.ATOMIC_AGGREGATE: _Rule(_WELL_KNOWN, _DISCARD, _check_atomic_aggregate),
    AttrType.AGGREGATOR: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _check_aggregator),
    AttrType.COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _check_communities),
    AttrType.MP_REACH: _Rule(FLAG_OPTIONAL, _WITHDRAW, _check_mp),
    AttrType.MP_UNREACH: _Rule(FLAG_OPTIONAL, _WITHDRAW, _check_mp),
    AttrType.EXTENDED_COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _check_extended_communities),
    AttrType.AS4_PATH: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _check_as4_path),
    AttrType.AS4_AGGREGATOR: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _check_as4_aggregator),
    AttrType.LARGE_COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _check_large_communities),
}


# ---- value parsers shared by the checkers ----


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
        if not SegmentType.AS_SET <= kind <= SegmentType.AS_CONFED_SET:
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
