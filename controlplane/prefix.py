"""Compact prefixes: one Python int per IP prefix, shared by the BGP codec and the route engine.

A prefix is stored as ``key = (network_address << 8) | prefix_length`` together with its address
family (AFI 1 = IPv4, 2 = IPv6, as in RFC 4760). Host bits are always zero in a key, so two
encodings of the same prefix give the same key, keys compare and hash as plain ints, and a table of
a million prefixes costs one small int per prefix instead of an ``ipaddress`` object.

Ordering keys numerically sorts by address, then by length: the order route dumps use.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
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


_DOTTED = "%d.%d.%d.%d/%d".__mod__


def ipv4_octets(keys: Sequence[int]) -> Iterator[tuple[int, int, int, int, int]]:
    """``(a, b, c, d, length)`` of IPv4 keys at C speed: the keys as big-endian 64-bit words (three
    zero bytes, four address bytes, the length) unpacked by ``struct``."""
    words = array("Q", keys)
    if sys.byteorder == "little":
        words.byteswap()
    return struct.iter_unpack("3x5B", words)


def format_prefixes(afi: int, keys: Sequence[int]) -> list[str]:
    """``[format_prefix(afi, k) for k in keys]``, with no Python-level step per key for IPv4 (route
    dumps format a million keys)."""
    if afi != AFI_IPV4:
        return [format_prefix(afi, key) for key in keys]
    return list(map(_DOTTED, ipv4_octets(keys)))


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
