"""The record of a packet walk (``drg trace``, R93): one JSON hop per step, and how a walk ends.

How it works: a walk (``engine/trace.py`` for the DRG passes, ``engine/vcn_walk.py`` for the VCN side) holds
the packet (source and destination, the addresses inside an ESP packet when given, the ESP outer header
while encrypted) and appends one hop per step. Every hop has today's fields (``attachment``,
``routeTable``, ``matchedRule``, ``action``, ``nextHop``, ``encrypted``, ``outerSrc``, ``outerDst``) and
``kind``: DRG, VCN or APPLIANCE, and ``drg`` (the DRG it happens in) when more than one DRG may be
involved: the trace was given other DRGs' engines, or the walk was forwarded to an RPC attachment (R93
across DRGs, ``engine/trace.py``); a single-DRG walk's hops are unchanged. VCN hops add ``vcn``,
``subnet`` (subnet egress; null at VCN ingress) and ``routeType`` (STATIC or LOCAL, the VCN rule that
matched, R70); APPLIANCE hops add ``vcn``, ``subnet``, ``appliance``, ``privateIp`` and ``verdict``
(ALLOW or DENY, R91). A walk that returns is DELIVERED; one that ends otherwise raises :class:`Ended`
with its result (DROPPED or LEFT_SCOPE), a machine ``reasonCode``, the human reason and top-level fields
of its own (``peer`` when it stops at an RPC whose peer DRG is not in this process); a drop appends a
hop whose action is DROP first (an appliance's DENY is its INSPECT hop).
"""

from __future__ import annotations

from typing import Any

from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import VcnAttachment
from controlplane.config.vcn import Vcn

DRG, VCN, APPLIANCE = "DRG", "VCN", "APPLIANCE"  # hop kinds
DELIVERED, DROPPED, LEFT_SCOPE = "DELIVERED", "DROPPED", "LEFT_SCOPE"  # results

# Reason codes of DROPPED, by the rule that decides.
NO_ROUTE_IN_DRG = "NO_ROUTE_IN_DRG"  # R12, R26
BLACKHOLE = "BLACKHOLE"  # R17
ONPREM_TO_ONPREM = "ONPREM_TO_ONPREM"  # R24
TRANSPORT_ONLY = "TRANSPORT_ONLY"  # R44
HEADEND_WRONG_VC = "HEADEND_WRONG_VC"  # R40, R5
TUNNEL_DOWN = "TUNNEL_DOWN"  # R47
ROUTING_LOOP = "ROUTING_LOOP"  # R89
NO_ROUTE_IN_VCN = "NO_ROUTE_IN_VCN"  # R70, R75
NO_DRG_ATTACHMENT = "NO_DRG_ATTACHMENT"  # R71
PRIVATE_IP_TARGET_DOWN = "PRIVATE_IP_TARGET_DOWN"  # R72
INGRESS_TARGET_REFUSED = "INGRESS_TARGET_REFUSED"  # R73
APPLIANCE_DENY = "APPLIANCE_DENY"  # R91
RPC_NOT_PEERED = "RPC_NOT_PEERED"  # R110
# Reason code of LEFT_SCOPE at an RPC whose peer DRG is not walked here (another daemon, or external; R109).
REMOTE_DRG = "REMOTE_DRG"

Outer = tuple[str | None, str | None] | None  # the ESP outer header (src, dst) while encrypted


class Ended(Exception):
    """The walk ends DROPPED or LEFT_SCOPE: ``code`` is the result's reasonCode, ``reason`` its text."""

    def __init__(self, result: str, code: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.result, self.code, self.reason = result, code, reason
        self.extra = extra  # top-level fields of the result document (``peer``)


class WalkRecord:
    """The packet as it goes and the hops so far; read by every step of a walk."""

    def __init__(self, cfg: EffectiveConfig, src: str, dst: str, inner: tuple[str, str] | None) -> None:
        self.packet = (src, dst)
        self.inner = inner  # the addresses inside the ESP packet, when given
        self.outer: Outer = None
        self.hops: list[dict[str, Any]] = []
        self.enter(cfg)

    def enter(self, cfg: EffectiveConfig) -> None:
        """The walk is now in the DRG of ``cfg`` (at the start, or over an RPC): its attachments and VCNs."""
        self.cfg = cfg
        self.drg = cfg.drg_name
        self.vcns: dict[str, Vcn] = {v.name: v for v in cfg.source.vcns}
        self.ingress_tables: dict[str, str | None] = {
            a.name: a.ingress_route_table for a in cfg.source.attachments if isinstance(a, VcnAttachment)}

    @property
    def target(self) -> str:
        """The address the packet is routed by: the ESP outer destination while encrypted."""
        return str(self.outer[1]) if self.outer else self.packet[1]

    @property
    def seen_src(self) -> str:
        """The source an appliance sees: the ESP outer source while encrypted."""
        return str(self.outer[0]) if self.outer else self.packet[0]

    def add(self, kind: str, attachment: str | None, table: str | None, rule: str | None, action: str,
            next_hop: str | None, **extra: Any) -> dict[str, Any]:
        outer = self.outer
        doc: dict[str, Any] = {"kind": kind, "drg": self.drg, "attachment": attachment, "routeTable": table,
                               "matchedRule": rule, "action": action, "nextHop": next_hop,
                               "encrypted": outer is not None, "outerSrc": outer[0] if outer else None,
                               "outerDst": outer[1] if outer else None}
        doc.update(extra)
        self.hops.append(doc)
        return doc

    def drop(self, code: str, reason: str, kind: str, attachment: str | None, table: str | None = None,
             rule: str | None = None, next_hop: str | None = None, **extra: Any) -> Ended:
        """Append the DROP hop and return the ending to raise."""
        self.add(kind, attachment, table, rule, "DROP", next_hop, **extra)
        return Ended(DROPPED, code, reason)
