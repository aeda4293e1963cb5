"""What an attachment offers for import into DRG route tables: ``drg offered ATTACHMENT --json``.

Every table is built from offers (R21, R22): a VCN attachment offers its subnet or VCN CIDRs plus
the destinations of its VCN ingress route table (R78, R79, R81); a VC or BGP IPSec attachment the
routes its peer sent (an IPSec AS path carries the VPN private ASN, R28); a static IPSec tunnel its
static routes; a loopback its tunnel headend (R45). This module renders the offers the engine holds,
each with where it comes from, and the tables that import the attachment, so "why is this route
missing from that table?" has an answer: not offered, or not imported. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from controlplane.config.effective import EffAttachment, EffectiveConfig
from controlplane.config.schema import AttachmentType
from controlplane.engine.rules import AsPath, as_path_json
from controlplane.prefix import format_prefix, parse_prefix


def _vcn_origins(att: EffAttachment, config: EffectiveConfig) -> dict[tuple[int, int], str]:
    """(afi, key) -> SUBNET_CIDRS, VCN_CIDRS or INGRESS_ROUTE_TABLE (the first that offers it, R81)."""
    vcn = next((v for v in config.source.vcns if v.name == att.vcn), None)
    if vcn is None:
        return {}
    origins: dict[tuple[int, int], str] = {}
    base = vcn.subnet_cidrs if att.vcn_route_type == "SUBNET_CIDRS" else vcn.cidrs
    for cidr in base:
        origins.setdefault(parse_prefix(cidr), str(att.vcn_route_type))
    source = next((a for a in config.source.attachments if a.name == att.name), None)
    table_name = getattr(source, "ingress_route_table", None)
    table = vcn.route_table(table_name) if table_name else None
    for rule in table.rules if table else ():
        origins.setdefault(parse_prefix(rule.destination), "INGRESS_ROUTE_TABLE")
    return origins


def _origin(att: EffAttachment) -> str:
    if att.type == AttachmentType.LOOPBACK:
        return "TUNNEL_HEADEND"
    if att.type == AttachmentType.IPSEC_TUNNEL and att.routing == "STATIC":
        return "STATIC_ROUTES"
    return "BGP"


def offered_json(att: EffAttachment, config: EffectiveConfig, offers: list[tuple[int, int, AsPath]],
                 imported_by: list[str]) -> dict[str, Any]:
    """The document of ``drg offered``: the attachment, the tables importing it, its offers in order."""
    origins = _vcn_origins(att, config) if att.type == AttachmentType.VCN else {}
    default = _origin(att)
    routes = [{"prefix": format_prefix(afi, key), "provenance": att.type.value, "asPath": as_path_json(path),
               "origin": origins.get((afi, key), default)} for afi, key, path in offers]
    return {"attachment": att.name, "type": att.type.value, "routeTable": att.route_table,
            "importedBy": imported_by, "routes": routes}
