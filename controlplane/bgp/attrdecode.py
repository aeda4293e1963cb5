"""Path attribute decoding with the error handling of RFC 7606 (and RFC 6793 for AS4_*).

``decode_attributes`` walks the attribute block once, keeping what it finds in a :class:`_Walk`.
Every known attribute type has a :class:`_Rule` in ``_RULES``: the Optional/Transitive flags it must
carry, the action RFC 7606 s.7 gives it when malformed, the UPDATE error subcode it stands for, and a
small checker that parses its value (the parsers are in :mod:`attrvalues`). A problem is handled per
attribute with that action, and the walk goes on:

* treat-as-withdraw (ORIGIN, AS_PATH, NEXT_HOP, MED, iBGP LOCAL_PREF, COMMUNITIES, iBGP ORIGINATOR_ID
  and CLUSTER_LIST, EXTENDED_COMMUNITIES, LARGE_COMMUNITIES, MP_REACH/MP_UNREACH flags; missing
  mandatory attributes; an AS_PATH with AS 0 (RFC 7607), an AS_SET or AS_CONFED_SET (RFC 9774) or,
  from an external peer, confederation segments (RFC 5065); a NEXT_HOP that is not a unicast host
  address): the result says so, with the ``reason`` counter key of the first such error, and the
  caller withdraws every prefix of the UPDATE;
* attribute discard (ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR, eBGP LOCAL_PREF, eBGP
  ORIGINATOR_ID and CLUSTER_LIST, duplicates): the attribute is dropped and named in ``discarded``.

Wrong Optional/Transitive flags on a known attribute count as that attribute being malformed
(RFC 7606 s.3 c). Framing (RFC 7606 s.4): when an attribute runs past the block, or fewer octets than
an attribute header are left, the walk stops there and the UPDATE is treat-as-withdraw, since the
NLRI field is found from the Total Path Attribute Length and does not depend on the attributes.
Two cases stay a session reset (3/1 Malformed Attribute List, RFC 7606 s.3 j): the broken attribute
is MP_REACH_NLRI / MP_UNREACH_NLRI itself, or one of them came before the break (the break may be
that attribute's own length being wrong, so its prefixes cannot be trusted). A duplicate
MP_REACH_NLRI / MP_UNREACH_NLRI and an unrecognized well-known attribute also reset the session.

After the walk come the checks on the whole block: mandatory attributes present when there are
routes (RFC 7606 s.3 d), the AS4_PATH / AS4_AGGREGATOR merge for a 2-octet speaker (RFC 6793
s.4.2.3), and RFC 7606 s.5.2: an UPDATE with attributes other than MP_UNREACH_NLRI but no reachable
NLRI cannot be treated as withdraw, so any error stronger than a discard resets the session, with
the subcode and attribute of the first one. Each action leaves a sentence in ``errors`` for the
logs. MP_REACH_NLRI and MP_UNREACH_NLRI are returned raw: :mod:`update` parses them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

from controlplane.bgp.attributes import AsPath, PathAttributes
from controlplane.bgp.attrvalues import (
    Malformed,
    aggregator,
    as4_path,
    as_path,
    check_multiple,
    check_path_semantics,
    merge_as4_path,
    next_hop,
    u32,
)
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
    reason: str
    """Counter key of the first treat-as-withdraw error ("" when none)."""
    discarded: tuple[str, ...]
    """Names of the attributes discarded (RFC 7606 attribute discard), in order."""


class _Broken(Exception):
    """The attribute block cannot be framed from here on (RFC 7606 s.4); ``code`` is the type code
    of the attribute that breaks it, when one could be read."""

    def __init__(self, text: str, code: int | None) -> None:
        super().__init__(text)
        self.code = code


_WITHDRAW: Final = "treat-as-withdraw"
_DISCARD: Final = "attribute discarded"

_WELL_KNOWN = FLAG_TRANSITIVE
_OPTIONAL_TRANSITIVE = FLAG_OPTIONAL | FLAG_TRANSITIVE

_NAMES: Final = {int(code): code.name for code in AttrType}
_MP: Final = (AttrType.MP_REACH, AttrType.MP_UNREACH)
_AS4: Final = (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR)
_REFLECTION: Final = (AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST)


def _name(code: int) -> str:
    return _NAMES.get(code, f"attribute {code}")


def _malformed_list(reason: str, data: bytes = b"") -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, data, reason)


def decode_attributes(data: bytes, negotiated: Negotiated, has_nlri: bool) -> DecodedAttributes:
    """Decode a path attribute block. ``has_nlri``: the UPDATE's (IPv4) NLRI field is not empty."""
    walk = _Walk(negotiated, has_nlri)
    try:
        for flags, code, value, raw in _split(data):
            walk.take(flags, code, value, raw)
    except _Broken as broken:
        walk.broken(broken)
    walk.check_mandatory()
    walk.merge_as4()
    walk.check_reachable()
    return walk.result()


