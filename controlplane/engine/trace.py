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

from controlplane.config.effective import EffAttachment, EffectiveConfig
from controlplane.config.schema import AttachmentType
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

_CROSS = (AttachmentType.VIRTUAL_CIRCUIT, AttachmentType.IPSEC_TUNNEL)
MAX_HOPS = 16


Outer = tuple[str | None, str | None] | None  # the ESP outer header (src, dst) while encrypted


def _hop(attachment: str, table: str | None, rule: str | None, action: str, next_hop: str | None,
         outer: Outer) -> dict[str, Any]:
    return {"attachment": attachment, "routeTable": table, "matchedRule": rule, "action": action,
            "nextHop": next_hop, "encrypted": outer is not None,
            "outerSrc": outer[0] if outer else None, "outerDst": outer[1] if outer else None}


def _clear_on_transport(vc: str, target: str) -> str:
    return f"{vc} is transport-only: clear traffic to {target} is not carried, only IPSec to a tunnel headend (R44)"


class _Dropped(Exception):
    """The walk ends with a DROP hop; ``reason`` is the result's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Walk:
    """One packet's walk: ``hops`` grows as it goes; every step either moves on or raises ``_Dropped``."""

    def __init__(self, engine: RouteEngine, src: str, dst: str, inner: tuple[str, str] | None) -> None:
        self.engine = engine
        self.cfg = engine.config
        self.packet = (src, dst)
        self.inner = inner  # the addresses inside the ESP packet, when given
        self.outer: Outer = None
        self.hops: list[dict[str, Any]] = []

    def drop(self, attachment: str, table: str | None, rule: str | None, next_hop: str | None,
             reason: str) -> _Dropped:
        self.hops.append(_hop(attachment, table, rule, "DROP", next_hop, self.outer))
        return _Dropped(reason)

    def run(self, current: EffAttachment) -> str | None:
        """Walk from ``current`` until delivered (returns None) or dropped (raises)."""
        for _ in range(MAX_HOPS):
            if current.type == AttachmentType.IPSEC_TUNNEL:
                self.tunnel_up(current.name, current.name, "")
            egress = self.drg_pass(current)
            after = self.leave(egress)
            if after is None:
                return None
            current = after
        raise _Dropped(f"more than {MAX_HOPS} hops: routing loop")

    def tunnel_up(self, tunnel: str, at: str, consequence: str) -> None:
        up, why = self.engine.tunnel_state(tunnel)
        if not up:
            raise self.drop(at, None, None, None, f"tunnel {tunnel} is down: {why}{consequence}")

    def drg_pass(self, current: EffAttachment) -> EffAttachment:
        """One lookup in the ingress attachment's table (R12, R26) and the checks on where it leaves."""
        name, table = current.name, current.route_table
        target = str(self.outer[1]) if self.outer else self.packet[1]
        match = self.engine.lookup(table, target)
        transport_only_vc = current.type == AttachmentType.VIRTUAL_CIRCUIT and current.transport_only
        if match is None:
            raise self.drop(name, table, None, None, _clear_on_transport(name, target) if transport_only_vc
                            else f"no route to {target} in {table} (R12, R26)")
        if match.blackhole:
            raise self.drop(name, table, match.prefix, match.next_hops[0],
                            f"{match.prefix} in {table} is a blackhole: next hop {match.next_hops[0]} "
                            "does not exist (R17)")
        flow = parse_address(self.packet[0])[1] ^ parse_address(self.packet[1])[1]
        next_name = match.next_hops[flow % len(match.next_hops)]  # R30: flow hash over an ECMP set
        egress = self.cfg.attachment(next_name)
        reason = self.refused(current, egress, target)
        if reason is not None:
            raise self.drop(name, table, match.prefix, next_name, reason)
        if egress.type == AttachmentType.LOOPBACK and self.outer is None:
            self.outer = self.packet  # a packet to a tunnel headend is ESP (R49 inbound)
        self.hops.append(_hop(name, table, match.prefix, "FORWARD", next_name, self.outer))
        return egress

    def refused(self, current: EffAttachment, egress: EffAttachment, target: str) -> str | None:
        """Why the packet that entered on ``current`` may not leave on ``egress``, if it may not."""
        if current.type == AttachmentType.VIRTUAL_CIRCUIT and current.transport_only \
                and egress.type != AttachmentType.LOOPBACK:
            return _clear_on_transport(current.name, target)
        if current.type in _CROSS and egress.type in _CROSS:
            return (f"traffic that entered on {current.type} {current.name} may not leave on {egress.type} "
                    f"{egress.name} (R24)")
        if egress.type == AttachmentType.VIRTUAL_CIRCUIT and egress.transport_only and self.outer is None:
            return f"{egress.name} is transport-only: clear traffic may not leave on it (R44)"
        if egress.type == AttachmentType.LOOPBACK and egress.transport_attachment != current.name:  # R5, R40
            return (f"headend {egress.oracle_tunnel_ip} ({egress.name}) is reachable only over "
                    f"{egress.transport_attachment}, the VC its tunnel rides on (R40, R5)")
        return None

    def leave(self, egress: EffAttachment) -> EffAttachment | None:
        """What happens where the packet leaves: the attachment it re-enters on, or None (delivered)."""
        name = egress.name
        if egress.type in (AttachmentType.VCN, AttachmentType.VIRTUAL_CIRCUIT):
            self.hops.append(_hop(name, None, None, "EXIT", None, self.outer))
            return None
        if egress.type == AttachmentType.IPSEC_TUNNEL:
            self.tunnel_up(name, name, "")
            self.outer = (egress.oracle_tunnel_ip, egress.cpe_ip)
            if egress.loopback is None:  # a tunnel over the internet: the packet leaves encrypted
                self.hops.append(_hop(name, None, None, "ENCRYPT", None, self.outer))
                self.hops.append(_hop(name, None, None, "EXIT", None, self.outer))
                return None
            self.hops.append(_hop(name, None, None, "ENCRYPT", egress.loopback, self.outer))  # R49 outbound
            return self.cfg.attachment(egress.loopback)
        # LOOPBACK: the ESP packet is decrypted and re-enters on its tunnel (R49 inbound).
        tunnel = str(egress.tunnel)
        self.tunnel_up(tunnel, name, "; the ESP packet cannot be decrypted")
        self.hops.append(_hop(name, None, None, "DECRYPT", tunnel, None))
        if self.inner is None:
            return None
        self.packet, self.outer, self.inner = self.inner, None, None
        return self.cfg.attachment(tunnel)


def trace(engine: RouteEngine, from_attachment: str, src: str, dst: str, inner_src: str | None = None,
          inner_dst: str | None = None) -> dict[str, Any]:
    """The hops of a packet entering on ``from_attachment``, in the shape of ``drg trace --json``."""
    current = engine.config.find_attachment(from_attachment)
    if current is None:
        raise KeyError(f"unknown attachment {from_attachment!r}")
    for address in (src, dst, inner_src, inner_dst):
        if address is not None:
            parse_address(address)  # ValueError on a bad address
    inner = (inner_src, inner_dst) if inner_src is not None and inner_dst is not None else None
    walk = _Walk(engine, src, dst, inner)
    try:
        walk.run(current)
    except _Dropped as exc:
        return {"result": "DROPPED", "reason": exc.reason, "hops": walk.hops}
    return {"result": "DELIVERED", "reason": None, "hops": walk.hops}
