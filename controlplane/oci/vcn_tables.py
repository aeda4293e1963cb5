"""VCN route tables (``RouteTable``/``RouteRule``, oci-drg-transit.md 2.1-2.3) as OCI's Core API shows them.

How it works: every VCN of the file has its route tables (``config/vcn.py``) plus an implicit
``default`` table, listed first whether the file writes it or not (S24: every VCN has a default
table). Ids are derived like the DRG's objects (``oci/views.py``), with the VCN in the name:

- a route table: ``ocid1.routetable.emu.<drg>.<vcn>.<table>``;
- a rule's ``networkEntityId``: the DRG's id for ``drg``; ``ocid1.privateip.emu.<drg>.<vcn>.<appliance>``
  for a private IP; ``ocid1.internetgateway|natgateway.emu.<drg>.<vcn>`` and
  ``ocid1.localpeeringgateway|servicegateway.emu.<drg>.<vcn>.<name>`` for the gateways.

Rules are the file's static rules (``routeType`` STATIC; OCI does not list the implicit LOCAL routes,
R70). :func:`update_table` is UpdateRouteTable: ``routeRules`` replaces every rule of the table (OCI's
semantics) and ``displayName`` renames it; each ``networkEntityId`` is resolved back to a target of
the table's own VCN (R71: the DRG attached to it; R72: one of its appliances). The result is a new
:class:`~controlplane.config.schema.DrgConfig`; ``oci/api.py`` validates it (R73, the targets of an
ingress table, is checked there, in ``config/transit.py``), writes it back and applies it like every
other change. Nothing here touches the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.config.effective import ocid
from controlplane.config.schema import DrgConfig, VcnAttachment
from controlplane.config.vcn import DEFAULT_VCN_TABLE, RuleTarget, Vcn, VcnRouteRule, VcnRouteTable
from controlplane.oci import views as m
from controlplane.oci.requests import build, invalid, missing, not_found

_GATEWAYS = {"internet_gateway": "internetgateway", "nat_gateway": "natgateway",
             "lpg": "localpeeringgateway", "service_gateway": "servicegateway"}


@dataclass(frozen=True)
class VcnTable:
    """One VCN route table of the snapshot: its VCN and the table (the implicit default one included)."""

    vcn: Vcn
    table: VcnRouteTable


# ---------------------------------------------------------------------------------------------- ids

def vcn_id(drg: str, vcn: str) -> str:
    return ocid("vcn", drg, vcn)


route_table_id = m.vcn_table_id


def target_id(drg: str, vcn: str, target: RuleTarget) -> str:
    """The ``networkEntityId`` of a rule's target."""
    if target.kind == "drg":
        return m.drg_id(drg)
    if target.kind == "private_ip":
        return ocid("privateip", drg, f"{vcn}.{target.name}")
    resource = _GATEWAYS[target.kind]
    return ocid(resource, drg, f"{vcn}.{target.name}" if target.name else vcn)


# ---------------------------------------------------------------------------------------------- reads

def tables(view: m.View) -> list[VcnTable]:
    """Every VCN route table, VCN by VCN in file order, each VCN's ``default`` table first."""
    out: list[VcnTable] = []
    for vcn in view.config.vcns:
        default = vcn.route_table(DEFAULT_VCN_TABLE)
        assert default is not None  # the implicit default always exists
        out.append(VcnTable(vcn, default))
        out.extend(VcnTable(vcn, t) for t in vcn.route_tables if t.name != DEFAULT_VCN_TABLE)
    return out


def find(view: m.View, value: str) -> VcnTable:
    found = next((t for t in tables(view) if route_table_id(view.drg, t.vcn.name, t.table.name) == value), None)
    if found is None:
        raise not_found(f"route table {value} not found")
    return found


def rule_json(view: m.View, vcn: str, rule: VcnRouteRule) -> dict[str, Any]:
    return {"destination": rule.destination, "destinationType": "CIDR_BLOCK", "cidrBlock": rule.destination,
            "networkEntityId": target_id(view.drg, vcn, rule.target), "description": rule.description,
            "routeType": "STATIC"}


def table_json(view: m.View, t: VcnTable) -> dict[str, Any]:
    """A ``RouteTable``; the default table's display name is OCI's ("Default Route Table for <vcn>")."""
    drg, vcn = view.drg, t.vcn.name
    name = t.table.display_name or (f"Default Route Table for {vcn}" if t.table.name == DEFAULT_VCN_TABLE
                                    else t.table.name)
    return {"id": route_table_id(drg, vcn, t.table.name), "compartmentId": m.compartment_id(drg),
            "vcnId": vcn_id(drg, vcn), "displayName": name, "lifecycleState": "AVAILABLE",
            "timeCreated": m.timestamp(view.started_at), "definedTags": {}, "freeformTags": {},
            "routeRules": [rule_json(view, vcn, r) for r in t.table.rules]}