def _split(data: bytes) -> Iterator[tuple[int, int, bytes, bytes]]:
    """Frame the block: (flags, type code, value, whole attribute) for each attribute in order."""
    end = len(data)
    i = 0
    while i < end:
        if end - i < 3:
            code = data[i + 1] if end - i == 2 else None
            raise _Broken(f"{end - i} octet(s) left at offset {i}: too short for an attribute", code)
        flags = data[i]
        code = data[i + 1]
        if flags & FLAG_EXTENDED_LENGTH:
            if end - i < 4:
                raise _Broken(f"{_name(code)} header truncated at offset {i}", code)
            length = data[i + 2] << 8 | data[i + 3]
            start = i + 4
        else:
            length = data[i + 2]
            start = i + 3
        stop = start + length
        if stop > end:
            raise _Broken(f"{_name(code)} at offset {i} has length {length}, running past the attribute block",
                          code)
        yield flags, code, data[start:stop], data[i:stop]
        i = stop


class _Walk:
    """One pass over an attribute block: the attributes found so far and what went wrong."""

    __slots__ = (
        "aggregator", "as4_aggregator", "as4_path", "as_path", "asn4", "atomic_aggregate", "communities",
        "discarded", "errors", "extended", "framing", "got_as_path", "has_nlri", "ibgp", "large",
        "local_pref", "med", "mp_reach", "mp_reach_raw", "mp_unreach", "mp_unreach_raw", "next_hop",
        "notify", "origin", "reason", "seen", "unknown", "withdraw",
    )

    def __init__(self, negotiated: Negotiated, has_nlri: bool) -> None:
        self.asn4 = negotiated.asn4
        self.ibgp = negotiated.ibgp
        self.has_nlri = has_nlri
        self.errors: list[str] = []
        self.withdraw = False
        self.reason = ""
        self.notify: tuple[int, bytes, str] | None = None  # first withdraw: subcode, attribute, why
        self.discarded: list[str] = []
        self.framing = False
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
            self._discard(code, f"{_name(code)}: duplicate, {_DISCARD}")
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
                raise Malformed(f"flags 0x{flags:02x} conflict with the attribute type",
                                subcode=UpdateSubcode.ATTRIBUTE_FLAGS_ERROR)
            rule.check(self, value)
        except Malformed as problem:
            self._malformed(code, raw, problem, _WITHDRAW if problem.withdraw else action, rule.subcode)
            if code not in _MP:
                return
        if code == AttrType.MP_REACH:
            self.mp_reach, self.mp_reach_raw = value, raw
        elif code == AttrType.MP_UNREACH:
            self.mp_unreach, self.mp_unreach_raw = value, raw

    def _malformed(self, code: int, raw: bytes, problem: Malformed, action: str, subcode: int) -> None:
        text = f"{_name(code)}: {problem}, {action}"
        if action == _DISCARD:
            self._discard(code, text)
            return
        self._withdraw(problem.reason, text, problem.subcode or subcode, raw)

    def _withdraw(self, reason: str, text: str, subcode: int, raw: bytes) -> None:
        if not self.withdraw:
            self.withdraw = True
            self.reason = reason
            self.notify = (subcode, raw, text)
        self.errors.append(text)

    def _discard(self, code: int, text: str) -> None:
        self.discarded.append(_name(code))
        self.errors.append(text)

    def broken(self, broken: _Broken) -> None:
        """RFC 7606 s.4: the rest of the block cannot be framed; the NLRI field still can."""
        met = [code for code in _MP if code in self.seen]
        if broken.code in _MP or met:
            which = _name(broken.code if broken.code in _MP else met[0])
            raise _malformed_list(f"{broken} with {which} in the UPDATE: its prefixes cannot be trusted")
        self.framing = True
        self._withdraw("malformed", f"{broken}: {_WITHDRAW} (RFC 7606 s.4)",
                       UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"")

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
        if not self.ibgp and (code == AttrType.LOCAL_PREF or code in _REFLECTION):
            self._discard(code, f"{_name(code)} from an external peer: {_DISCARD}")  # RFC 7606 s.7.5, 7.9, 7.10
            return None
        if code in _AS4 and self.asn4:
            self._discard(code, f"{_name(code)} from a 4-octet AS peer: {_DISCARD}")
            return None
        if code == AttrType.NEXT_HOP and not self.has_nlri:
            return _DISCARD  # without IPv4 NLRI, NEXT_HOP is ignored (RFC 4760 s.3)
        return action

    def check_mandatory(self) -> None:
        """Routes need ORIGIN and AS_PATH, and NEXT_HOP for IPv4 NLRI (RFC 7606 s.3 d). Not asked of a
        block whose framing broke: the missing ones may be behind the break."""
        if self.framing or not (self.has_nlri or self.mp_reach is not None):
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
            self._withdraw("missingAttribute", f"missing well-known attribute(s) {', '.join(missing)}: {_WITHDRAW}",
                           UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE, b"")

    def check_reachable(self) -> None:
        """RFC 7606 s.5.2: with attributes other than MP_UNREACH_NLRI but no reachable NLRI, an error
        stronger than a discard cannot be treated as withdraw: the session is reset."""
        if not self.withdraw or self.has_nlri or AttrType.MP_REACH in self.seen:
            return
        if not self.seen - {AttrType.MP_UNREACH} and not self.framing:
            return
        assert self.notify is not None
        subcode, data, text = self.notify
        raise BGPError(ErrorCode.UPDATE_MESSAGE, subcode, data,
                       f"{text}, in an UPDATE without reachable NLRI: session reset (RFC 7606 s.5.2)")

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
            self.reason,
            tuple(self.discarded),
        )


