"""The emulated DRG as OCI's Core API (20160918) shows it: SDK-shaped JSON and stable OCIDs.

How it works: a :class:`View` is one snapshot of one DRG of the daemon - its part of the file
(:class:`DrgConfig`), the effective configuration (OCI's defaults and the system objects,
``config/effective.py``), the route engine and the BGP speaker (``oci/scope.py`` takes one per DRG).
Each ``*_json`` function turns one object of that snapshot into the JSON of the SDK model of the
same name (camelCase keys, OCI's enum values), so ``oci/reads.py`` only routes, filters and pages.
Nothing here changes state.

Ids (product.md): ``ocid1.<resource>.emu.<drg>.<name>`` for the DRG, attachments, route tables and
distributions; a VC is ``ocid1.virtualcircuit.emu.<drg>.<vc attachment>``, a tunnel
``ocid1.ipsectunnel.emu.<drg>.<tunnel attachment>``, an RPC
``ocid1.remotepeeringconnection.emu.<drg>.<rpc attachment>`` (``oci/rpc.py``). The configuration has no IPSec connection
object: the emulator groups the tunnels that end on one CPE address into one connection
``ocid1.ipsecconnection.emu.<drg>.cpe-<address with dashes>`` (OCI: one connection per CPE).

Rule and statement ids are derived, so they survive restarts and re-reads of the file:

- a static rule: ``ocid1.drgrouterule.emu.<drg>.<table>.s<hash(table, destination)>``;
- a dynamic rule: ``ocid1.drgrouterule.emu.<drg>.<table>.d<hash(table, destination, next hop)>``;
- a statement: ``ocid1.drgroutedistributionstatement.emu.<drg>.<distribution>.<hash(distribution, priority)>``.

An update through the API that changes a static rule's destination or a statement's priority keeps
the object's id (Terraform reads it back by id): the old id is then written into the file as the
optional ``id`` field of that static route or statement, which takes precedence over derivation.
A derived id that collides with such an explicit one is salted, deterministically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import State
from controlplane.bgp.session import Peer
from controlplane.config.effective import (
    AUTOGEN_RD_EXPORT,
    AUTOGEN_RT_OTHER,
    AUTOGEN_RT_VCN,
    EffAttachment,
    EffDistribution,
    EffectiveConfig,
    EffRouteTable,
    ocid,
)
from controlplane.config.schema import AttachmentType, DrgConfig, Match
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from controlplane.prefix import format_prefix as format_key

# OCI's routeProvenance enum (SDK DrgRouteRule); anything else (the emulator's LOOPBACK) is also
# shown in ``attributes``, because the SDK and the CLI print values outside the enum as UNKNOWN_ENUM_VALUE.
OCI_PROVENANCE = ("STATIC", "VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL")
K = TypeVar("K")


class HasPeer(Protocol):
    """A BGP neighbor as the views read it (``transport.Neighbor`` provides it)."""

    @property
    def peer(self) -> Peer: ...


class Sessions(Protocol):
    """The live BGP sessions as the views read them (``transport.Speaker`` provides it)."""

    @property
    def neighbors(self) -> Mapping[str, HasPeer]: ...

    def now(self) -> float: ...


@dataclass(frozen=True)
class View:
    """One consistent snapshot of one DRG's state, as the API handlers see it. ``drgs`` holds every DRG
    of a multi-DRG daemon (empty for a single-DRG one), for what an object says of another DRG."""

    config: DrgConfig
    effective: EffectiveConfig
    engine: RouteEngine
    speaker: Sessions
    started_at: float
    drgs: tuple[DrgConfig, ...] = ()

    @property
    def drg(self) -> str:
        return self.effective.drg_name


# ---------------------------------------------------------------------------------------------- ids

def drg_id(drg: str) -> str:
    return ocid("drg", drg, drg)


def compartment_id(drg: str) -> str:
    """The one compartment of the emulated DRG; list calls accept any compartmentId."""
    return ocid("compartment", drg, drg)


def attachment_id(drg: str, name: str) -> str:
    return ocid("drgattachment", drg, name)


def table_id(drg: str, name: str) -> str:
    return ocid("drgroutetable", drg, name)


def distribution_id(drg: str, name: str) -> str:
    return ocid("drgroutedistribution", drg, name)


def vc_id(drg: str, attachment: str) -> str:
    return ocid("virtualcircuit", drg, attachment)


def tunnel_id(drg: str, attachment: str) -> str:
    return ocid("ipsectunnel", drg, attachment)


def rpc_id(drg: str, attachment: str) -> str:
    """A RemotePeeringConnection: the RPC attachment's name (R94: one RPC per attachment)."""
    return ocid("remotepeeringconnection", drg, attachment)


