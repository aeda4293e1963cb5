"""Compact prefixes: one Python int per IP prefix, shared by the BGP codec and the route engine.

A prefix is stored as ``key = (network_address << 8) | prefix_length`` together with its address
family (AFI 1 = IPv4, 2 = IPv6, as in RFC 4760). Host bits are always zero in a key, so two
encodings of the same prefix give the same key, keys compare and hash as plain ints, and a table of
a million prefixes costs one small int per prefix instead of an ``ipaddress`` object.

Ordering keys numerically sorts by address, then by length: the order route dumps use.
"""

from __future__ import annotations

import ipaddress
from array import array
from collections.abc import Sequence
from itertools import product, repeat
from operator import and_, rshift
from typing import Final

AFI_IPV4: Final = 1
AFI_IPV6: Final = 2

ADDRESS_BITS: Final = {AFI_IPV4: 32, AFI_IPV6: 128}


def make_key(afi: int, address: int, length: int) -> int:
    """The key of ``address/length``, host bits cleared."""
    bits = ADDRESS_BITS[afi]
    if not 0 <= length <= bits:
        raise ValueError(f"prefix length {length} out of range for AFI {afi}")
    mask = ((1 << length) - 1) << (bits - length)
    return ((address & mask) << 8) | length


def key_length(key: int) -> int:
    return key & 0xFF


def key_address(key: int) -> int:
    return key >> 8


def parse_prefix(text: str) -> tuple[int, int]:
    """``"10.0.0.0/24"`` -> ``(AFI_IPV4, key)``. Host bits set is an error (as OCI's API says)."""
    net = ipaddress.ip_network(text, strict=True)
    afi = AFI_IPV4 if net.version == 4 else AFI_IPV6
    return afi, (int(net.network_address) << 8) | net.prefixlen


def parse_address(text: str) -> tuple[int, int]:
    """``"10.0.0.1"`` -> ``(afi, int address)``."""
    addr = ipaddress.ip_address(text)
    return (AFI_IPV4 if addr.version == 4 else AFI_IPV6), int(addr)


def format_prefix(afi: int, key: int) -> str:
    """The CIDR text of a key, e.g. ``"10.0.0.0/24"`` or ``"2001:db8::/32"``."""
    length = key & 0xFF
    address = key >> 8
    if afi == AFI_IPV4:  # without ipaddress: route dumps format millions of these
        return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}/{length}"
    return f"{ipaddress.IPv6Address(address)}/{length}"


_HALVES: list[str] = []  # "a.b" of every 16-bit half of an IPv4 address, built on first use
_OCTETS = [str(n) for n in range(256)]
_LENGTHS = [f"/{n}" for n in range(33)]
_DIGITS = bytes(1 if v < 10 else 2 if v < 100 else 3 for v in range(256))  # decimal digits of a byte


def format_prefixes(afi: int, keys: Sequence[int]) -> list[str]:
    """``[format_prefix(afi, k) for k in keys]``, with no Python-level step per key for IPv4 (route
    dumps format a million keys): each address is its two 16-bit halves looked up in a table of their
    65,536 texts, joined with the length's text, all through C-level ``map``."""
    if afi != AFI_IPV4:
        return [format_prefix(afi, key) for key in keys]
    if not _HALVES:
        _HALVES.extend(map(".".join, product(_OCTETS, repeat=2)))
    high = map(_HALVES.__getitem__, map(rshift, keys, repeat(24)))
    low = map(_HALVES.__getitem__, map(and_, map(rshift, keys, repeat(8)), repeat(0xFFFF)))
    lengths = map(_LENGTHS.__getitem__, map(and_, keys, repeat(0xFF)))
    return list(map("".join, zip(high, repeat("."), low, lengths)))


def widest(afi: int, keys: Sequence[int]) -> int:
    """``max(map(len, format_prefixes(afi, keys)))`` (0 for no keys), for IPv4 without formatting: a
    key's 8 bytes (3 zero, a, b, c, d, length) translated to their digit counts sum to its text's
    length less one (3 dots and a slash, less the 3 zero bytes' ones), found per distinct pattern."""
    if not keys:
        return 0
    if afi != AFI_IPV4:
        return max(map(len, format_prefixes(afi, keys)))
    counts = array("Q")
    counts.frombytes(array("Q", keys).tobytes().translate(_DIGITS))
    return max(sum(word.to_bytes(8, "little")) for word in set(counts)) + 1


def format_address(afi: int, address: int) -> str:
    if afi == AFI_IPV4:
        return str(ipaddress.IPv4Address(address))
    return str(ipaddress.IPv6Address(address))


def contains(afi: int, key: int, address: int) -> bool:
    """Whether ``address`` lies inside the prefix ``key``."""
    bits = ADDRESS_BITS[afi]
    length = key & 0xFF
    return (address >> (bits - length)) == ((key >> 8) >> (bits - length))


def covering_keys(afi: int, address: int) -> list[int]:
    """Every key that contains ``address``, longest first (for longest-prefix match by dict lookups)."""
    bits = ADDRESS_BITS[afi]
    return [make_key(afi, address, length) for length in range(bits, -1, -1)]