# ---- one checker per attribute type (RFC 7606 s.7): parse the value into the walk or raise ----


def _check_origin(walk: _Walk, value: bytes) -> None:
    if len(value) != 1:
        raise Malformed(f"length {len(value)}, expected 1", subcode=UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)
    if value[0] > Origin.INCOMPLETE:
        raise Malformed(f"undefined value {value[0]}")
    walk.origin = value[0]


def _check_as_path(walk: _Walk, value: bytes) -> None:
    path = as_path(value, 4 if walk.asn4 else 2)
    walk.as_path = path
    walk.got_as_path = True
    check_path_semantics(path, not walk.ibgp)


def _check_next_hop(walk: _Walk, value: bytes) -> None:
    walk.next_hop = next_hop(value)


def _check_med(walk: _Walk, value: bytes) -> None:
    walk.med = u32(value)


def _check_local_pref(walk: _Walk, value: bytes) -> None:
    walk.local_pref = u32(value)


def _check_atomic_aggregate(walk: _Walk, value: bytes) -> None:
    if len(value):
        raise Malformed(f"length {len(value)}, expected 0")
    walk.atomic_aggregate = True


def _check_aggregator(walk: _Walk, value: bytes) -> None:
    walk.aggregator = aggregator(value, 4 if walk.asn4 else 2)


def _check_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    check_multiple(length, 4)
    walk.communities = struct.unpack(f">{length >> 2}I", value)