def cpe_key(address: str) -> str:
    return "cpe-" + address.replace(".", "-").replace(":", "-")


def connection_id(drg: str, cpe_address: str) -> str:
    return ocid("ipsecconnection", drg, cpe_key(cpe_address))


def vcn_table_id(drg: str, vcn: str, table: str) -> str:
    """A VCN route table (``oci/vcn_tables.py``): the VCN is part of the name."""
    return ocid("routetable", drg, f"{vcn}.{table}")


def name_from_id(resource: str, drg: str, value: str) -> str | None:
    """The name inside ``ocid1.<resource>.emu.<drg>.<name>``, or None for any other id."""
    prefix = f"ocid1.{resource}.emu.{drg}."
    if not value.startswith(prefix) or len(value) == len(prefix):
        return None
    return value[len(prefix):]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]


def derived_static_rule_id(drg: str, table: str, destination: str, salt: int = 0) -> str:
    extra = (str(salt),) if salt else ()
    return ocid("drgrouterule", drg, f"{table}.s{_digest('static', table, destination, *extra)}")


def dynamic_rule_id(drg: str, table: str, destination: str, next_hop: str) -> str:
    return ocid("drgrouterule", drg, f"{table}.d{_digest('dynamic', table, destination, next_hop)}")


def derived_statement_id(drg: str, distribution: str, priority: int, salt: int = 0) -> str:
    extra = (str(salt),) if salt else ()
    return ocid("drgroutedistributionstatement", drg,
                f"{distribution}.{_digest('statement', distribution, str(priority), *extra)}")


def _assign(explicit: Iterable[tuple[K, str | None]], derive: Callable[[K, int], str]) -> dict[K, str]:
    """Ids for objects keyed by ``key``: explicit ids first (a repeated one counts once), then derived
    ones, salted on collision."""
    items = list(explicit)
    ids: dict[K, str] = {}
    taken: set[str] = set()
    for key, value in items:
        if value and value not in taken:
            ids[key] = value
            taken.add(value)
    for key, _value in items:
        if key in ids:
            continue
        salt = 0
        candidate = derive(key, salt)
        while candidate in taken:
            salt += 1
            candidate = derive(key, salt)
        ids[key] = candidate
        taken.add(candidate)
    return ids


def static_rule_ids(view: View, table: str) -> dict[str, str]:
    """destination -> id of every static rule of ``table`` (destinations are unique per table, R14)."""
    entry = next((t for t in view.config.route_tables if t.name == table), None)
    routes = [(r.destination, r.id) for r in entry.static_routes] if entry is not None else []
    drg = view.drg
    return _assign(routes, lambda dest, salt: derived_static_rule_id(drg, table, dest, salt))


def statement_ids(view: View, distribution: str) -> dict[int, str]:
    """priority -> id of every statement of ``distribution`` (priorities are unique, R20)."""
    dist = view.effective.find_distribution(distribution)
    if dist is None:
        return {}
    entry = next((d for d in view.config.distributions if d.name == distribution), None)
    explicit: list[tuple[int, str | None]] = []
    for s in dist.statements:
        value = None
        if dist.origin == "file" and entry is not None and s.file_index is not None and not s.system:
            value = entry.statements[s.file_index].id
        explicit.append((s.priority, value))
    drg = view.drg
    return _assign(explicit, lambda priority, salt: derived_statement_id(drg, distribution, priority, salt))


def etag(doc: dict[str, Any]) -> str:
    """An entity tag of a single resource: a hash of its JSON."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def timestamp(seconds: float) -> str:
    """RFC 3339 with milliseconds, as OCI writes ``timeCreated``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _common(view: View, with_tags: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"compartmentId": compartment_id(view.drg), "timeCreated": timestamp(view.started_at)}
    if with_tags:
        doc.update(definedTags={}, freeformTags={})
    return doc


# ---------------------------------------------------------------------------------------------- DRG objects

def drg_json(view: View) -> dict[str, Any]:
    drg = view.drg
    return {"id": drg_id(drg), **_common(view), "displayName": drg, "lifecycleState": "AVAILABLE",
            "defaultDrgRouteTables": {"vcn": table_id(drg, AUTOGEN_RT_VCN),
                                      "ipsecTunnel": table_id(drg, AUTOGEN_RT_OTHER),
                                      "virtualCircuit": table_id(drg, AUTOGEN_RT_OTHER),
                                      "remotePeeringConnection": table_id(drg, AUTOGEN_RT_OTHER)},
            "defaultExportDrgRouteDistributionId": distribution_id(drg, AUTOGEN_RD_EXPORT)}


