"""The effective configuration: the file plus OCI's defaults and the emulator's system objects.

How it works: :func:`build_effective` turns a parsed :class:`~controlplane.config.schema.DrgConfig` into an
immutable :class:`EffectiveConfig` that the route engine and the validator share:

- OCI's defaults (R8-R10) exist under fixed names with OCI's display names: tables ``autogen-rt-vcn``
  (imports ``autogen-rd-all``, MATCH_ALL) and ``autogen-rt-other`` (imports ``autogen-rd-vcn``, type
  VCN), and the export distribution ``autogen-rd-export``. A file object with the same name replaces
  the default. An attachment without ``route_table`` uses the default table of its type (R8).
- System objects (R5, R6, R45, R46): one LOOPBACK attachment ``<tunnel>-lb`` per IPSec-over-FastConnect
  tunnel, offering the tunnel's ``oracle_tunnel_ip``/32 (provenance LOOPBACK, empty AS path); one table
  ``<vc>-lb-rt`` per VC carrying tunnels, importing that VC through ``<vc>-lb-rd``; and, in the import
  distribution of the VC's table, one statement per loopback with priorities counted down from 65535.
- Attachments keep the file's order, system loopbacks after the user ones: the order decides R31 ties.
- OCIDs are ``ocid1.<resource>.emu.<drg>.<name>``.

The builder never fails on dangling references (the validator reports them); it simply keeps names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from controlplane.config.rpc import RemotePeeringAttachment
from controlplane.config.schema import (
    AttachmentType,
    DrgConfig,
    IpsecTunnelAttachment,
    Match,
    VcnAttachment,
    VirtualCircuitAttachment,
)
from controlplane.prefix import parse_prefix

AUTOGEN_RT_VCN = "autogen-rt-vcn"
AUTOGEN_RT_OTHER = "autogen-rt-other"
AUTOGEN_RD_ALL = "autogen-rd-all"
AUTOGEN_RD_VCN = "autogen-rd-vcn"
AUTOGEN_RD_EXPORT = "autogen-rd-export"
DEFAULT_TABLE = {"VCN": AUTOGEN_RT_VCN, "VIRTUAL_CIRCUIT": AUTOGEN_RT_OTHER, "IPSEC_TUNNEL": AUTOGEN_RT_OTHER,
                 "REMOTE_PEERING_CONNECTION": AUTOGEN_RT_OTHER}  # R96
SYSTEM_PRIORITY_TOP = 65535  # R45: system statements count down from here
AUTOGEN_PRIORITY = 1  # R9: priority of the auto-generated statements (UNCONFIRMED; a config dump shows 1)

Origin = Literal["file", "default", "system"]


def ocid(resource: str, drg: str, name: str) -> str:
    return f"ocid1.{resource}.emu.{drg}.{name}"


def loopback_name(tunnel: str) -> str:
    return f"{tunnel}-lb"


def loopback_table_name(vc: str) -> str:
    return f"{vc}-lb-rt"


def loopback_distribution_name(vc: str) -> str:
    return f"{vc}-lb-rd"


@dataclass(frozen=True)
class EffStatement:
    priority: int
    match: Match
    system: bool = False
    file_index: int | None = None  # position in the file's ``statements`` list

    def matches(self, attachment: EffAttachment) -> bool:
        """R19/R21: MATCH_ALL, DRG_ATTACHMENT_TYPE (never LOOPBACK) or DRG_ATTACHMENT_ID."""
        if self.match.kind == "all":
            return True
        if self.match.kind == "attachment_type":
            return attachment.type == self.match.value
        return attachment.name == self.match.value


@dataclass(frozen=True)
class EffDistribution:
    name: str
    id: str
    display_name: str
    type: Literal["IMPORT", "EXPORT"]
    statements: tuple[EffStatement, ...]
    origin: Origin


@dataclass(frozen=True)
class EffStaticRoute:
    afi: int
    key: int
    destination: str
    next_hop: str
    file_index: int


@dataclass(frozen=True)
class EffRouteTable:
    name: str
    id: str
    display_name: str
    ecmp: bool
    import_distribution: str | None
    static_routes: tuple[EffStaticRoute, ...]
    origin: Origin


@dataclass(frozen=True)
class EffBgp:
    """One BGP session of an attachment. A VC has one per peering family (R53): ``bgp`` (named after
    the attachment) and, dual-stack, ``bgp.ipv6`` (named ``<attachment>.ipv6``); each carries the routes
    of its own family. A tunnel's session carries both families."""

    session: str  # the session's name: the attachment's, or <attachment>.ipv6
    families: tuple[int, ...]  # the AFIs it carries (1 IPv4, 2 IPv6)
    oracle_ip: str  # address only: the NEXT_HOP of advertisements (R36)
    oracle_interface: str
    customer_ip: str  # address only: the neighbor
    customer_interface: str
    customer_asn: int
    peer: str
    peer_port: int
    connect: str
    md5_key: str | None
    max_prefixes: tuple[int, int]  # (IPv4, IPv6), R58/R64
    hold_time: int


