"""Builders for trace tests (R69-R93): the hub-firewall example as an engine, variants of it, and the
hops of ``drg trace --json`` written out in full.

``hub(change)`` loads examples/hub-firewall.yaml as a dict, lets ``change`` edit it, and returns a route
engine with examples/learned-hub-firewall.yaml replayed (VC up, both tunnels up, their routes learned),
as ``drg trace --config ... --learned ...`` would. The hop builders give every field of a hop, so a test
compares whole hops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.config.load import load_learned
from controlplane.engine.engine import RouteEngine
from controlplane.engine.offline import apply_learned
from tests.support.factory import drg, engine, example, table, vcn_att
from tests.support.paths import EXAMPLES

Outer = tuple[str, str] | None


def hub(change: Callable[[dict[str, Any]], None] | None = None) -> RouteEngine:
    raw = example("hub-firewall")
    if change is not None:
        change(raw)
    e = engine(raw)
    apply_learned(e, load_learned(EXAMPLES / "learned-hub-firewall.yaml"))
    return e


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["name"] == name)


def vcn_of(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return named(raw["vcns"], name)


def fw1(raw: dict[str, Any]) -> dict[str, Any]:
    return named(vcn_of(raw, "vcn-hub")["appliances"], "fw1")


def vcn_table(raw: dict[str, Any], vcn: str, name: str) -> dict[str, Any]:
    return named(vcn_of(raw, vcn)["route_tables"], name)


def _outer(outer: Outer) -> dict[str, Any]:
    return {"encrypted": outer is not None, "outerSrc": outer[0] if outer else None,
            "outerDst": outer[1] if outer else None}


def drg_hop(attachment: str, table_: str | None, rule: str | None, action: str, next_hop: str | None,
            outer: Outer = None) -> dict[str, Any]:
    return {"kind": "DRG", "attachment": attachment, "routeTable": table_, "matchedRule": rule, "action": action,
            "nextHop": next_hop, **_outer(outer)}


def vcn_hop(vcn: str, where: str | None, table_: str | None, rule: str | None, route_type: str | None,
            action: str, next_hop: str | None, *, ingress: bool = False, outer: Outer = None) -> dict[str, Any]:
    """A VCN hop: at the ingress of the attachment ``where`` (``ingress=True``) or at the egress of the
    subnet ``where``."""
    return {"kind": "VCN", "attachment": where if ingress else None, "routeTable": table_, "matchedRule": rule,
            "action": action, "nextHop": next_hop, **_outer(outer), "vcn": vcn,
            "subnet": None if ingress else where, "routeType": route_type}


def appliance_hop(vcn: str, subnet: str, name: str, ip: str, verdict: str | None, next_hop: str | None,
                  action: str = "INSPECT") -> dict[str, Any]:
    return {"kind": "APPLIANCE", "attachment": None, "routeTable": None, "matchedRule": None, "action": action,
            "nextHop": next_hop, **_outer(None), "vcn": vcn, "subnet": subnet, "appliance": name,
            "privateIp": ip, "verdict": verdict}


def fw1_hop(verdict: str = "ALLOW") -> dict[str, Any]:
    return appliance_hop("vcn-hub", "sn-fw", "fw1", "10.0.1.4", verdict, "sn-fw" if verdict == "ALLOW" else None)


def steps(walk: dict[str, Any]) -> list[tuple[str, str | None, str, str | None]]:
    """Each hop as (kind, where, action, next hop); where is the attachment, else the subnet or appliance."""
    return [(h["kind"], h["attachment"] or h.get("appliance") or h.get("subnet"), h["action"], h["nextHop"])
            for h in walk["hops"]]


def chain(n: int) -> RouteEngine:
    """``n`` VCNs in a row, each attachment's DRG table sending everything to the next attachment, and
    each VCN's ingress table sending everything to its appliance, whose subnet sends it back to the DRG:
    a walk to 192.0.2.1 makes one more DRG pass per VCN and never repeats a state (R89's pass limit)."""
    vcns, atts, tables = [], [], []
    for i in range(n):
        vcns.append({"name": f"v{i}", "cidrs": [f"10.{i}.0.0/16"],
                     "subnets": [{"name": "sn", "cidr": f"10.{i}.1.0/24", "route_table": "rt"}],
                     "appliances": [{"name": "fw", "private_ip": f"10.{i}.1.4", "subnet": "sn",
                                     "skip_source_dest_check": True}],
                     "route_tables": [{"name": "rt", "rules": [{"destination": "0.0.0.0/0", "target": "drg"}]},
                                      {"name": "in", "rules": [{"destination": "0.0.0.0/0",
                                                                "target": {"private_ip": "fw"}}]}]})
        atts.append(vcn_att(f"a{i}", f"v{i}", f"rt-a{i}", ingress_route_table="in"))
        tables.append(table(f"rt-a{i}", static=[("0.0.0.0/0", f"a{(i + 1) % n}")]))
    return engine(drg(atts, tables, None, vcns))
