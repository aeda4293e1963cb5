"""What a console filter keeps, as ranges of prefix keys: the rules of a page are found by bisection.

A route table's destinations are sorted prefix keys (``prefix.py``: ``address << 8 | length``, so by
address, then length), and every filter of the console's route pages (``pages.py``) keeps the
destinations of a few key ranges, in key order - :func:`segments` gives them, IPv4 before IPv6:

* empty: every destination (one range per family);
* an address or CIDR (``10.1.0.0/16``, ``10.1.2.3``; :func:`wanted_block`): the destinations inside
  the block or covering it, same family. Those inside, and those covering it from the block's own
  address (``10.1.0.0/15``), are the keys whose address lies in the block: one range; the others that
  cover it (``10.0.0.0/8``) are at most one key per shorter length (``covering_keys``), before it;
* any other text: the destinations whose text starts with it (``10.1.`` while typing). An IPv4
  destination's text is its four decimal octets, so a partial text fixes the whole octets typed and
  the values whose decimal text starts with the partial one (``1``: 1, 10-19, 100-199): a range per
  run of values. A text with ``/`` names one address (its canonical text) and the lengths whose text
  starts with what follows. An IPv6 text without ``/`` cannot be cut into ranges (the ``::`` of a run
  of zero groups moves with the rest of the address), so its segment is the range of the groups typed
  before the first ``::`` or partial group, marked with the text: ``pages.py`` checks each of its
  destinations' text.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from controlplane.prefix import ADDRESS_BITS, AFI_IPV4, AFI_IPV6, make_key

Net = tuple[int, int, int]  # (IP version, first address as int, prefix length)
_IPV4_TEXT = frozenset("0123456789./")
_IPV6_TEXT = frozenset("0123456789abcdef:./")


@dataclass(frozen=True)
class Segment:
    """The destinations of family index ``fam`` (0 IPv4, 1 IPv6) with keys ``lo`` to ``hi`` (inclusive);
    with ``starts``, only those of them whose text starts with it."""

    fam: int
    lo: int
    hi: int
    starts: str | None = None


def wanted_block(text: str) -> Net | None:
    """The block a filter names, when it is a whole address or CIDR; None for a partial prefix."""
    text = text.strip()
    if "/" not in text and text.count(".") != 3 and ":" not in text:
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), net.prefixlen


def segments(text: str) -> list[Segment]:
    """The key ranges a filter keeps, in dump order (see the module docstring)."""
    text = text.strip()
    if not text:
        return [_addresses(fam, 0, (1 << ADDRESS_BITS[fam + 1]) - 1) for fam in (0, 1)]
    block = wanted_block(text)
    if block is not None:
        return _block(*block)
    return [*_text(AFI_IPV4, text), *_text(AFI_IPV6, text)]


def runs(values: Iterable[int]) -> Iterator[tuple[int, int]]:
    """The runs of consecutive integers in ascending ``values``, as (first, last)."""
    run: list[int] = []
    for value in values:
        if run and value == run[1] + 1:
            run[1] = value
            continue
        if run:
            yield run[0], run[1]
        run = [value, value]
    if run:
        yield run[0], run[1]


def _addresses(fam: int, first: int, last: int, starts: str | None = None) -> Segment:
    """The destinations whose address is from ``first`` to ``last``, of any length."""
    return Segment(fam, first << 8, last << 8 | 0xFF, starts)


def _block(version: int, address: int, length: int) -> list[Segment]:
    """The keys that cover the block from shorter lengths and other addresses, then those in it."""
    afi = AFI_IPV4 if version == 4 else AFI_IPV6
    fam, host = afi - 1, ADDRESS_BITS[afi] - length
    covering = [Segment(fam, key, key) for key in (make_key(afi, address, n) for n in range(length))
                if key >> 8 != address]  # ascending
    return [*covering, _addresses(fam, address, address | ((1 << host) - 1))]


def _text(afi: int, text: str) -> list[Segment]:
    """The segments of one family for a text prefix (not a whole address or CIDR)."""
    if not set(text) <= (_IPV4_TEXT if afi == AFI_IPV4 else _IPV6_TEXT):
        return []
    address, slash, length = text.partition("/")
    if slash:
        return _lengths(afi, address, length)
    if afi == AFI_IPV4:
        return _octets(text)
    if "." in text and ":" not in text.partition(".")[0]:  # an IPv6 text has a ":" before any "."
        return []
    return _groups(text)


def _lengths(afi: int, address: str, length: str) -> list[Segment]:
    """``address/`` and a partial length: the address's keys with the lengths whose text starts so."""
    try:
        value = ipaddress.ip_address(address)
    except ValueError:
        return []
    if value.version != (4 if afi == AFI_IPV4 else 6) or str(value) != address:  # a destination's text
        return []
    key, fam = int(value) << 8, afi - 1
    wanted = (n for n in range(ADDRESS_BITS[afi] + 1) if str(n).startswith(length))
    return [Segment(fam, key | first, key | last) for first, last in runs(wanted)]


def _octets(text: str) -> list[Segment]:
    """A partial IPv4 address: whole octets, then the start of one; a range per run of its values."""
    *whole, part = text.split(".")
    if len(whole) > 3 or not all(o.isdigit() and str(int(o)) == o and int(o) < 256 for o in whole):
        return []
    base = 0
    for octet in whole:
        base = base << 8 | int(octet)
    shift = 8 * (3 - len(whole))  # the bits after the partial octet
    values = (v for v in range(256) if str(v).startswith(part))
    return [_addresses(0, (base << 8 | first) << shift, (base << 8 | last) << shift | ((1 << shift) - 1))
            for first, last in runs(values)]


def _groups(text: str) -> list[Segment]:
    """A partial IPv6 address: the range of the whole groups typed before any ``::``, to be checked."""
    groups = count = 0
    for part in text.split(":")[:-1]:  # the last part may be partial
        if not part:  # "::": a run of zero groups, placed by the rest of the address
            break
        if "." in part or len(part) > 4 or count == 8:
            return []
        groups, count = groups << 16 | int(part, 16), count + 1
    host = 128 - 16 * count
    return [_addresses(1, groups << host, groups << host | ((1 << host) - 1), text)]