@dataclass(frozen=True)
class EffAttachment:
    name: str
    id: str
    display_name: str
    type: AttachmentType
    index: int
    route_table: str
    export: bool  # True: the default export distribution; False: none (R10)
    system: bool = False
    offers: tuple[tuple[int, int], ...] = ()  # (afi, key) offered from the config (R22, R65)
    vcn: str | None = None
    vcn_route_type: str | None = None
    transport_only: bool = False
    bgp: EffBgp | None = None
    bgp6: EffBgp | None = None  # a dual-stack VC's IPv6 session (R53)
    transport_attachment: str | None = None
    oracle_tunnel_ip: str | None = None
    cpe_ip: str | None = None
    routing: str | None = None
    loopback: str | None = None  # a tunnel's loopback
    tunnel: str | None = None  # a loopback's tunnel
    rpc_peer: tuple[str, str] | None = None  # an RPC's (peer DRG, peer attachment); None when external (R109)
    peered: bool = True  # an RPC offers and exports only while PEERED (R110)
    rpc_offers: tuple[RpcOffer, ...] = ()  # an external RPC's offered_routes (R109)
    rpc_remote: tuple[str, int, str] | None = None  # (address, port, connect): the peer DRG's daemon (R109)

    @property
    def speaks_bgp(self) -> bool:
        """VCs and BGP tunnels have a BGP session (R38: STATIC tunnels have none)."""
        return self.type == AttachmentType.VIRTUAL_CIRCUIT or (
            self.type == AttachmentType.IPSEC_TUNNEL and self.routing == "BGP")

    @property
    def sessions(self) -> tuple[EffBgp, ...]:
        """The BGP sessions of this attachment (none, one, or a VC's IPv4 and IPv6 sessions)."""
        return tuple(b for b in (self.bgp, self.bgp6) if b is not None)

    @property
    def advertises(self) -> bool:
        """R23/R33/R10: a BGP attachment with the default export distribution advertises its table."""
        return self.speaks_bgp and self.export


@dataclass(frozen=True)
class RpcOffer:
    """A route an RPC offers (R97-R99): its prefix key, the provenance of its origin (C1), the AS path it
    carries (unchanged, R98), its network distance (R99) and the DRGs it crossed, origin first (R103)."""

    afi: int
    key: int
    provenance: str
    as_path: tuple[int | tuple[int, ...], ...]
    distance: int
    drg_path: tuple[str, ...] = ()


def ipv6_session_name(attachment: str) -> str:
    return f"{attachment}.ipv6"


def _bgp(block: Any, session: str, customer_asn: int, families: tuple[int, ...] | None = None) -> EffBgp:
    afi = 2 if ":" in block.oracle_ip else 1
    return EffBgp(session=session, families=families or (afi,), oracle_ip=block.oracle_ip.split("/")[0],
                  oracle_interface=block.oracle_ip, customer_ip=block.customer_ip.split("/")[0],
                  customer_interface=block.customer_ip, customer_asn=customer_asn, peer=block.peer,
                  peer_port=block.peer_port, connect=block.connect, md5_key=getattr(block, "md5_key", None),
                  max_prefixes=(block.max_prefixes.ipv4, block.max_prefixes.ipv6), hold_time=block.hold_time)


