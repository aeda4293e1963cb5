"""Route semantics a session checks before installing an UPDATE's routes, once per UPDATE.

The codec has already applied RFC 7606 to what the octets say (:mod:`attrdecode`); what is left needs
to know the session: our AS, the peer's AS, whether the peer is external, and our own addresses.
:class:`RouteChecks` holds those and gives a verdict on an UPDATE's shared attributes, never per
prefix, so a million-prefix table costs a few comparisons per UPDATE:

* ``asLoop``: our AS anywhere in the AS_PATH (RFC 4271 s.9.1.2): not installed;
* ``firstAs``: on an external session, the leftmost AS of the AS_PATH is not the peer's AS (RFC 4271
  s.6.3, with RFC 7606 s.7.2: treat-as-withdraw);
* ``nextHop``: on an external session, the NEXT_HOP (or the MP_REACH_NLRI next hop) is one of the
  DRG's own addresses, the emulated Oracle address of the session or the local socket address
  (RFC 4271 s.6.3: semantically incorrect, the route is ignored). The local socket address does not
  count when the peer's socket address is the same (a lab with both ends on one loopback address).
  A next hop off the emulated peering subnet is fine: lab routers send their loopback address.

The internal sessions between daemons (RPC) get the loop check only: both ends may share a router
ID, which is their next hop. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import SegmentType
from controlplane.bgp.update import Update, ipv6_text

__all__ = ["RouteChecks", "address_text"]


def address_text(text: str) -> str | None:
    """An address as the codec writes it (dotted IPv4; RFC 5952 IPv6, IPv4-mapped as ``::ffff:a.b.c.d``);
    ``None`` for anything else (a prefix length is dropped first)."""
    try:
        address = ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        return None
    if address.is_unspecified:
        return None
    return str(address) if address.version == 4 else ipv6_text(address.packed)


class RouteChecks:
    """The session's view of which routes may be installed (see the module docstring)."""

    __slots__ = ("external", "local_as", "own", "peer_as")

    def __init__(self, local_as: int, peer_as: int, own: Iterable[str] = ()) -> None:
        self.local_as = local_as
        self.peer_as = peer_as
        self.external = local_as != peer_as
        self.own: frozenset[str] = frozenset(a for a in map(address_text, own) if a is not None)

    def with_addresses(self, configured: Iterable[str], sockets: tuple[str, str] | None) -> RouteChecks:
        """The checks of one connection: the configured own addresses plus its local socket address
        (unless the peer's socket address is the same)."""
        own = list(configured)
        if sockets is not None and address_text(sockets[0]) != address_text(sockets[1]):
            own.append(sockets[0])
        return RouteChecks(self.local_as, self.peer_as, own)

    def verdict(self, update: Update, attributes: PathAttributes) -> tuple[str, str] | None:
        """``(reason, why)`` when the UPDATE's routes must not be installed, else ``None``."""
        path = attributes.as_path
        local = self.local_as
        if any(local in asns for _, asns in path):
            return "asLoop", f"our AS {local} in the AS_PATH (RFC 4271 s9.1.2 loop detection)"
        if not self.external:
            return None
        first = path[0][1][0] if path and path[0][0] == SegmentType.AS_SEQUENCE else None
        if first != self.peer_as:
            shown = "an empty AS_PATH" if not path else f"leftmost AS {first if first is not None else 'in a set'}"
            return "firstAs", f"{shown}, not the peer's AS {self.peer_as} (RFC 4271 s6.3, RFC 7606 s7.2)"
        own = self.own
        hops = []
        if update.nlri and attributes.next_hop is not None:
            hops.append(attributes.next_hop)
        if update.mp_reach is not None and update.mp_reach.nlri:
            hops.extend(update.mp_reach.next_hop)
        for hop in hops:
            if hop in own:
                return "nextHop", f"NEXT_HOP {hop} is the DRG's own address (RFC 4271 s6.3)"
        return None
