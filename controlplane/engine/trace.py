"""Packet walk through the DRG: ``drg trace`` (R12, R24, R26, R44, R47, R49).

How it works: a packet enters on an attachment and is routed by a longest-prefix match in that
attachment's table only (R12, R26); the active rule's next hop is where it leaves. Leaving on a VCN or a
VC ends the walk (EXIT). Leaving on an IPSec-over-FastConnect tunnel encrypts it (outer header
headend -> CPE) and it re-enters on the tunnel's LOOPBACK attachment, whose table sends it to the VC
(R49 outbound). A packet routed to a LOOPBACK (a headend /32) is ESP: it is decrypted and, when the
inner addresses are given, re-enters on the tunnel attachment (R49 inbound). Drops, with their reason:
no route, a blackhole (R17), traffic from a VC/IPSec attachment to a VC/IPSec attachment (R24; the
loopback path is the sanctioned exception, R5), a headend reached from anywhere but its own VC (R40,
R5), clear traffic on a transport-only VC (R44), a tunnel that is down (R47). ECMP sets (R30) pick
one member by a flow hash of the addresses.
"""

from __future__ import annotations

from typing import Any, Protocol

from controlplane.config.effective import EffectiveConfig
from controlplane.prefix import parse_address


class Route(Protocol):
    """A longest-prefix match (``routing.Lookup``)."""

    @property
    def prefix(self) -> str: ...
    @property
    def next_hops(self) -> tuple[str, ...]: ...
    @property
    def blackhole(self) -> bool: ...


class RouteEngine(Protocol):
    """What a walk reads of an engine (``routing.RouteEngine``; a protocol keeps imports one-way)."""

    config: EffectiveConfig

    def lookup(self, table: str, address: str) -> Route | None: ...
    def tunnel_state(self, name: str) -> tuple[bool, str | None]: ...

_CROSS = ("VIRTUAL_CIRCUIT", "IPSEC_TUNNEL")
MAX_HOPS = 16


Outer = tuple[str | None, str | None] | None  # the ESP outer header (src, dst) while encrypted


def _hop(attachment: str, table: str | None, rule: str | None, action: str, next_hop: str | None,
         outer: Outer) -> dict[str, Any]:
    return {"attachment": attachment, "routeTable": table, "matchedRule": rule, "action": action,
            "nextHop": next_hop, "encrypted": outer is not None,
            "outerSrc": outer[0] if outer else None, "outerDst": outer[1] if outer else None}


def trace(engine: RouteEngine, from_attachment: str, src: str, dst: str, inner_src: str | None = None,
          inner_dst: str | None = None) -> dict[str, Any]:
    """The hops of a packet entering on ``from_attachment``, in the shape of ``drg trace --json``."""
    cfg = engine.config
    current = cfg.find_attachment(from_attachment)
    if current is None:
        raise KeyError(f"unknown attachment {from_attachment!r}")
    for address in (src, dst, inner_src, inner_dst):
        if address is not None:
            parse_address(address)  # ValueError on a bad address
    hops: list[dict[str, Any]] = []

    def result(outcome: str, reason: str | None) -> dict[str, Any]:
        return {"result": outcome, "reason": reason, "hops": hops}

    def drop(attachment: str, table: str | None, rule: str | None, next_hop: str | None, outer: Outer,
             reason: str) -> dict[str, Any]:
        hops.append(_hop(attachment, table, rule, "DROP", next_hop, outer))
        return result("DROPPED", reason)

    packet = (src, dst)
    outer: Outer = None
    for _ in range(MAX_HOPS):
        name = current.name
        if current.type == "IPSEC_TUNNEL":
            up, why = engine.tunnel_state(name)
            if not up:
                return drop(name, None, None, None, outer, f"tunnel {name} is down: {why}")
        table = current.route_table
        target = str(outer[1]) if outer else packet[1]
        match = engine.lookup(table, target)
        transport_only_vc = current.type == "VIRTUAL_CIRCUIT" and current.transport_only
        if match is None:
            if transport_only_vc:
                return drop(name, table, None, None, outer, f"{name} is transport-only: clear traffic to "
                            f"{target} is not carried, only IPSec to a tunnel headend (R44)")
            return drop(name, table, None, None, outer, f"no route to {target} in {table} (R12, R26)")
        if match.blackhole:
            return drop(name, table, match.prefix, match.next_hops[0], outer,
                        f"{match.prefix} in {table} is a blackhole: next hop {match.next_hops[0]} "
                        "does not exist (R17)")
        flow = parse_address(packet[0])[1] ^ parse_address(packet[1])[1]
        next_name = match.next_hops[flow % len(match.next_hops)]  # R30: flow hash over an ECMP set
        egress = cfg.attachment(next_name)
        if transport_only_vc and egress.type != "LOOPBACK":
            return drop(name, table, match.prefix, next_name, outer, f"{name} is transport-only: clear "
                        f"traffic to {target} is not carried, only IPSec to a tunnel headend (R44)")
        if current.type in _CROSS and egress.type in _CROSS:
            return drop(name, table, match.prefix, next_name, outer,
                        f"traffic that entered on {current.type} {name} may not leave on {egress.type} "
                        f"{next_name} (R24)")
        if egress.type == "VIRTUAL_CIRCUIT" and egress.transport_only and outer is None:
            return drop(name, table, match.prefix, next_name, outer,
                        f"{next_name} is transport-only: clear traffic may not leave on it (R44)")
        if egress.type == "LOOPBACK" and egress.transport_attachment != name:  # R5, R40
            return drop(name, table, match.prefix, next_name, outer,
                        f"headend {egress.oracle_tunnel_ip} ({next_name}) is reachable only over "
                        f"{egress.transport_attachment}, the VC its tunnel rides on (R40, R5)")
        if egress.type == "LOOPBACK" and outer is None:
            outer = packet  # a packet to a tunnel headend is ESP (R49 inbound)
        hops.append(_hop(name, table, match.prefix, "FORWARD", next_name, outer))

        if egress.type in ("VCN", "VIRTUAL_CIRCUIT"):
            hops.append(_hop(next_name, None, None, "EXIT", None, outer))
            return result("DELIVERED", None)
        if egress.type == "IPSEC_TUNNEL":
            up, why = engine.tunnel_state(next_name)
            if not up:
                return drop(next_name, None, None, None, outer, f"tunnel {next_name} is down: {why}")
            outer = (egress.oracle_tunnel_ip, egress.cpe_ip)
            if egress.loopback is None:  # a tunnel over the internet: the packet leaves encrypted
                hops.append(_hop(next_name, None, None, "ENCRYPT", None, outer))
                hops.append(_hop(next_name, None, None, "EXIT", None, outer))
                return result("DELIVERED", None)
            hops.append(_hop(next_name, None, None, "ENCRYPT", egress.loopback, outer))  # R49 outbound
            current = cfg.attachment(egress.loopback)
            continue
        # LOOPBACK: the ESP packet is decrypted and re-enters on its tunnel (R49 inbound).
        tunnel = str(egress.tunnel)
        up, why = engine.tunnel_state(tunnel)
        if not up:
            return drop(next_name, None, None, None, outer,
                        f"tunnel {tunnel} is down: {why}; the ESP packet cannot be decrypted")
        hops.append(_hop(next_name, None, None, "DECRYPT", tunnel, None))
        if inner_src is None or inner_dst is None:
            return result("DELIVERED", None)
        packet, outer = (inner_src, inner_dst), None
        inner_src = inner_dst = None
        current = cfg.attachment(tunnel)
    return result("DROPPED", f"more than {MAX_HOPS} hops: routing loop")