@dataclass(frozen=True)
class EffectiveConfig:
    source: DrgConfig
    drg_name: str
    asn: int
    vpn_private_asn: int
    router_id: str
    attachments: tuple[EffAttachment, ...]
    route_tables: tuple[EffRouteTable, ...]
    distributions: tuple[EffDistribution, ...]
    _att: dict[str, EffAttachment] = field(init=False, repr=False, compare=False)
    _rt: dict[str, EffRouteTable] = field(init=False, repr=False, compare=False)
    _rd: dict[str, EffDistribution] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_att", {a.name: a for a in self.attachments})
        object.__setattr__(self, "_rt", {t.name: t for t in self.route_tables})
        object.__setattr__(self, "_rd", {d.name: d for d in self.distributions})

    def attachment(self, name: str) -> EffAttachment:
        return self._att[name]

    def find_attachment(self, name: str) -> EffAttachment | None:
        return self._att.get(name)

    def table(self, name: str) -> EffRouteTable:
        return self._rt[name]

    def find_table(self, name: str | None) -> EffRouteTable | None:
        return self._rt.get(name) if name is not None else None

    def distribution(self, name: str) -> EffDistribution:
        return self._rd[name]

    def find_distribution(self, name: str | None) -> EffDistribution | None:
        return self._rd.get(name) if name is not None else None

    def attachments_using(self, table: str) -> list[EffAttachment]:
        return [a for a in self.attachments if a.route_table == table]

    def imported_attachments(self, table: str) -> list[EffAttachment]:
        """R21 + R50: attachments whose routes the table imports. A loopback's headend enters only the
        table of the VC its tunnel rides on, and only through a system statement (R45): no user
        statement (MATCH_ALL, type or id) imports it anywhere else (section 13)."""
        rt = self._rt[table]
        dist = self.find_distribution(rt.import_distribution)
        if dist is None or dist.type != "IMPORT":
            return []
        result = []
        for a in self.attachments:
            if a.type != AttachmentType.LOOPBACK:
                if any(s.matches(a) for s in dist.statements):
                    result.append(a)
                continue
            vc = self._att.get(str(a.transport_attachment))
            if vc is not None and vc.route_table == table and any(s.system and s.matches(a)
                                                                  for s in dist.statements):
                result.append(a)
        return result

    def bgp_sessions(self) -> list[tuple[EffAttachment, EffBgp]]:
        """Every BGP session: one per VC peering family (R53) and one per BGP tunnel (R38)."""
        return [(a, session) for a in self.attachments if a.speaks_bgp for session in a.sessions]

    def tunnels_over(self, vc: str) -> list[EffAttachment]:
        return [a for a in self.attachments if a.type == AttachmentType.IPSEC_TUNNEL and a.transport_attachment == vc]


def _user_attachment(cfg: DrgConfig, att: Any, index: int, vcns: dict[str, Any]) -> EffAttachment:
    drg = cfg.drg.name
    common: dict[str, Any] = {"name": att.name, "id": ocid("drgattachment", drg, att.name),
                              "display_name": att.display_name or att.name, "type": AttachmentType(att.type),
                              "index": index,
                              "route_table": att.route_table or DEFAULT_TABLE[att.type]}
    if isinstance(att, VcnAttachment):
        vcn = vcns.get(att.vcn)
        cidrs = [] if vcn is None else (vcn.subnet_cidrs if att.vcn_route_type == "SUBNET_CIDRS" else vcn.cidrs)
        ingress = vcn.route_table(att.ingress_route_table) if vcn and att.ingress_route_table else None
        cidrs = cidrs + [rule.destination for rule in ingress.rules] if ingress else cidrs  # R78, whatever R22 says
        offers = tuple(dict.fromkeys(parse_prefix(c) for c in cidrs))  # R22, R79; R81: each CIDR once
        return EffAttachment(**common, export=False, offers=offers, vcn=att.vcn,
                             vcn_route_type=att.vcn_route_type)
    if isinstance(att, VirtualCircuitAttachment):
        six = att.bgp.ipv6
        return EffAttachment(**common, export=att.export_distribution == "default",
                             transport_only=att.transport_only, bgp=_bgp(att.bgp, att.name, att.bgp.customer_asn),
                             bgp6=_bgp(six, ipv6_session_name(att.name), att.bgp.customer_asn) if six else None)
    if isinstance(att, RemotePeeringAttachment):
        peer = None if att.peer == "external" else (att.peer.drg, att.peer.attachment)
        rpc_offers = tuple(RpcOffer(*parse_prefix(r.prefix), r.provenance,
                                    tuple(x if isinstance(x, int) else tuple(x) for x in r.as_path),
                                    r.network_distance) for r in att.offered_routes)
        return EffAttachment(**common, export=att.export_distribution == "default", rpc_peer=peer,
                             peered=att.peered, rpc_offers=rpc_offers,
                             rpc_remote=_remote(att))
    assert isinstance(att, IpsecTunnelAttachment)
    over_fc = att.transport_attachment is not None
    offers = tuple(dict.fromkeys(parse_prefix(c) for c in att.static_routes if att.routing == "STATIC"))
    return EffAttachment(**common, export=att.export_distribution == "default", offers=offers,
                         bgp=_bgp(att.bgp, att.name, att.bgp.customer_asn, (1, 2)) if att.bgp is not None else None,
                         transport_attachment=att.transport_attachment, oracle_tunnel_ip=att.oracle_tunnel_ip,
                         cpe_ip=att.cpe_ip, routing=att.routing,
                         loopback=loopback_name(att.name) if over_fc else None)