def network_details(view: View, a: EffAttachment) -> dict[str, Any]:
    """The polymorphic ``networkDetails`` of an attachment (semantics section 1.3)."""
    drg = view.drg
    if a.type == AttachmentType.VCN:
        return {"type": "VCN", "id": ocid("vcn", drg, str(a.vcn)), "routeTableId": ingress_table_id(view, a),
                "vcnRouteType": a.vcn_route_type}
    if a.type == AttachmentType.VIRTUAL_CIRCUIT:
        return {"type": "VIRTUAL_CIRCUIT", "id": vc_id(drg, a.name), "transportOnlyMode": a.transport_only}
    if a.type == AttachmentType.IPSEC_TUNNEL:
        return {"type": "IPSEC_TUNNEL", "id": tunnel_id(drg, a.name),
                "ipsecConnectionId": connection_id(drg, str(a.cpe_ip)),
                "transportAttachmentId": attachment_id(drg, a.transport_attachment)
                if a.transport_attachment else None}
    if a.type == AttachmentType.REMOTE_PEERING_CONNECTION:  # S18: type and id only (section 2.5)
        return {"type": "REMOTE_PEERING_CONNECTION", "id": rpc_id(drg, a.name)}
    return {"type": "LOOPBACK", "id": ocid("loopback", drg, a.name), "ids": [attachment_id(drg, str(a.tunnel))]}


def ingress_table_id(view: View, a: EffAttachment) -> str | None:
    """A VCN attachment's ingress route table (``networkDetails.routeTableId``, R73); None without one (R74)."""
    entry = next((x for x in view.config.attachments if x.name == a.name), None)
    table = getattr(entry, "ingress_route_table", None)
    return vcn_table_id(view.drg, str(a.vcn), table) if a.type == AttachmentType.VCN and table else None


def attachment_json(view: View, a: EffAttachment) -> dict[str, Any]:
    drg = view.drg
    exported = a.export and a.type in (AttachmentType.VIRTUAL_CIRCUIT, AttachmentType.IPSEC_TUNNEL,
                                       AttachmentType.REMOTE_PEERING_CONNECTION)  # R10, R97
    return {"id": a.id, **_common(view), "drgId": drg_id(drg), "displayName": a.display_name,
            "lifecycleState": "ATTACHED", "drgRouteTableId": table_id(drg, a.route_table),
            "networkDetails": network_details(view, a),
            "exportDrgRouteDistributionId": distribution_id(drg, AUTOGEN_RD_EXPORT) if exported else None,
            "isCrossTenancy": False, "routeTableId": ingress_table_id(view, a),  # deprecated twin of networkDetails
            "vcnId": ocid("vcn", drg, str(a.vcn)) if a.type == AttachmentType.VCN else None}


def table_json(view: View, t: EffRouteTable) -> dict[str, Any]:
    drg = view.drg
    return {"id": t.id, **_common(view), "drgId": drg_id(drg), "displayName": t.display_name,
            "lifecycleState": "AVAILABLE",
            "importDrgRouteDistributionId": distribution_id(drg, t.import_distribution)
            if t.import_distribution else None,
            "isEcmpEnabled": t.ecmp}


def distribution_json(view: View, d: EffDistribution) -> dict[str, Any]:
    return {"id": d.id, **_common(view), "drgId": drg_id(view.drg), "displayName": d.display_name,
            "lifecycleState": "AVAILABLE", "distributionType": d.type}


def match_criteria_json(view: View, match: Match) -> list[dict[str, Any]]:
    if match.kind == "all":
        return [{"matchType": "MATCH_ALL"}]
    if match.kind == "attachment_type":
        return [{"matchType": "DRG_ATTACHMENT_TYPE", "attachmentType": match.value}]
    return [{"matchType": "DRG_ATTACHMENT_ID", "drgAttachmentId": attachment_id(view.drg, str(match.value))}]


def statements_json(view: View, distribution: str) -> list[dict[str, Any]]:
    """The statements of a distribution by priority (system ones included, R45), with their ids."""
    dist = view.effective.distribution(distribution)
    ids = statement_ids(view, distribution)
    return [{"id": ids[s.priority], "action": "ACCEPT", "priority": s.priority,
             "matchCriteria": match_criteria_json(view, s.match)}
            for s in sorted(dist.statements, key=lambda s: s.priority)]


def _as_path_text(path: list[Any]) -> str:
    return " ".join("{" + ",".join(str(a) for a in hop) + "}" if isinstance(hop, list) else str(hop)
                    for hop in path)


