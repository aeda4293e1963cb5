"""Packet walk: ``drg trace``, a state machine over DRG passes and VCN locations (R93).

How it works: a walk starts at a VCN subnet (``--from VCN``: the subnet holding the source, R69) or with a
DRG pass entering on an attachment (``--from ATTACHMENT``), and moves between locations until it is
delivered, dropped or leaves the emulator's scope. This module has the DRG passes; ``engine/vcn_walk.py``
the subnet egress, VCN ingress and appliance locations; ``engine/hops.py`` the hop JSON and the endings.

A DRG pass routes the packet by a longest-prefix match in the ingress attachment's table only (R12, R26);
the active rule's next hop is where it leaves, after R24 is checked for this pass alone (R90). Leaving on
a VCN attachment enters that VCN's ingress location (R73-R75); leaving on a VC ends the walk (EXIT).
Leaving on an IPSec-over-FastConnect tunnel encrypts it (outer header headend -> CPE) and it re-enters on
the tunnel's LOOPBACK attachment, whose table sends it to the VC (R49 outbound). A packet routed to a
LOOPBACK (a headend /32) is ESP: it is decrypted and, when the inner addresses are given, re-enters on the
tunnel attachment (R49 inbound). Drops, with their reasonCode: no route (NO_ROUTE_IN_DRG), a blackhole
(BLACKHOLE, R17), traffic from a VC/IPSec attachment to a VC/IPSec attachment (ONPREM_TO_ONPREM, R24; the
loopback path is the sanctioned exception, R5), a headend reached from anywhere but its own VC
(HEADEND_WRONG_VC, R40, R5), clear traffic on a transport-only VC (TRANSPORT_ONLY, R44), a tunnel that
is down (TUNNEL_DOWN, R47). ECMP sets (R30) pick one member by a flow hash of the addresses. The loop
guard (R89): a walk that comes back to a location of the same DRG with the same destination and
encryption state, or that makes more than 16 DRG passes (counted across DRGs), is DROPPED with
ROUTING_LOOP (U-turns themselves are allowed).

Across DRGs: ``trace`` may be given the engines of the other DRGs of the process (``peers``). A packet
forwarded to an RPC attachment re-enters the peer DRG on the peer RPC attachment (R97) and the walk goes on
there with that DRG's tables and VCNs; its hops then carry ``drg``. An RPC that is not PEERED, on either
side, drops what is routed to it (RPC_NOT_PEERED, R110); one whose peer DRG is not among the engines (run
by another daemon, or ``peer: external``) ends the walk LEFT_SCOPE with REMOTE_DRG and a ``peer`` field
naming where it would go on (R109). R24 is checked per DRG pass (R90), so VC -> RPC and RPC -> VC are
legal: R101's literal reading, the default. ``onprem_transit_across_rpc="drop"`` is its strict reading: a
packet that entered a DRG on a VC/IPSec and reached another one over RPCs only (no VCN in between) may
not leave there on a VC/IPSec (ONPREM_TO_ONPREM).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from controlplane.config.effective import EffAttachment, EffectiveConfig
from controlplane.config.schema import AttachmentType
from controlplane.engine.hops import (
    BLACKHOLE,
    DELIVERED,
    DRG,
    HEADEND_WRONG_VC,
    LEFT_SCOPE,
    NO_ROUTE_IN_DRG,
    ONPREM_TO_ONPREM,
    REMOTE_DRG,
    ROUTING_LOOP,
    RPC_NOT_PEERED,
    TRANSPORT_ONLY,
    TUNNEL_DOWN,
    Ended,
)
from controlplane.engine.vcn_walk import AT_APPLIANCE, AT_DRG, AT_INGRESS, AT_SUBNET, Location, VcnSteps, subnet_holding
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
_RPC = AttachmentType.REMOTE_PEERING_CONNECTION
MAX_DRG_PASSES = 16  # R89
ONPREM_TRANSIT = ("allow", "drop")  # R101: literal reading (default), strict reading


def _clear_on_transport(vc: str, target: str) -> str:
    return f"{vc} is transport-only: clear traffic to {target} is not carried, only IPSec to a tunnel headend (R44)"


class _Walk(VcnSteps):
    """One packet's walk: ``hops`` grows as it goes; every step moves on, returns None or raises ``Ended``."""

    def __init__(self, engine: RouteEngine, peers: Mapping[str, RouteEngine], src: str, dst: str,
                 inner: tuple[str, str] | None, strict: bool) -> None:
        super().__init__(engine.config, src, dst, inner)
        self.engine = engine
        self.engines = {**peers, engine.config.drg_name: engine}
        self.multi = len(self.engines) > 1  # hops carry ``drg`` (also once the walk meets an RPC)
        self.strict = strict  # R101's strict reading
        self.onprem_entry: str | None = None  # the VC/IPSec this chain of RPC-joined DRG passes entered on

    def start(self, origin: str) -> Location:
        """``--from``: an attachment (a DRG pass) or a VCN (the subnet holding the source, R69)."""
        if self.cfg.find_attachment(origin) is not None:
            return AT_DRG, origin
        vcn = self.vcns.get(origin)
        if vcn is None:
            raise KeyError(f"unknown attachment or VCN {origin!r}")
        subnet = subnet_holding(vcn, self.packet[0])
        if subnet is None:
            raise ValueError(f"no subnet of {origin} holds {self.packet[0]} (subnets: "
                             f"{', '.join(s.cidr for s in vcn.subnet_list) or 'none'}): a walk from a VCN starts "
                             "at the route table of the source's subnet (R69)")
        return AT_SUBNET, vcn.name, subnet.name

    def run(self, where: Location | None) -> None:
        """Step from ``where`` until delivered (returns) or ended (raises); R89 guards against loops."""
        seen: set[tuple[str, Location, str, bool]] = set()
        passes = 0
        while where is not None:
            state = (self.drg, where, self.target, self.outer is not None)
            passes += where[0] == AT_DRG
            if state in seen or passes > MAX_DRG_PASSES:
                kind, attachment, fields, words = self.located(where)
                why = f"the packet to {self.target} is back at {words}" if state in seen \
                    else f"more than {MAX_DRG_PASSES} DRG passes"
                raise self.drop(ROUTING_LOOP, f"routing loop: {why} (R89)", kind, attachment, **fields)
            seen.add(state)
            where = self.step(where)

    def step(self, where: Location) -> Location | None:
        if where[0] == AT_DRG:
            current = self.cfg.attachment(where[1])
            if current.type != _RPC:  # R101: an RPC keeps where the packet entered the chain of DRGs
                self.onprem_entry = f"{current.type} {current.name} of {self.drg}" if current.type in _CROSS \
                    else None
            if current.type == AttachmentType.IPSEC_TUNNEL:
                self.tunnel_up(current.name, current.name, "")
            return self.leave(self.drg_pass(current))
        if where[0] == AT_INGRESS:
            return self.vcn_ingress(where[1])
        if where[0] == AT_SUBNET:
            return self.subnet_egress(where[1], where[2])
        assert where[0] == AT_APPLIANCE
        return self.appliance(where[1], where[2])

    def tunnel_up(self, tunnel: str, at: str, consequence: str) -> None:
        up, why = self.engine.tunnel_state(tunnel)
        if not up:
            raise self.drop(TUNNEL_DOWN, f"tunnel {tunnel} is down: {why}{consequence}", DRG, at)

    def drg_pass(self, current: EffAttachment) -> EffAttachment:
        """One lookup in the ingress attachment's table (R12, R26) and the checks on where it leaves."""
        name, table, target = current.name, current.route_table, self.target
        match = self.engine.lookup(table, target)
        transport_only_vc = current.type == AttachmentType.VIRTUAL_CIRCUIT and current.transport_only
        if match is None:
            if transport_only_vc:
                raise self.drop(TRANSPORT_ONLY, _clear_on_transport(name, target), DRG, name, table)
            raise self.drop(NO_ROUTE_IN_DRG, f"no route to {target} in {table} (R12, R26)", DRG, name, table)
        if match.blackhole:
            raise self.drop(BLACKHOLE, f"{match.prefix} in {table} is a blackhole: next hop {match.next_hops[0]} "
                            "does not exist (R17)", DRG, name, table, match.prefix, match.next_hops[0])
        flow = parse_address(self.packet[0])[1] ^ parse_address(self.packet[1])[1]
        next_name = match.next_hops[flow % len(match.next_hops)]  # R30: flow hash over an ECMP set
        egress = self.cfg.attachment(next_name)
        self.multi |= egress.type == _RPC
        refused = self.refused(current, egress, target)
        if refused is not None:
            raise self.drop(refused[0], refused[1], DRG, name, table, match.prefix, next_name)
        if egress.type == AttachmentType.LOOPBACK and self.outer is None:
            self.outer = self.packet  # a packet to a tunnel headend is ESP (R49 inbound)
        self.add(DRG, name, table, match.prefix, "FORWARD", next_name)
        return egress

    def refused(self, current: EffAttachment, egress: EffAttachment, target: str) -> tuple[str, str] | None:
        """Why (reasonCode, reason) the packet that entered on ``current`` may not leave on ``egress``, if it
        may not; R24 is checked per DRG pass (R90), so VCN hops in between make on-prem to on-prem legal."""
        if current.type == AttachmentType.VIRTUAL_CIRCUIT and current.transport_only \
                and egress.type != AttachmentType.LOOPBACK:
            return TRANSPORT_ONLY, _clear_on_transport(current.name, target)
        if current.type in _CROSS and egress.type in _CROSS:
            return ONPREM_TO_ONPREM, (f"traffic that entered on {current.type} {current.name} may not leave on "
                                      f"{egress.type} {egress.name} (R24)")
        if egress.type == _RPC:
            why = self.not_peered(egress)
            if why is not None:
                return RPC_NOT_PEERED, why
        if self.strict and current.type == _RPC and egress.type in _CROSS and self.onprem_entry is not None:
            return ONPREM_TO_ONPREM, (f"traffic that entered on {self.onprem_entry} and crossed an RPC may not "
                                      f"leave on {egress.type} {egress.name} (R24 across DRGs: R101's strict "
                                      "reading, onprem_transit_across_rpc: drop)")
        if egress.type == AttachmentType.VIRTUAL_CIRCUIT and egress.transport_only and self.outer is None:
            return TRANSPORT_ONLY, f"{egress.name} is transport-only: clear traffic may not leave on it (R44)"
        if egress.type == AttachmentType.LOOPBACK and egress.transport_attachment != current.name:  # R5, R40
            return HEADEND_WRONG_VC, (f"headend {egress.oracle_tunnel_ip} ({egress.name}) is reachable only over "
                                      f"{egress.transport_attachment}, the VC its tunnel rides on (R40, R5)")
        return None

    def not_peered(self, rpc: EffAttachment) -> str | None:
        """Why traffic over ``rpc`` is dropped (R110), if it is: this side or the peer's is not PEERED."""
        if not rpc.peered:
            return f"{rpc.name} is {_status(self.cfg, rpc.name)}, not PEERED: traffic routed to it is dropped (R110)"
        peer = rpc.rpc_peer
        engine = self.engines.get(peer[0]) if peer is not None else None
        if peer is None or engine is None:
            return None  # not walked here: the walk leaves the scope on it
        other = engine.config.find_attachment(peer[1])
        if other is None or other.type != _RPC:
            return f"{rpc.name}'s peer {peer[1]} is not an RPC attachment of {peer[0]}: nothing is peered (R110)"
        if not other.peered:
            return (f"{rpc.name}'s peer {peer[1]} of {peer[0]} is {_status(engine.config, peer[1])}, not PEERED: "
                    "traffic routed to it is dropped (R110)")
        return None

    def cross(self, rpc: EffAttachment) -> Location:
        """Over the RPC: the packet enters the peer DRG on the peer attachment (R97), or leaves the scope."""
        peer = rpc.rpc_peer
        engine = self.engines.get(peer[0]) if peer is not None else None
        if peer is None or engine is None:
            where = "an external peer (peer: external), not emulated" if peer is None else \
                f"{peer[0]} ({peer[1]}), a DRG this process does not run (another daemon)"
            raise Ended(LEFT_SCOPE, REMOTE_DRG, f"{rpc.name} of {self.drg} peers with {where}: the walk stops at "
                        "the RPC (R109, R93)", peer={"drg": peer[0] if peer else None,
                                                     "attachment": peer[1] if peer else None})
        self.engine = engine
        self.enter(engine.config)
        return AT_DRG, peer[1]

    def leave(self, egress: EffAttachment) -> Location | None:
        """What happens where the packet leaves the DRG: the next location, or None (delivered)."""
        name = egress.name
        if egress.type == _RPC:
            return self.cross(egress)
        if egress.type == AttachmentType.VCN and egress.vcn in self.vcns:
            return AT_INGRESS, name  # R75: into the VCN by its ingress table
        if egress.type in (AttachmentType.VCN, AttachmentType.VIRTUAL_CIRCUIT):
            self.add(DRG, name, None, None, "EXIT", None)
            return None
        if egress.type == AttachmentType.IPSEC_TUNNEL:
            self.tunnel_up(name, name, "")
            self.outer = (egress.oracle_tunnel_ip, egress.cpe_ip)
            if egress.loopback is None:  # a tunnel over the internet: the packet leaves encrypted
                self.add(DRG, name, None, None, "ENCRYPT", None)
                self.add(DRG, name, None, None, "EXIT", None)
                return None
            self.add(DRG, name, None, None, "ENCRYPT", egress.loopback)  # R49 outbound
            return AT_DRG, egress.loopback
        # LOOPBACK: the ESP packet is decrypted and re-enters on its tunnel (R49 inbound).
        tunnel = str(egress.tunnel)
        self.tunnel_up(tunnel, name, "; the ESP packet cannot be decrypted")
        self.outer = None
        self.add(DRG, name, None, None, "DECRYPT", tunnel)
        if self.inner is None:
            return None
        self.packet, self.inner = self.inner, None
        return AT_DRG, tunnel