def _remote(att: RemotePeeringAttachment) -> tuple[str, int, str] | None:
    """The BGP socket of the daemon running an RPC's peer DRG, when another daemon runs it (R109)."""
    remote = None if att.peer == "external" else att.peer.remote
    return None if remote is None else (str(remote.address), remote.port, remote.connect)


_Dist = tuple[str, str, Literal["IMPORT", "EXPORT"], Origin]  # name, display name, type, origin


def build_effective(cfg: DrgConfig) -> EffectiveConfig:
    """The effective configuration of a parsed file (defaults, system objects, ids, order)."""
    drg = cfg.drg.name
    vcns = {v.name: v for v in cfg.vcns}
    user_atts = [_user_attachment(cfg, att, i, vcns) for i, att in enumerate(cfg.attachments)]
    loopbacks, carriers = _loopbacks(user_atts, drg)
    statements, dists = _distributions(cfg, drg)
    tables = _tables(cfg, drg)
    for vc in carriers:  # the loopback tables (R46)
        lb_rt, lb_rd = loopback_table_name(vc), loopback_distribution_name(vc)
        tables.append(EffRouteTable(lb_rt, ocid("drgroutetable", drg, lb_rt), lb_rt, False, lb_rd, (),
                                    "system"))
        statements[lb_rd] = [EffStatement(SYSTEM_PRIORITY_TOP, Match("attachment", vc), True)]
        dists.append((lb_rd, lb_rd, "IMPORT", "system"))
    _system_statements(loopbacks, {a.name: a.route_table for a in user_atts}, tables, statements)
    distributions = tuple(EffDistribution(name, ocid("drgroutedistribution", drg, name), display, kind,
                                          tuple(statements[name]), origin)
                          for name, display, kind, origin in dists)
    return EffectiveConfig(source=cfg, drg_name=drg, asn=cfg.drg.asn, vpn_private_asn=cfg.drg.vpn_private_asn,
                           router_id=cfg.router_id,
                           attachments=tuple(user_atts + loopbacks), route_tables=tuple(tables),
                           distributions=distributions)


def _loopbacks(user_atts: list[EffAttachment], drg: str) -> tuple[list[EffAttachment], list[str]]:
    """System loopbacks (R6): one per IPSec-over-FC tunnel, after the user attachments (R31 revised);
    and the VCs carrying at least one tunnel, in file order."""
    order = [a.name for a in user_atts]
    vc_names = {a.name for a in user_atts if a.type == AttachmentType.VIRTUAL_CIRCUIT}
    loopbacks: list[EffAttachment] = []
    carriers: list[str] = []
    for tun in user_atts:
        if tun.type != AttachmentType.IPSEC_TUNNEL or tun.transport_attachment not in vc_names \
                or tun.loopback is None:
            continue
        vc = str(tun.transport_attachment)
        if vc not in carriers:
            carriers.append(vc)
        host_length = 32 if ":" not in str(tun.oracle_tunnel_ip) else 128
        offers = (parse_prefix(f"{tun.oracle_tunnel_ip}/{host_length}"),)
        loopbacks.append(EffAttachment(
            name=tun.loopback, id=ocid("drgattachment", drg, tun.loopback), display_name=tun.loopback,
            type=AttachmentType.LOOPBACK, index=len(user_atts) + len(loopbacks), route_table=loopback_table_name(vc),
            export=False, system=True, offers=offers, oracle_tunnel_ip=tun.oracle_tunnel_ip, tunnel=tun.name,
            transport_attachment=vc))
    carriers.sort(key=order.index)
    return loopbacks, carriers