def rule_json(view: View, table: str, rule: dict[str, Any], static_ids: dict[str, str]) -> dict[str, Any]:
    """One rule of ``drg routes --json`` as a DrgRouteRule. ``attributes`` (a map of strings, as
    Terraform declares it) carries what the model has no field for: next hop name, AS path, ECMP and,
    for a rule learned over an RPC, ``networkDistance`` (R99) and ``drgPath`` (R103, origin first,
    space-separated; empty from an external peer). Such a rule keeps its origin's ``routeProvenance``
    (R98; C1: OCI has no RPC provenance)."""
    static = rule["routeType"] == "STATIC"
    destination = rule["destination"]
    rid = static_ids.get(destination) if static else None
    if rid is None:
        rid = dynamic_rule_id(view.drg, table, destination, rule["nextHop"]) if not static else \
            derived_static_rule_id(view.drg, table, destination)
    attributes = {"nextHop": rule["nextHop"], "asPath": _as_path_text(rule["asPath"]),
                  "isEcmp": "true" if rule["isEcmp"] else "false"}
    if rule["routeProvenance"] not in OCI_PROVENANCE:
        attributes["routeProvenance"] = rule["routeProvenance"]
    if "networkDistance" in rule:  # emulator-only, never top-level fields the SDK does not know
        attributes.update(networkDistance=str(rule["networkDistance"]), drgPath=" ".join(rule["drgPath"]))
    return {"id": rid, "destination": destination, "destinationType": rule["destinationType"],
            "nextHopDrgAttachmentId": rule["nextHopDrgAttachmentId"], "routeType": rule["routeType"],
            "routeProvenance": rule["routeProvenance"], "isConflict": rule["isConflict"],
            "isBlackhole": rule["isBlackhole"], "attributes": attributes}


def rules_json(view: View, table: str) -> list[dict[str, Any]]:
    """Every rule of a table, in ``drg routes`` order (losers of conflicts included, R17)."""
    ids = static_rule_ids(view, table)
    return [rule_json(view, table, r, ids) for r in view.engine.route_table(table)["rules"]]


# ---------------------------------------------------------------------------------------------- VC and IPSec

def session_state(view: View, attachment: str) -> State | None:
    neighbor = view.speaker.neighbors.get(attachment)
    return neighbor.peer.state if neighbor is not None else None


def virtual_circuit_json(view: View, a: EffAttachment) -> dict[str, Any]:
    """A private VC (semantics 1.7); ``bgpSessionState`` is the live session's."""
    assert a.bgp is not None
    up = session_state(view, a.name) == State.ESTABLISHED
    ipv6 = ":" in a.bgp.customer_ip
    mapping: dict[str, Any] = {"crossConnectOrCrossConnectGroupId": None, "bgpMd5AuthKey": None, "vlan": None}
    if ipv6:
        mapping.update(customerBgpPeeringIpv6=a.bgp.customer_interface, oracleBgpPeeringIpv6=a.bgp.oracle_interface)
    else:
        mapping.update(customerBgpPeeringIp=a.bgp.customer_interface, oracleBgpPeeringIp=a.bgp.oracle_interface)
    return {"id": vc_id(view.drg, a.name), **_common(view), "displayName": a.display_name,
            "gatewayId": drg_id(view.drg), "type": "PRIVATE", "lifecycleState": "PROVISIONED",
            "serviceType": "COLOCATED", "bgpManagement": "CUSTOMER_MANAGED", "bgpAdminState": "ENABLED",
            "bgpSessionState": None if ipv6 else ("UP" if up else "DOWN"),
            "bgpIpv6SessionState": ("UP" if up else "DOWN") if ipv6 else None,
            "customerAsn": a.bgp.customer_asn, "oracleBgpAsn": view.effective.asn,
            "crossConnectMappings": [mapping], "isTransportMode": a.transport_only, "isBfdEnabled": False,
            "ipMtu": "MTU_1500", "routingPolicy": [], "trafficMode": "NORMAL", "publicPrefixes": []}


def tunnels(view: View) -> list[EffAttachment]:
    return [a for a in view.effective.attachments if a.type == AttachmentType.IPSEC_TUNNEL]


def connection_tunnels(view: View, connection: str) -> list[EffAttachment] | None:
    """The tunnels of an IPSec connection id, or None if there is no such connection."""
    found = [a for a in tunnels(view) if connection_id(view.drg, str(a.cpe_ip)) == connection]
    return found or None


