"""Path attributes: the ``PathAttributes`` value object and its encoder (decoder: ``attrdecode``).

One UPDATE carries one set of attributes for all of its prefixes, so ``PathAttributes`` is a frozen,
hashable dataclass that every route of the UPDATE shares. It holds the attributes this emulator
interprets; MP_REACH_NLRI / MP_UNREACH_NLRI are not attributes of a route and live on the
``Update`` instead. Optional transitive attributes we do not know are kept in ``unknown`` (flags,
type, value) with the Partial bit set, and re-sent as such (RFC 4271 s.5).

AS numbers are always 4-octet values here. ``encode_attributes`` writes the attribute block for a
session: on a 2-octet session (RFC 6793 s.4.2.2) AS numbers above 65535 become AS_TRANS in AS_PATH
and AGGREGATOR, and the real values travel in AS4_PATH / AS4_AGGREGATOR; on an eBGP session
LOCAL_PREF is left out (RFC 4271 s.5.1.5). Attributes are written in type-code order.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from controlplane.bgp.capabilities import Negotiated
from controlplane.bgp.constants import (
    AS_TRANS,
    FLAG_EXTENDED_LENGTH,
    FLAG_OPTIONAL,
    FLAG_PARTIAL,
    FLAG_TRANSITIVE,
    AttrType,
    Origin,
    SegmentType,
)

__all__ = [
    "AsPath",
    "PathAttributes",
    "as_path_length",
    "encode_as_path",
    "encode_attribute",
    "encode_attributes",
    "segments_from_flat",
]

AsPath = tuple[tuple[int, tuple[int, ...]], ...]
"""Segments ``(segment type, AS numbers)``; types are :class:`SegmentType` values (1..4)."""

_WELL_KNOWN = FLAG_TRANSITIVE
_OPTIONAL_TRANSITIVE = FLAG_OPTIONAL | FLAG_TRANSITIVE
_UNKNOWN_FLAGS = FLAG_OPTIONAL | FLAG_TRANSITIVE | FLAG_PARTIAL  # how unknown attributes are re-sent
_MAX_SEGMENT = 255
_SETS = (SegmentType.AS_SET, SegmentType.AS_CONFED_SET)
_CONFED = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """The path attributes of a route, as the codec decodes and encodes them.

    ``as_path`` ``()`` is an empty AS_PATH (what iBGP originates). ``aggregator`` is
    ``(asn, "a.b.c.d")``; ``communities`` are 32-bit values (``asn << 16 | value``);
    ``extended_communities`` are 8-octet strings; ``large_communities`` are (global admin, data 1,
    data 2). ``unknown`` holds unrecognized optional transitive attributes as (flags, type, value).
    """

    origin: int | None = None
    as_path: AsPath = ()
    next_hop: str | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, str] | None = None
    communities: tuple[int, ...] = ()
    extended_communities: tuple[bytes, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    unknown: tuple[tuple[int, int, bytes], ...] = ()

    @classmethod
    def make(
        cls,
        *,
        origin: int | None = Origin.IGP,
        as_path: Iterable[int | Iterable[int]] = (),
        next_hop: str | None = None,
        med: int | None = None,
        local_pref: int | None = None,
        atomic_aggregate: bool = False,
        aggregator: tuple[int, str] | None = None,
        communities: Iterable[int | str | tuple[int, int]] = (),
        extended_communities: Iterable[bytes] = (),
        large_communities: Iterable[tuple[int, int, int] | str] = (),
        unknown: Iterable[tuple[int, int, bytes]] = (),
    ) -> PathAttributes:
        """Build from friendly values: ``as_path=[65001, 64512, [1, 2]]`` (ints form AS_SEQUENCEs,
        nested lists AS_SETs), communities as ``"65001:100"``, ``(65001, 100)`` or ints, large
        communities as ``"1:2:3"`` or tuples."""
        return cls(
            origin=None if origin is None else int(origin),
            as_path=segments_from_flat(as_path),
            next_hop=next_hop,
            med=med,
            local_pref=local_pref,
            atomic_aggregate=atomic_aggregate,
            aggregator=aggregator,
            communities=tuple(_community(value) for value in communities),
            extended_communities=tuple(bytes(value) for value in extended_communities),
            large_communities=tuple(_large_community(value) for value in large_communities),
            unknown=tuple((_UNKNOWN_FLAGS, code, bytes(value)) for _flags, code, value in unknown),
        )

    def as_path_length(self) -> int:
        """Path length for best-path selection (RFC 4271 s.9.1.2.2 a): each AS_SEQUENCE member
        counts 1, a whole AS_SET counts 1, confederation segments count 0 (RFC 5065 s.5.3)."""
        return as_path_length(self.as_path)

    def flat_as_path(self) -> list[int | list[int]]:
        """The path as a flat list with each AS_SET (or AS_CONFED_SET) as a nested list."""
        flat: list[int | list[int]] = []
        for kind, asns in self.as_path:
            if kind in _SETS:
                flat.append(list(asns))
            else:
                flat.extend(asns)
        return flat


def as_path_length(path: AsPath) -> int:
    length = 0
    for kind, asns in path:
        if kind == SegmentType.AS_SEQUENCE:
            length += len(asns)
        elif kind == SegmentType.AS_SET:
            length += 1
    return length


def segments_from_flat(flat: Iterable[int | Iterable[int]]) -> AsPath:
    """``[1, 2, [3, 4], 5]`` -> AS_SEQUENCE (1, 2), AS_SET (3, 4), AS_SEQUENCE (5,); runs longer
    than 255 AS numbers are split into several AS_SEQUENCE segments."""
    segments: list[tuple[int, tuple[int, ...]]] = []
    run: list[int] = []
    for item in flat:
        if isinstance(item, int):
            run.append(item)
            continue
        segments.extend(_sequence_segments(run))
        run = []
        members = tuple(item)
        if not 1 <= len(members) <= _MAX_SEGMENT:
            raise ValueError("an AS_SET holds 1 to 255 AS numbers")
        segments.append((SegmentType.AS_SET.value, members))
    segments.extend(_sequence_segments(run))
    return tuple(segments)


def _sequence_segments(run: list[int]) -> list[tuple[int, tuple[int, ...]]]:
    return [
        (SegmentType.AS_SEQUENCE.value, tuple(run[i : i + _MAX_SEGMENT]))
        for i in range(0, len(run), _MAX_SEGMENT)
    ]


def _community(value: int | str | tuple[int, int]) -> int:
    if isinstance(value, int):
        high, low = value >> 16, value & 0xFFFF
    elif isinstance(value, str):
        left, _, right = value.partition(":")
        high, low = int(left), int(right)
    else:
        high, low = value
    if not (0 <= high <= 0xFFFF and 0 <= low <= 0xFFFF):
        raise ValueError(f"community {value!r} out of range")
    return high << 16 | low


def _large_community(value: tuple[int, int, int] | str) -> tuple[int, int, int]:
    parts = tuple(int(part) for part in value.split(":")) if isinstance(value, str) else tuple(value)
    if len(parts) != 3 or not all(0 <= part <= 0xFFFFFFFF for part in parts):
        raise ValueError(f"large community {value!r} must be three 32-bit numbers")
    return parts[0], parts[1], parts[2]


def encode_attribute(flags: int, code: int, value: bytes) -> bytes:
    """One attribute TLV; the Extended Length bit is set exactly when the value needs it."""
    size = len(value)
    if size > 255:
        return struct.pack(">BBH", flags | FLAG_EXTENDED_LENGTH, code, size) + value
    return struct.pack(">BBB", flags & ~FLAG_EXTENDED_LENGTH, code, size) + value


def encode_as_path(path: AsPath, asn4: bool) -> bytes:
    """AS_PATH value in 4-octet (``asn4``) or 2-octet form (AS numbers above 65535 become
    AS_TRANS). AS_SEQUENCEs longer than 255 are split; longer AS_SETs are an error."""
    parts: list[bytes] = []
    for kind, asns in path:
        if len(asns) > _MAX_SEGMENT and kind in _SETS:
            raise ValueError("an AS_SET holds at most 255 AS numbers")
        for start in range(0, len(asns), _MAX_SEGMENT):
            chunk = asns[start : start + _MAX_SEGMENT]
            if asn4:
                parts.append(struct.pack(f">BB{len(chunk)}I", kind, len(chunk), *chunk))
            else:
                mapped = [asn if asn <= 0xFFFF else AS_TRANS for asn in chunk]
                parts.append(struct.pack(f">BB{len(chunk)}H", kind, len(chunk), *mapped))
    return b"".join(parts)


def _ipv4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def encode_attributes(attrs: PathAttributes, negotiated: Negotiated) -> bytes:
    """The path attribute block for ``attrs`` on a session (MP_REACH/MP_UNREACH not included).

    AS_PATH is always written (empty when ``as_path`` is ``()``); other attributes only when set.
    """
    asn4 = negotiated.asn4
    out: list[tuple[int, bytes]] = []

    def add(flags: int, code: int, value: bytes) -> None:
        out.append((code, encode_attribute(flags, code, value)))

    if attrs.origin is not None:
        add(_WELL_KNOWN, AttrType.ORIGIN, bytes([attrs.origin]))
    add(_WELL_KNOWN, AttrType.AS_PATH, encode_as_path(attrs.as_path, asn4))
    if attrs.next_hop is not None:
        add(_WELL_KNOWN, AttrType.NEXT_HOP, _ipv4(attrs.next_hop))
    if attrs.med is not None:
        add(FLAG_OPTIONAL, AttrType.MED, struct.pack(">I", attrs.med))
    if attrs.local_pref is not None and negotiated.ibgp:
        add(_WELL_KNOWN, AttrType.LOCAL_PREF, struct.pack(">I", attrs.local_pref))
    if attrs.atomic_aggregate:
        add(_WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, b"")
    as4_aggregator = b""
    if attrs.aggregator is not None:
        asn, address = attrs.aggregator
        if asn4:
            add(_OPTIONAL_TRANSITIVE, AttrType.AGGREGATOR, struct.pack(">I", asn) + _ipv4(address))
        else:
            mapped = asn if asn <= 0xFFFF else AS_TRANS
            add(_OPTIONAL_TRANSITIVE, AttrType.AGGREGATOR, struct.pack(">H", mapped) + _ipv4(address))
            if asn > 0xFFFF:
                as4_aggregator = struct.pack(">I", asn) + _ipv4(address)
    if attrs.communities:
        value = struct.pack(f">{len(attrs.communities)}I", *attrs.communities)
        add(_OPTIONAL_TRANSITIVE, AttrType.COMMUNITIES, value)
    if attrs.extended_communities:
        if any(len(community) != 8 for community in attrs.extended_communities):
            raise ValueError("extended communities are 8 octets each")
        add(_OPTIONAL_TRANSITIVE, AttrType.EXTENDED_COMMUNITIES, b"".join(attrs.extended_communities))
    if not asn4:
        as4_path = _as4_path(attrs.as_path)
        if as4_path is not None:
            add(_OPTIONAL_TRANSITIVE, AttrType.AS4_PATH, as4_path)
        if as4_aggregator:
            add(_OPTIONAL_TRANSITIVE, AttrType.AS4_AGGREGATOR, as4_aggregator)
    if attrs.large_communities:
        value = b"".join(struct.pack(">III", *community) for community in attrs.large_communities)
        add(_OPTIONAL_TRANSITIVE, AttrType.LARGE_COMMUNITIES, value)
    if attrs.unknown:
        for _flags, code, value in attrs.unknown:
            add(_UNKNOWN_FLAGS, code, value)
        out.sort(key=lambda item: item[0])
    return b"".join(encoded for _, encoded in out)


def _as4_path(path: AsPath) -> bytes | None:
    """AS4_PATH for a 2-octet session: the whole path minus confederation segments (RFC 6793
    s.4.2.2), or ``None`` when every AS number fits in 2 octets."""
    if all(asn <= 0xFFFF for _, asns in path for asn in asns):
        return None
    return encode_as_path(tuple(segment for segment in path if segment[0] not in _CONFED), True)