# ---------------------------------------------------------------------------------------------- update

def resolve_target(view: m.View, vcn: Vcn, value: Any, where: str) -> RuleTarget:
    """A ``networkEntityId`` -> the target of a rule of ``vcn`` (400 with the rule and a fix otherwise)."""
    if not isinstance(value, str) or not value:
        raise missing(f"{where}.networkEntityId is required")
    drg = view.drg
    if value == m.drg_id(drg):
        if not any(isinstance(a, VcnAttachment) and a.vcn == vcn.name for a in view.config.attachments):
            raise invalid(f"R71: {where}.networkEntityId: VCN {vcn.name} is not attached to DRG {value}. "
                          f"Fix: attach {vcn.name} to the DRG (a VCN attachment), or target something else")
        return RuleTarget("drg")
    if value.startswith("ocid1.drg."):
        raise invalid(f"R71: {where}.networkEntityId {value} is not the DRG attached to VCN {vcn.name}. "
                      f"Fix: use {m.drg_id(drg)}")
    for other in view.config.vcns:
        for appliance in other.appliances:
            if value == ocid("privateip", drg, f"{other.name}.{appliance.name}"):
                if other.name != vcn.name:
                    raise invalid(f"R72: {where}.networkEntityId is private IP {appliance.name} of VCN {other.name}; "
                                  f"a rule may only target a private IP of its own VCN {vcn.name}. Fix: target an "
                                  f"appliance of {vcn.name}, or route to the DRG")
                return RuleTarget("private_ip", appliance.name)
    for kind, resource in _GATEWAYS.items():
        prefix = ocid(resource, drg, vcn.name)
        if kind in ("internet_gateway", "nat_gateway") and value == prefix:
            return RuleTarget(kind)  # type: ignore[arg-type]  # a key of _GATEWAYS
        if kind in ("lpg", "service_gateway") and value.startswith(prefix + ".") and len(value) > len(prefix) + 1:
            return RuleTarget(kind, value[len(prefix) + 1:])  # type: ignore[arg-type]
    raise invalid(f"{where}.networkEntityId {value} is not a target in VCN {vcn.name}. Fix: use the DRG "
                  f"{m.drg_id(drg)}, a private IP {ocid('privateip', drg, vcn.name + '.<appliance>')} of an "
                  f"appliance of {vcn.name}, or a gateway of {vcn.name}")


def _rule(view: m.View, t: VcnTable, detail: Any, where: str) -> VcnRouteRule:
    if not isinstance(detail, dict):
        raise invalid(f"{where} must be an object")
    kind = detail.get("destinationType") or "CIDR_BLOCK"
    if kind != "CIDR_BLOCK":
        raise invalid(f"{where}.destinationType {kind!r}: the emulator models CIDR_BLOCK destinations only. "
                      "Fix: write the service's CIDRs as CIDR_BLOCK rules")
    if detail.get("routeType") not in (None, "STATIC"):
        raise invalid(f"R70: {where}.routeType {detail['routeType']!r}: LOCAL routes are OCI's own. "
                      "Fix: leave routeType out (STATIC)")
    destination = detail.get("destination") or detail.get("cidrBlock")
    if not isinstance(destination, str) or not destination:
        raise missing(f"{where}.destination is required")
    target = resolve_target(view, t.vcn, detail.get("networkEntityId"), where)  # R73 is validate()'s
    return build(VcnRouteRule, {"destination": destination, "target": target,
                                "description": detail.get("description")}, where)


def update_table(view: m.View, t: VcnTable, body: dict[str, Any]) -> DrgConfig:
    """UpdateRouteTable: ``routeRules`` (replaces every rule) and/or ``displayName``; no tags."""
    for tags in ("definedTags", "freeformTags"):
        if body.get(tags):
            raise invalid(f"{tags}: the emulator keeps no tags")
    data: dict[str, Any] = {"name": t.table.name, "rules": list(t.table.rules), "display_name": t.table.display_name}
    if body.get("displayName") is not None:
        if not isinstance(body["displayName"], str):
            raise invalid("displayName must be a string")
        data["display_name"] = body["displayName"]
    if body.get("routeRules") is not None:
        if not isinstance(body["routeRules"], list):
            raise invalid("routeRules must be a list")
        data["rules"] = [_rule(view, t, d, f"routeRules[{i}]") for i, d in enumerate(body["routeRules"])]
    changed = build(VcnRouteTable, data, f"route table {t.table.name}")
    if changed == t.table:
        return view.config
    tables_ = list(t.vcn.route_tables)
    index = next((i for i, x in enumerate(tables_) if x.name == changed.name), None)
    if index is None:
        tables_.append(changed)  # the implicit default table becomes a table of the file
    else:
        tables_[index] = changed
    vcn = t.vcn.model_copy(update={"route_tables": tables_})
    return view.config.model_copy(update={"vcns": [vcn if v.name == vcn.name else v for v in view.config.vcns]})