def connection_json(view: View, members: list[EffAttachment]) -> dict[str, Any]:
    """The IPSecConnection grouping the tunnels to one CPE address (R65: shared static routes)."""
    drg = view.drg
    cpe = str(members[0].cpe_ip)
    statics: list[str] = []
    for a in members:
        entry = next((x for x in view.config.attachments if x.name == a.name), None)
        for route in getattr(entry, "static_routes", []):
            if route not in statics:
                statics.append(route)
    return {"id": connection_id(drg, cpe), **_common(view), "cpeId": ocid("cpe", drg, cpe_key(cpe)),
            "drgId": drg_id(drg), "displayName": cpe_key(cpe), "lifecycleState": "AVAILABLE",
            "staticRoutes": statics, "cpeLocalIdentifier": cpe, "cpeLocalIdentifierType": "IP_ADDRESS",
            "transportType": "FASTCONNECT" if any(a.transport_attachment for a in members) else "INTERNET"}


def tunnel_json(view: View, a: EffAttachment) -> dict[str, Any]:
    """An IPSecConnectionTunnel: ``status`` from the emulated tunnel (R47), BGP from the live session."""
    drg = view.drg
    up, _reason = view.engine.tunnel_state(a.name)
    session = None
    if a.bgp is not None:
        established = session_state(view, a.name) == State.ESTABLISHED
        v6 = ":" in a.bgp.customer_ip
        session = {"oracleInterfaceIp": None if v6 else a.bgp.oracle_interface,
                   "customerInterfaceIp": None if v6 else a.bgp.customer_interface,
                   "oracleInterfaceIpv6": a.bgp.oracle_interface if v6 else None,
                   "customerInterfaceIpv6": a.bgp.customer_interface if v6 else None,
                   "oracleBgpAsn": str(view.effective.asn), "customerBgpAsn": str(a.bgp.customer_asn),
                   "bgpState": None if v6 else ("UP" if established else "DOWN"),
                   "bgpIpv6State": ("UP" if established else "DOWN") if v6 else None}
    return {"id": tunnel_id(drg, a.name), **_common(view, with_tags=False), "displayName": a.display_name,
            "vpnIp": a.oracle_tunnel_ip, "cpeIp": a.cpe_ip, "status": "UP" if up else "DOWN",
            "lifecycleState": "AVAILABLE", "routing": a.routing, "ikeVersion": "V2", "bgpSessionInfo": session,
            "associatedVirtualCircuits": [vc_id(drg, a.transport_attachment)] if a.transport_attachment else []}


def _flat_asns(attributes: PathAttributes) -> list[int]:
    """``asPath`` is a list of integers in the SDK: AS_SET members are listed in place."""
    out: list[int] = []
    for _kind, asns in attributes.as_path:
        out.extend(asns)
    return out


def _best_keys(view: View, a: EffAttachment) -> set[tuple[int, int]]:
    """(afi, key) of the routes of ``a`` that are active in at least one table importing it."""
    return view.engine.active_from(a.index)


def tunnel_routes_json(view: View, a: EffAttachment, advertiser: str | None) -> list[dict[str, Any]]:
    """TunnelRouteSummary list from the live Adj-RIB-In (CUSTOMER) and Adj-RIB-Out (ORACLE). ``age`` is
    the session's uptime (the emulator keeps no per-route time); ``isBestPath`` says the route is
    active in a DRG table (CUSTOMER) - every advertised route is (ORACLE)."""
    neighbor = view.speaker.neighbors.get(a.name)
    if neighbor is None:  # a STATIC tunnel has no BGP routes
        return []
    peer = neighbor.peer
    age = int(view.speaker.now() - peer.established_at) if peer.established_at is not None else None
    routes: list[dict[str, Any]] = []
    if advertiser in (None, "CUSTOMER"):
        best = _best_keys(view, a)
        for afi in (AFI_IPV4, AFI_IPV6):
            for key in sorted(peer.rib_in.routes[afi]):
                routes.append({"prefix": format_key(afi, key), "age": age, "isBestPath": (afi, key) in best,
                               "asPath": _flat_asns(peer.rib_in.routes[afi][key]), "advertiser": "CUSTOMER"})
    if advertiser in (None, "ORACLE") and peer.state == State.ESTABLISHED:  # nothing is sent before that
        for afi in (AFI_IPV4, AFI_IPV6):
            for key in sorted(peer.rib_out.routes[afi]):
                routes.append({"prefix": format_key(afi, key), "age": age, "isBestPath": True,
                               "asPath": _flat_asns(peer.rib_out.routes[afi][key]), "advertiser": "ORACLE"})
    return routes
