"""Bulk NLRI coding: the (length, prefix) lists of RFC 4271 s.4.3 and RFC 4760, as prefix keys.

A record is one length octet followed by ``ceil(length / 8)`` address octets. Prefixes come back as
the int keys of :mod:`controlplane.prefix` (``address << 8 | length``, host bits cleared).

Decoding is the hot path (a full table is a million prefixes, about a thousand per UPDATE), so it
avoids a Python loop per prefix whenever it can:

* **Fast path**, when every record has the same length (what dense senders produce): the length
  octets are checked with one strided slice, ``data[::record_size]``. For IPv4 the address octets
  are then scattered, column by column with strided slice assignments, into a zeroed buffer of
  8-octet big-endian words laid out as ``000 A0 A1 A2 A3 L``; one ``struct.unpack`` turns that
  buffer into the keys themselves, with no per-prefix Python arithmetic. Host bits are cleared by
  ``bytes.translate`` on the last address column. IPv6 does the same with the address only and one
  shift per prefix.
* **Slow path** otherwise: a loop with per-length precomputed shifts and masks.

Malformed input (a length beyond the address size, or a record running past the end) raises
``BGPError`` 3/10 (Invalid Network Field); the caller decides if that ends the session.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from controlplane.bgp.constants import ErrorCode, UpdateSubcode
from controlplane.bgp.errors import BGPError
from controlplane.prefix import AFI_IPV4, AFI_IPV6

__all__ = ["decode_nlri", "encode_nlri", "encode_prefixes", "nlri_size"]


def _octets(length: int) -> int:
    return (length + 7) >> 3


class _Family:
    """Per-AFI tables indexed by prefix length, computed once at import."""

    __slots__ = ("bits", "key_masks", "octets", "shifts")

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.octets = [_octets(length) for length in range(bits + 1)]
        # key = (int(address octets) << shift) & key_mask | length
        self.shifts = [bits - 8 * _octets(length) + 8 for length in range(bits + 1)]
        self.key_masks = [(((1 << length) - 1) << (bits - length)) << 8 for length in range(bits + 1)]


_FAMILIES: Final = {AFI_IPV4: _Family(32), AFI_IPV6: _Family(128)}

# _LAST_OCTET_MASKS[r] clears the host bits of the last address octet of a prefix whose length
# is 8 * k + r (r = 1..7); r = 0 needs no masking.
_LAST_OCTET_MASKS: Final = [b""] + [
    bytes(value & (0xFF << (8 - r)) & 0xFF for value in range(256)) for r in range(1, 8)
]


def _family(afi: int) -> _Family:
    try:
        return _FAMILIES[afi]
    except KeyError:
        raise ValueError(f"unsupported AFI {afi}") from None


def _invalid(reason: str) -> BGPError:
    return BGPError(ErrorCode.UPDATE_MESSAGE, UpdateSubcode.INVALID_NETWORK_FIELD, b"", reason)


def nlri_size(key: int) -> int:
    """Encoded size of one prefix: the length octet plus ``ceil(length / 8)`` address octets."""
    return 1 + ((key & 0xFF) + 7 >> 3)


def decode_nlri(data: bytes | memoryview, afi: int) -> list[int]:
    """Every prefix of an NLRI (or Withdrawn Routes) field, as keys in wire order."""
    family = _family(afi)
    if not data:
        return []
    if isinstance(data, memoryview):
        data = data.tobytes()
    length = data[0]
    if length <= family.bits:
        record = 1 + family.octets[length]
        count, rest = divmod(len(data), record)
        if not rest:
            lengths = data[::record]
            if lengths.count(length) == count:
                if afi == AFI_IPV4:
                    return _same_length_ipv4(data, length, record, count, lengths)
                return _same_length_ipv6(data, length, record, count)
    return _decode_loop(data, family)


def _same_length_ipv4(data: bytes, length: int, record: int, count: int, lengths: bytes) -> list[int]:
    octets = record - 1
    if not octets:
        return [0] * count
    words = bytearray(8 * count)
    for column in range(octets):
        words[3 + column :: 8] = data[1 + column :: record]
    if length & 7:
        last = 2 + octets
        words[last::8] = words[last::8].translate(_LAST_OCTET_MASKS[length & 7])
    words[7::8] = lengths
    return list(struct.unpack(f">{count}Q", words))


def _same_length_ipv6(data: bytes, length: int, record: int, count: int) -> list[int]:
    octets = record - 1
    if not octets:
        return [0] * count
    width = 8 if octets <= 8 else 16
    words = bytearray(width * count)
    for column in range(octets):
        words[column::width] = data[1 + column :: record]
    if length & 7:
        last = octets - 1
        words[last::width] = words[last::width].translate(_LAST_OCTET_MASKS[length & 7])
    if width == 8:
        return [(high << 72) | length for high in struct.unpack(f">{count}Q", words)]
    halves = struct.unpack(f">{2 * count}Q", words)
    return [(high << 72) | (low << 8) | length for high, low in zip(halves[::2], halves[1::2], strict=True)]


def _decode_loop(data: bytes, family: _Family) -> list[int]:
    bits = family.bits
    octets = family.octets
    shifts = family.shifts
    masks = family.key_masks
    from_bytes = int.from_bytes
    keys: list[int] = []
    append = keys.append
    end = len(data)
    i = 0
    while i < end:
        length = data[i]
        if length > bits:
            raise _invalid(f"prefix length {length} exceeds {bits} bits at offset {i}")
        start = i + 1
        i = start + octets[length]
        if i > end:
            raise _invalid(f"prefix /{length} at offset {start - 1} runs past the end of the field")
        append(((from_bytes(data[start:i], "big") << shifts[length]) & masks[length]) | length)
    return keys


def encode_nlri(keys: Iterable[int], afi: int) -> bytes:
    """The wire form of ``keys``; host bits set in a key are cleared on the way out."""
    return b"".join(encode_prefixes(keys, afi))


def encode_prefixes(keys: Iterable[int], afi: int) -> list[bytes]:
    """One encoded record per key (what UPDATE packing needs to fill messages to the octet)."""
    family = _family(afi)
    bits = family.bits
    octets = family.octets
    shifts = family.shifts
    masks = family.key_masks
    records: list[bytes] = []
    append = records.append
    for key in keys:
        length = key & 0xFF
        if length > bits:
            raise ValueError(f"prefix length {length} exceeds {bits} bits")
        size = octets[length]
        record = (length << (size << 3)) | ((key & masks[length]) >> shifts[length])
        append(record.to_bytes(size + 1, "big"))
    return records