def _status(cfg: EffectiveConfig, rpc: str) -> str:
    """An RPC attachment's peering status as the file gives it (R94, R110)."""
    att = next((a for a in cfg.source.attachments if a.name == rpc), None)
    return str(getattr(att, "peering_status", "not PEERED"))


def trace(engine: RouteEngine, origin: str, src: str, dst: str, inner_src: str | None = None,
          inner_dst: str | None = None, *, peers: Mapping[str, RouteEngine] | None = None,
          onprem_transit_across_rpc: str = "allow") -> dict[str, Any]:
    """The hops of a packet from ``origin`` (an attachment or a VCN of ``engine``'s DRG, R69), as ``drg trace
    --json``. ``peers``: the other DRGs' engines of this process, by DRG name, walked into over RPCs;
    ``onprem_transit_across_rpc``: ``allow`` (R101 literal) or ``drop`` (strict)."""
    if onprem_transit_across_rpc not in ONPREM_TRANSIT:
        raise ValueError(f"onprem_transit_across_rpc must be allow or drop, not {onprem_transit_across_rpc!r} (R101)")
    for address in (src, dst, inner_src, inner_dst):
        if address is not None:
            parse_address(address)  # ValueError on a bad address
    inner = (inner_src, inner_dst) if inner_src is not None and inner_dst is not None else None
    walk = _Walk(engine, peers or {}, src, dst, inner, onprem_transit_across_rpc == "drop")
    start = walk.start(origin)
    try:
        walk.run(start)
    except Ended as end:
        doc = {"result": end.result, "reason": end.reason, "reasonCode": end.code, **end.extra, "hops": walk.hops}
    else:
        doc = {"result": DELIVERED, "reason": None, "reasonCode": None, "hops": walk.hops}
    if not walk.multi:
        for hop in walk.hops:
            del hop["drg"]
    return doc
