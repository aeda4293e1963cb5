"""The effective configuration as JSON: what ``drg validate --json`` prints and the daemon logs.

Every object with its OCI id and display name, OCI's defaults and the system objects included
(``autogen-*`` tables and distributions, loopbacks, their tables and statements), MD5 keys masked.
Pure rendering of :class:`~controlplane.config.effective.EffectiveConfig`; nothing is computed here.
"""

from __future__ import annotations

from typing import Any

from controlplane.config.effective import (
    AUTOGEN_RD_EXPORT,
    AUTOGEN_RT_OTHER,
    AUTOGEN_RT_VCN,
    EffAttachment,
    EffDistribution,
    EffectiveConfig,
    EffRouteTable,
    build_effective,
    ocid,
)
from controlplane.config.schema import AttachmentType, DrgConfig
from controlplane.config.vcn import Vcn


def effective_json(eff: EffectiveConfig) -> dict[str, Any]:
    """The effective configuration printed by ``drg validate --json`` and logged by the daemon."""
    src = eff.source
    drg = eff.drg_name
    return {
        "drg": {"name": drg, "id": ocid("drg", drg, drg), "asn": eff.asn,
                "vpnPrivateAsn": eff.vpn_private_asn, "routerId": eff.router_id,
                "defaultDrgRouteTables": {"vcn": AUTOGEN_RT_VCN, "ipsecTunnel": AUTOGEN_RT_OTHER,
                                          "virtualCircuit": AUTOGEN_RT_OTHER,
                                          "remotePeeringConnection": AUTOGEN_RT_OTHER},
                "defaultExportDrgRouteDistribution": AUTOGEN_RD_EXPORT},
        "speaker": {"listen": src.speaker.listen},
        "api": {"listen": src.api.listen},
        "events": {"mqtt": src.events.mqtt, "embeddedListen": src.events.embedded_listen},
        "vcns": [vcn_json(v) for v in src.vcns],
        "attachments": [_attachment_json(eff, a) for a in eff.attachments],
        "routeTables": [_table_json(eff, t) for t in eff.route_tables],
        "distributions": [_distribution_json(eff, d) for d in eff.distributions],
        "onprem": [o.model_dump(mode="json") for o in src.onprem],
    }


def _rpc_status(eff: EffectiveConfig, name: str) -> str:
    source = next(x for x in eff.source.attachments if x.name == name)
    return str(getattr(source, "peering_status", "PEERED"))


def _attachment_json(eff: EffectiveConfig, a: EffAttachment) -> dict[str, Any]:
    details: dict[str, Any] = {"type": a.type}
    if a.type == AttachmentType.VCN:
        details.update(vcn=a.vcn, vcnRouteType=a.vcn_route_type)
    elif a.type == AttachmentType.VIRTUAL_CIRCUIT:
        details.update(transportOnlyMode=a.transport_only)
    elif a.type == AttachmentType.REMOTE_PEERING_CONNECTION:
        details.update(peer={"drg": a.rpc_peer[0], "attachment": a.rpc_peer[1]} if a.rpc_peer else "external",
                       peeringStatus="PEERED" if a.peered else _rpc_status(eff, a.name))
    elif a.type == AttachmentType.IPSEC_TUNNEL:
        details.update(routing=a.routing, transportAttachment=a.transport_attachment,
                       transportAttachmentId=ocid("drgattachment", eff.drg_name, a.transport_attachment)
                       if a.transport_attachment else None, oracleTunnelIp=a.oracle_tunnel_ip,
                       cpeIp=a.cpe_ip, loopback=a.loopback)
    else:
        details.update(ids=[ocid("drgattachment", eff.drg_name, str(a.tunnel))], tunnel=a.tunnel,
                       oracleTunnelIp=a.oracle_tunnel_ip)
    bgp = None
    for b in a.sessions:
        doc = {"oracleIp": b.oracle_interface, "customerIp": b.customer_interface,
               "customerAsn": b.customer_asn, "peer": b.peer, "peerPort": b.peer_port,
               "connect": b.connect, "md5Key": "********" if b.md5_key else None,
               "holdTime": b.hold_time,
               "maxPrefixes": {"ipv4": b.max_prefixes[0], "ipv6": b.max_prefixes[1]}}
        if bgp is None:
            bgp = doc
        else:
            bgp["ipv6"] = {"session": b.session, **doc}
    return {"name": a.name, "id": a.id, "displayName": a.display_name, "type": a.type, "system": a.system,
            "routeTable": a.route_table,
            "drgRouteTableId": ocid("drgroutetable", eff.drg_name, a.route_table),
            "exportDistribution": AUTOGEN_RD_EXPORT if a.export else None,
            "networkDetails": details, "bgp": bgp}


def _table_json(eff: EffectiveConfig, t: EffRouteTable) -> dict[str, Any]:
    return {"name": t.name, "id": t.id, "displayName": t.display_name, "system": t.origin == "system",
            "isEcmpEnabled": t.ecmp, "importDistribution": t.import_distribution,
            "importDrgRouteDistributionId":
                ocid("drgroutedistribution", eff.drg_name, t.import_distribution)
                if t.import_distribution else None,
            "attachments": [a.name for a in eff.attachments_using(t.name)],
            "staticRoutes": [{"destination": s.destination, "destinationType": "CIDR_BLOCK",
                              "nextHop": s.next_hop,
                              "nextHopDrgAttachmentId": ocid("drgattachment", eff.drg_name, s.next_hop)}
                             for s in t.static_routes]}


def _distribution_json(eff: EffectiveConfig, d: EffDistribution) -> dict[str, Any]:
    statements = []
    for s in sorted(d.statements, key=lambda s: s.priority):
        criteria = s.match.to_json()
        if "drgAttachment" in criteria:
            name = criteria.pop("drgAttachment")
            criteria["drgAttachmentId"] = ocid("drgattachment", eff.drg_name, name)
            criteria["attachment"] = name
        statements.append({"action": "ACCEPT", "priority": s.priority, "system": s.system,
                           "matchCriteria": [criteria]})
    return {"name": d.name, "id": d.id, "displayName": d.display_name, "distributionType": d.type,
            "system": d.origin == "system", "statements": statements}


def vcn_json(vcn: Vcn) -> dict[str, Any]:
    """A VCN as ``drg validate --json`` prints it; appliances and route tables only when it has some."""
    doc: dict[str, Any] = {"name": vcn.name, "cidrs": list(vcn.cidrs),
                           "subnets": [s if isinstance(s, str) else s.model_dump() for s in vcn.subnets]}
    if vcn.appliances:
        doc["appliances"] = [a.model_dump(exclude_none=True) for a in vcn.appliances]
    if vcn.route_tables:
        doc["routeTables"] = [{"name": t.name, "rules": [{"destination": r.destination, "target": r.target.to_json()}
                                                         for r in t.rules]} for t in vcn.route_tables]
    return doc


def config_json(config: DrgConfig) -> dict[str, Any]:
    """The effective configuration of a parsed file as JSON."""
    return effective_json(build_effective(config))
