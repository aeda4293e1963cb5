"""Path attribute values: the parsers :mod:`attrdecode` runs on each attribute, and what they reject.

Each parser takes an attribute's value octets and returns what it means (an AS path as segments, a
next hop as text, an AGGREGATOR as ``(asn, address)``), or raises :class:`Malformed`. A ``Malformed``
says why in words, which counter of ``drg sessions`` the rejected routes go to (``reason``), and
the UPDATE Message Error subcode a NOTIFICATION would carry if the error had to end the session
(RFC 7606 s.5.2). Syntax comes from RFC 4271 s.4.3 and RFC 7606 s.7; semantics that RFC 7606 lets a
receiver treat as malformed come from RFC 7607 (AS 0), RFC 9774 (AS_SET and AS_CONFED_SET are
deprecated: treat-as-withdraw), RFC 5065 (no confederation segments from outside the confederation)
and RFC 4271 s.6.3 (a NEXT_HOP must be a unicast host address: not 0.0.0.0, not multicast, not
class E or the limited broadcast). ``merge_as4_path`` is RFC 6793 s.4.2.3.
"""

from __future__ import annotations

import struct
from typing import Final

from controlplane.bgp.attributes import AsPath, as_path_length
from controlplane.bgp.constants import SegmentType, UpdateSubcode

__all__ = [
    "Malformed",
    "aggregator",
    "as4_path",
    "as_path",
    "check_multiple",
    "check_path_semantics",
    "ipv4_text",
    "merge_as4_path",
    "next_hop",
    "u32",
]

CONFED: Final = (SegmentType.AS_CONFED_SEQUENCE, SegmentType.AS_CONFED_SET)
_SETS: Final = (SegmentType.AS_SET, SegmentType.AS_CONFED_SET)


class Malformed(Exception):
    """An attribute value that fails its check.

    ``reason``: the counter key of the routes withdrawn for it (``malformed``, ``asZero``, ``asSet``,
    ``confedSegment``, ``nextHop``). ``subcode``: the UPDATE Message Error subcode, 0 for the
    attribute type's own. ``withdraw``: treat-as-withdraw even where the attribute's rule would only
    discard it (an AS_SET in AS4_PATH, RFC 9774)."""

    def __init__(self, text: str, reason: str = "malformed", subcode: int = 0, withdraw: bool = False) -> None:
        super().__init__(text)
        self.reason = reason
        self.subcode = subcode
        self.withdraw = withdraw


def _length(value: bytes, expected: int) -> None:
    if len(value) != expected:
        raise Malformed(f"length {len(value)}, expected {expected}", subcode=UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)


def u32(value: bytes) -> int:
    _length(value, 4)
    return int.from_bytes(value, "big")


def check_multiple(length: int, unit: int) -> None:
    if length == 0 or length % unit:
        raise Malformed(f"length {length} is not a non-zero multiple of {unit}",
                        subcode=UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)


def ipv4_text(value: bytes) -> str:
    return f"{value[0]}.{value[1]}.{value[2]}.{value[3]}"


def next_hop(value: bytes) -> str:
    """A NEXT_HOP value: 4 octets holding a unicast host address (RFC 4271 s.6.3, s.5.1.3)."""
    _length(value, 4)
    first = value[0]
    if value == b"\x00\x00\x00\x00" or first >= 224:  # 0.0.0.0, multicast, class E, 255.255.255.255
        kind = "0.0.0.0" if not first else "multicast" if first < 240 else "class E / broadcast"
        raise Malformed(f"{ipv4_text(value)} ({kind}) is not a unicast host address", "nextHop",
                        UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE)
    return ipv4_text(value)


def aggregator(value: bytes, width: int) -> tuple[int, str]:
    """AGGREGATOR (``width`` 2 or 4) or AS4_AGGREGATOR (4); AS 0 is malformed (RFC 7607)."""
    _length(value, width + 4)
    asn = int.from_bytes(value[:width], "big")
    if asn == 0:
        raise Malformed("AS 0 (RFC 7607)", "asZero")
    return asn, ipv4_text(value[width:])


def as_path(value: bytes, width: int) -> AsPath:
    """Segments of an AS_PATH or AS4_PATH; malformed per RFC 7606 s.7.2."""
    segments: list[tuple[int, tuple[int, ...]]] = []
    end = len(value)
    i = 0
    kind_format = "H" if width == 2 else "I"
    while i < end:
        if end - i < 2:
            raise Malformed("a single octet left after the last segment")
        kind = value[i]
        count = value[i + 1]
        if not SegmentType.AS_SET <= kind <= SegmentType.AS_CONFED_SET:
            raise Malformed(f"unknown segment type {kind}")
        if count == 0:
            raise Malformed("segment of length zero")
        stop = i + 2 + count * width
        if stop > end:
            raise Malformed(f"segment of {count} AS numbers overruns the attribute")
        segments.append((kind, struct.unpack_from(f">{count}{kind_format}", value, i + 2)))
        i = stop
    return tuple(segments)


def check_path_semantics(path: AsPath, external: bool, name: str = "AS_PATH") -> None:
    """What a well-formed path may still not hold: confederation segments from an external peer
    (RFC 5065 s.5 with RFC 7606 s.7.2), AS_SET / AS_CONFED_SET (RFC 9774), AS 0 (RFC 7607)."""
    subcode = UpdateSubcode.MALFORMED_AS_PATH
    for kind, asns in path:
        if external and kind in CONFED:
            raise Malformed("confederation segment from an external peer (RFC 5065)", "confedSegment", subcode)
        if kind in _SETS:
            raise Malformed(f"{SegmentType(kind).name} (deprecated by RFC 9774)", "asSet", subcode, withdraw=True)
        if 0 in asns:
            raise Malformed(f"AS 0 in the {name} (RFC 7607)", "asZero", subcode)


def as4_path(value: bytes, errors: list[str]) -> AsPath:
    """AS4_PATH: empty is malformed (RFC 7606 s.4), AS_SET withdraws (RFC 9774), AS 0 is malformed
    (RFC 7607), and confederation segments are dropped (RFC 6793 s.6)."""
    if not value:
        raise Malformed("length 0", subcode=UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)
    path = as_path(value, 4)
    kept = tuple(segment for segment in path if segment[0] not in CONFED)
    if len(kept) != len(path):
        errors.append("AS4_PATH: confederation segments discarded (RFC 6793 s.6)")
    check_path_semantics(kept, False, "AS4_PATH")
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
        if kind in CONFED:
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
