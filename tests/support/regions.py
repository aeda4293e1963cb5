"""Builders for multi-DRG tests: worked example 2 of oci-drg-transit.md section 9 (two DRGs, one RPC).

``drg_a()``/``drg_b()`` are the two regions as dicts (product.md's format); each VCN has one subnet
whose route table sends 0.0.0.0/0 to the DRG, as the example says. :class:`Region` runs several DRGs in
one process as the daemon does: one engine per DRG, joined by an RpcFabric kept at a fixed point after
every step (R109). ``example2`` announces edge-a's and edge-b's on-prem prefix on both VCs.
"""

from __future__ import annotations

from typing import Any

from controlplane.config.effective import build_effective
from controlplane.engine.engine import RouteEngine
from controlplane.engine.rpc import RpcFabric, RpcStore
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, dist, table, vc_att, vcn_att

ONPREM = "172.20.0.0/16"


def rpc_att(name: str, peer_drg: str, peer_att: str, table_name: str | None = None, **extra: Any) -> dict[str, Any]:
    att: dict[str, Any] = {"name": name, "type": "REMOTE_PEERING_CONNECTION",
                           "peer": {"drg": peer_drg, "attachment": peer_att}, **extra}
    if table_name:
        att["route_table"] = table_name
    return att


def region_vcn(name: str, cidr: str, subnet: str, subnet_cidr: str) -> dict[str, Any]:
    """A VCN with one subnet whose route table sends everything outside the VCN to the DRG (R69, R71)."""
    return {"name": name, "cidrs": [cidr], "subnets": [{"name": subnet, "cidr": subnet_cidr, "route_table": "rt"}],
            "route_tables": [{"name": "rt", "rules": [{"destination": "0.0.0.0/0", "target": "drg"}]}]}


def drg_a() -> dict[str, Any]:
    """drg-a: custom tables for remote on-ramp (S29) plus VCN-to-VCN."""
    return {"drg": {"name": "drg-a"}, "vcns": [region_vcn("vcn-a", "10.10.0.0/16", "sn-a", "10.10.1.0/24")],
            "attachments": [vcn_att("att-a-vcn", "vcn-a", "rt-a-vcn"), vc_att("att-a-vc", 1, "rt-a-vc"),
                            rpc_att("att-a-rpc", "drg-b", "att-b-rpc", "rt-a-rpc")],
            "route_tables": [table("rt-a-vcn", "rd-a-vcn"), table("rt-a-vc", "rd-a-vc"), table("rt-a-rpc", "rd-a-rpc")],
            "distributions": [dist("rd-a-vcn", "VIRTUAL_CIRCUIT", "REMOTE_PEERING_CONNECTION"),
                              dist("rd-a-vc", "VCN", "REMOTE_PEERING_CONNECTION"),
                              dist("rd-a-rpc", "VIRTUAL_CIRCUIT", "VCN")]}


def drg_b() -> dict[str, Any]:
    """drg-b: OCI's defaults unchanged (R96)."""
    return {"drg": {"name": "drg-b"}, "vcns": [region_vcn("vcn-b", "10.20.0.0/16", "sn-b", "10.20.1.0/24")],
            "attachments": [vcn_att("att-b-vcn", "vcn-b"), vc_att("att-b-vc", 2),
                            rpc_att("att-b-rpc", "drg-a", "att-a-rpc")]}


class Region:
    """Several DRGs in one process, their RPCs kept at a fixed point after every step."""

    def __init__(self, *raws: dict[str, Any]) -> None:
        self.engines: dict[str, RouteEngine] = {r["drg"]["name"]: RouteEngine(build_effective(config(r)))
                                                for r in raws}
        stores: dict[str, RpcStore] = dict(self.engines)
        self.fabric = RpcFabric(stores)
        self.fabric.settle()

    def announce(self, drg: str, vc: str, prefix: str, as_path: list[int]) -> None:
        engine = self.engines[drg]
        engine.set_session_established(vc, True)
        changes = engine.announce(vc, AFI_IPV4, [parse_prefix(prefix)[1]], as_path)
        self.fabric.settle({drg: changes})

    def rows(self, drg: str, name: str) -> list[tuple[Any, ...]]:
        return [(r["destination"], r["nextHop"], r["routeProvenance"], r["asPath"], r.get("networkDistance", 0),
                 r["isConflict"]) for r in self.engines[drg].route_table(name)["rules"]]

    def advertised(self, drg: str, vc: str) -> list[str]:
        return [r["prefix"] for r in self.engines[drg].advertised(vc)["routes"]]

    def trace(self, drg: str, origin: str, src: str, dst: str, **options: Any) -> dict[str, Any]:
        """``drg trace --drg DRG`` in a daemon that runs every DRG of the region (R93 across DRGs)."""
        return self.engines[drg].trace(origin, src, dst, peers=self.engines, **options)


def example2(a: dict[str, Any] | None = None, b: dict[str, Any] | None = None,
             edge_b: list[int] | None = None) -> Region:
    region = Region(a or drg_a(), b or drg_b())
    region.announce("drg-a", "att-a-vc", ONPREM, [65001])
    region.announce("drg-b", "att-b-vc", ONPREM, edge_b or [65001])
    return region
