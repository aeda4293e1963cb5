"""Builders for test configurations: small DRG files as dicts, engines, and compact views of tables.

The dicts follow product.md's YAML format; ``engine`` validates them with pydantic (not with the policy
checks, so rule tests may build configurations OCI would refuse) and returns a fresh route engine.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from controlplane.config.effective import build_effective
from controlplane.config.load import parse_config
from controlplane.config.schema import DrgConfig
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import parse_prefix
from tests.support.paths import EXAMPLES


def example(name: str) -> dict[str, Any]:
    """An example file of the repository as a dict (``transport-mode``, ``all-traffic``)."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return data


def config(raw: dict[str, Any]) -> DrgConfig:
    return parse_config(yaml.safe_dump(raw, sort_keys=False), "test.yaml")


def engine(raw: dict[str, Any]) -> RouteEngine:
    return RouteEngine(build_effective(config(raw)))


def key(prefix: str) -> int:
    return parse_prefix(prefix)[1]


def keys(*prefixes: str) -> list[int]:
    return [key(p) for p in prefixes]


def vcn(name: str, *subnets: str, cidrs: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "cidrs": cidrs or ["10.0.0.0/8"], "subnets": list(subnets)}


def vcn_att(name: str, vcn_name: str, table: str | None = None, **extra: Any) -> dict[str, Any]:
    att: dict[str, Any] = {"name": name, "type": "VCN", "vcn": vcn_name, **extra}
    if table:
        att["route_table"] = table
    return att


def vc_att(name: str, n: int, table: str | None = None, asn: int = 65001, **extra: Any) -> dict[str, Any]:
    """A VC whose peering subnet is 192.168.100.<4n>/30 and whose socket peer is 127.0.1.<n>."""
    bgp = extra.pop("bgp", {})
    att: dict[str, Any] = {"name": name, "type": "VIRTUAL_CIRCUIT", **extra,
                           "bgp": {"oracle_ip": f"192.168.100.{4 * n + 1}/30",
                                   "customer_ip": f"192.168.100.{4 * n + 2}/30", "customer_asn": asn,
                                   "peer": f"127.0.1.{n}", **bgp}}
    if table:
        att["route_table"] = table
    return att


def tunnel_att(name: str, n: int, vc: str | None, table: str | None = None, cpe: str = "192.168.200.1",
               static_routes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A tunnel with headend 172.16.255.<n>; BGP (inside 169.254.20.<4n>/30) unless static routes
    are given."""
    bgp = extra.pop("bgp", {})
    att: dict[str, Any] = {"name": name, "type": "IPSEC_TUNNEL", "cpe_ip": cpe, **extra}
    if vc is not None:
        att["transport_attachment"] = vc
        att["oracle_tunnel_ip"] = f"172.16.255.{n}"
    if static_routes is not None:
        att["static_routes"] = static_routes
    else:
        att["bgp"] = {"oracle_ip": f"169.254.20.{4 * n + 1}/30", "customer_ip": f"169.254.20.{4 * n + 2}/30",
                      "customer_asn": 65002, "peer": f"127.0.2.{n}", "connect": "active", **bgp}
    if table:
        att["route_table"] = table
    return att


def table(name: str, dist: str | None = None, ecmp: bool = False,
          static: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name, "ecmp": ecmp}
    if dist:
        result["import_distribution"] = dist
    if static:
        result["static_routes"] = [{"destination": d, "next_hop": nh} for d, nh in static]
    return result


def dist(name: str, *matches: Any, start: int = 10) -> dict[str, Any]:
    """A distribution; each match is ``"all"``, a type name in capitals, or an attachment name."""
    statements = []
    for i, m in enumerate(matches):
        if m == "all":
            match: Any = "all"
        elif m in ("VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL", "REMOTE_PEERING_CONNECTION"):
            match = {"attachment_type": m}
        else:
            match = {"attachment": m}
        statements.append({"priority": start + 10 * i, "match": match})
    return {"name": name, "statements": statements}


def drg(attachments: list[dict[str, Any]], tables: list[dict[str, Any]] | None = None,
        dists: list[dict[str, Any]] | None = None,
        vcns: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"drg": {"name": "drg1"}, "vcns": vcns or [], "attachments": attachments,
            "route_tables": tables or [], "distributions": dists or []}


def rows(engine_: RouteEngine, table_name: str) -> list[tuple[str, str, str, str, list[Any], str]]:
    """A table as (destination, next hop, type, provenance, AS path, state) rows; state is ACTIVE,
    ECMP, CONFLICT or BLACKHOLE."""
    result = []
    for rule in engine_.route_table(table_name)["rules"]:
        state = "CONFLICT" if rule["isConflict"] else "BLACKHOLE" if rule["isBlackhole"] else \
            "ECMP" if rule["isEcmp"] else "ACTIVE"
        result.append((rule["destination"], rule["nextHop"], rule["routeType"], rule["routeProvenance"],
                       rule["asPath"], state))
    return result


def advertised(engine_: RouteEngine, attachment: str) -> list[str]:
    return [r["prefix"] for r in engine_.advertised(attachment)["routes"]]


def mutate(raw: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(raw)