def _check_originator_id(walk: _Walk, value: bytes) -> None:
    """RFC 4456 via RFC 7606 s.7.9 (iBGP only; not kept: the DRG reflects no routes)."""
    u32(value)


def _check_cluster_list(walk: _Walk, value: bytes) -> None:
    """RFC 4456 via RFC 7606 s.7.10 (iBGP only; not kept)."""
    check_multiple(len(value), 4)


def _check_extended_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    check_multiple(length, 8)
    walk.extended = tuple(value[j : j + 8] for j in range(0, length, 8))


def _check_large_communities(walk: _Walk, value: bytes) -> None:
    length = len(value)
    check_multiple(length, 12)
    words = struct.unpack(f">{length >> 2}I", value)
    walk.large = tuple(zip(words[::3], words[1::3], words[2::3], strict=True))


def _check_as4_path(walk: _Walk, value: bytes) -> None:
    walk.as4_path = as4_path(value, walk.errors)


def _check_as4_aggregator(walk: _Walk, value: bytes) -> None:
    walk.as4_aggregator = aggregator(value, 4)


def _check_mp(walk: _Walk, value: bytes) -> None:
    """MP_REACH_NLRI / MP_UNREACH_NLRI: only the flags are checked here; :mod:`update` parses them."""


class _Rule(NamedTuple):
    """How one known attribute type is checked, and what RFC 7606 s.7 does when it is malformed."""

    flags: int
    """The Optional/Transitive bits it must carry."""
    action: str
    """``_WITHDRAW`` or ``_DISCARD``."""
    subcode: int
    """The UPDATE Message Error subcode of this attribute being malformed (RFC 4271 s.6.3)."""
    check: Callable[[_Walk, bytes], None]


_U = UpdateSubcode
_RULES: Final[dict[int, _Rule]] = {
    AttrType.ORIGIN: _Rule(_WELL_KNOWN, _WITHDRAW, _U.INVALID_ORIGIN_ATTRIBUTE, _check_origin),
    AttrType.AS_PATH: _Rule(_WELL_KNOWN, _WITHDRAW, _U.MALFORMED_AS_PATH, _check_as_path),
    AttrType.NEXT_HOP: _Rule(_WELL_KNOWN, _WITHDRAW, _U.INVALID_NEXT_HOP_ATTRIBUTE, _check_next_hop),
    AttrType.MED: _Rule(FLAG_OPTIONAL, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_med),
    AttrType.LOCAL_PREF: _Rule(_WELL_KNOWN, _WITHDRAW, _U.ATTRIBUTE_LENGTH_ERROR, _check_local_pref),
    AttrType.ATOMIC_AGGREGATE: _Rule(_WELL_KNOWN, _DISCARD, _U.ATTRIBUTE_LENGTH_ERROR, _check_atomic_aggregate),
    AttrType.AGGREGATOR: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_aggregator),
    AttrType.COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_communities),
    AttrType.ORIGINATOR_ID: _Rule(FLAG_OPTIONAL, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_originator_id),
    AttrType.CLUSTER_LIST: _Rule(FLAG_OPTIONAL, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_cluster_list),
    AttrType.MP_REACH: _Rule(FLAG_OPTIONAL, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_mp),
    AttrType.MP_UNREACH: _Rule(FLAG_OPTIONAL, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_mp),
    AttrType.EXTENDED_COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR,
                                         _check_extended_communities),
    AttrType.AS4_PATH: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _U.OPTIONAL_ATTRIBUTE_ERROR, _check_as4_path),
    AttrType.AS4_AGGREGATOR: _Rule(_OPTIONAL_TRANSITIVE, _DISCARD, _U.OPTIONAL_ATTRIBUTE_ERROR,
                                   _check_as4_aggregator),
    AttrType.LARGE_COMMUNITIES: _Rule(_OPTIONAL_TRANSITIVE, _WITHDRAW, _U.OPTIONAL_ATTRIBUTE_ERROR,
                                      _check_large_communities),
}