def _distributions(cfg: DrgConfig, drg: str) -> tuple[dict[str, list[EffStatement]], list[_Dist]]:
    """The file's distributions, then OCI's defaults not overridden (R9, R10)."""
    statements: dict[str, list[EffStatement]] = {}
    dists: list[_Dist] = []
    for d in cfg.distributions:
        if d.name in statements:
            continue  # duplicate names are reported by the validator
        statements[d.name] = [EffStatement(s.priority, s.match, False, i) for i, s in enumerate(d.statements)]
        dists.append((d.name, d.display_name or _display(d.name, drg), d.type, "file"))
    for name, match, kind in ((AUTOGEN_RD_ALL, Match("all"), "IMPORT"),
                              (AUTOGEN_RD_VCN, Match("attachment_type", "VCN"), "IMPORT"),
                              (AUTOGEN_RD_EXPORT, Match("all"), "EXPORT")):
        if name not in statements:
            statements[name] = [EffStatement(AUTOGEN_PRIORITY, match, False, 0)]
            dists.append((name, _display(name, drg), "EXPORT" if kind == "EXPORT" else "IMPORT", "default"))
    return statements, dists


def _tables(cfg: DrgConfig, drg: str) -> list[EffRouteTable]:
    """The file's tables, then the defaults not overridden (R8)."""
    tables: list[EffRouteTable] = []
    for t in cfg.route_tables:
        if any(x.name == t.name for x in tables):
            continue
        statics = tuple(EffStaticRoute(*parse_prefix(s.destination), s.destination, s.next_hop, i)
                        for i, s in enumerate(t.static_routes))
        tables.append(EffRouteTable(t.name, ocid("drgroutetable", drg, t.name),
                                    t.display_name or _display(t.name, drg), t.ecmp,
                                    t.import_distribution, statics, "file"))
    for name, dist in ((AUTOGEN_RT_VCN, AUTOGEN_RD_ALL), (AUTOGEN_RT_OTHER, AUTOGEN_RD_VCN)):
        if not any(x.name == name for x in tables):
            tables.append(EffRouteTable(name, ocid("drgroutetable", drg, name), _display(name, drg), False,
                                        dist, (), "default"))
    return tables


def _system_statements(loopbacks: list[EffAttachment], table_of: dict[str, str], tables: list[EffRouteTable],
                       statements: dict[str, list[EffStatement]]) -> None:
    """R45: one system statement per loopback in the import distribution of its carrier VC's table."""
    by_name = {t.name: t for t in tables}
    for lb in loopbacks:
        vc_table = by_name.get(table_of[str(lb.transport_attachment)])
        target = vc_table.import_distribution if vc_table is not None else None
        if target is None or target not in statements:
            continue  # reported by the validator (R45)
        taken = sum(1 for s in statements[target] if s.system)
        statements[target].append(EffStatement(SYSTEM_PRIORITY_TOP - taken, Match("attachment", lb.name),
                                               True))


def _display(name: str, drg: str) -> str:
    """OCI's display names of the default objects (R8-R10); other objects show their name."""
    if name == AUTOGEN_RD_EXPORT:
        return f"Default Export Route Distribution for DRG: {drg}"  # R10, UNCONFIRMED
    return _DISPLAY.get(name, name)


_DISPLAY = {
    AUTOGEN_RT_VCN: "Autogenerated Drg Route Table for VCN attachments",
    AUTOGEN_RT_OTHER: "Autogenerated Drg Route Table for RPC, VC, and IPSec attachments",
    AUTOGEN_RD_ALL: "Autogenerated Import Route Distribution for ALL routes",
    AUTOGEN_RD_VCN: "Autogenerated Import Route Distribution for VCN Routes",
}
