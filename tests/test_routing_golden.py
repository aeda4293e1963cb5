"""Golden tests: the two topologies of oci-drg-semantics.md section 11, in product.md's JSON shapes.

Every table of 11.2 (TransportMode) and 11.3 (All Traffic) is written out by hand from the spec, as
are the advertisements and both packet walks of R49 (plus the clear return path of 11.3). The complete
dumps (OCI's default tables included) are also compared with tests/golden/*.json; run with
DRG_UPDATE_GOLDEN=1 to rewrite those after a reviewed change.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from controlplane.engine.drgs import engine_from_files
from controlplane.engine.engine import RouteEngine
from tests.support.factory import keys
from tests.support.paths import EXAMPLES, GOLDEN
from tests.support.transit import drg_hop, vcn_hop

P = 64512  # the Oracle private ASN prepended to VPN-learned routes (R28)
ID = "ocid1.drgattachment.emu.drg1."


def rule(destination: str, next_hop: str, provenance: str, as_path: list[Any], conflict: bool = False,
         ecmp: bool = False) -> dict[str, Any]:
    return {"destination": destination, "destinationType": "CIDR_BLOCK", "nextHop": next_hop,
            "nextHopDrgAttachmentId": ID + next_hop, "routeType": "DYNAMIC", "routeProvenance": provenance,
            "asPath": as_path, "isConflict": conflict, "isEcmp": ecmp, "isBlackhole": False}


def table(name: str, dist: str, attachments: list[str], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "id": f"ocid1.drgroutetable.emu.drg1.{name}", "isEcmpEnabled": False,
            "importDistribution": dist, "attachments": attachments, "rules": rules}


hop = drg_hop
# R74, R75: vcn-app has no ingress table; a packet for its subnet is delivered by the local route.
DELIVER_APP = vcn_hop("vcn-app", "att-vcn", None, "10.10.0.0/16", "LOCAL", "DELIVER", "10.10.1.0/24", ingress=True)


@pytest.fixture(scope="module")
def transport() -> RouteEngine:
    return engine_from_files(EXAMPLES / "transport-mode.yaml", EXAMPLES / "learned-transport-mode.yaml")


@pytest.fixture(scope="module")
def all_traffic() -> RouteEngine:
    return engine_from_files(EXAMPLES / "all-traffic.yaml", EXAMPLES / "learned-all-traffic.yaml")


TUNNEL_ROUTES = [rule("172.20.10.0/24", "att-tun1", "IPSEC_TUNNEL", [P, 65002]),
                 rule("172.20.10.0/24", "att-tun2", "IPSEC_TUNNEL", [P, 65002], conflict=True)]
HEADENDS = [rule("172.16.255.1/32", "att-tun1-lb", "LOOPBACK", []),
            rule("172.16.255.2/32", "att-tun2-lb", "LOOPBACK", [])]
VCN_ROUTE = rule("10.10.1.0/24", "att-vcn", "VCN", [])
CPE = rule("192.168.200.1/32", "att-vc1", "VIRTUAL_CIRCUIT", [65001])
CLEAR = rule("172.20.20.0/24", "att-vc1", "VIRTUAL_CIRCUIT", [65001])


class TestTransportMode:
    """Section 11.2."""

    def test_rt_vcn_prefers_tunnel1_by_attachment_order(self, transport: RouteEngine) -> None:
        """R27/R31 revised: equal [P, 65002] paths from two tunnels; att-tun1 comes first in the file."""
        assert transport.route_table("rt-vcn") == table("rt-vcn", "rd-vcn", ["att-vcn"], TUNNEL_ROUTES)

    def test_rt_ipsec_holds_only_the_vcn(self, transport: RouteEngine) -> None:
        assert transport.route_table("rt-ipsec") == table("rt-ipsec", "rd-ipsec", ["att-tun1", "att-tun2"],
                                                          [VCN_ROUTE])

    def test_rt_vc_holds_only_the_headends(self, transport: RouteEngine) -> None:
        """R44.1, R45: exactly one route per loopback and nothing else."""
        assert transport.route_table("rt-vc") == table("rt-vc", "rd-vc", ["att-vc1"], HEADENDS)

    def test_loopback_table_imports_the_vc(self, transport: RouteEngine) -> None:
        """R46; the peering subnet 192.168.100.0/30 is in no table (R47)."""
        assert transport.route_table("att-vc1-lb-rt") == table(
            "att-vc1-lb-rt", "att-vc1-lb-rd", ["att-tun1-lb", "att-tun2-lb"], [CPE])
        for t in transport.route_tables()["routeTables"]:
            assert all(not r["destination"].startswith("192.168.100.") for r in t["rules"])

    def test_advertisements(self, transport: RouteEngine) -> None:
        """R40, R44.1: only the headends over the VC; the VCN subnet over both tunnels (R33, R36)."""
        assert transport.advertised("att-vc1") == {
            "attachment": "att-vc1", "neighbor": "192.168.100.2", "state": "Established",
            "routes": [{"prefix": "172.16.255.1/32", "asPath": [31898], "nextHop": "192.168.100.1"},
                       {"prefix": "172.16.255.2/32", "asPath": [31898], "nextHop": "192.168.100.1"}]}
        assert transport.advertised("att-tun1") == {
            "attachment": "att-tun1", "neighbor": "169.254.20.2", "state": "Established",
            "routes": [{"prefix": "10.10.1.0/24", "asPath": [31898], "nextHop": "169.254.20.1"}]}
        assert transport.advertised("169.254.20.6") == {
            "attachment": "att-tun2", "neighbor": "169.254.20.6", "state": "Established",
            "routes": [{"prefix": "10.10.1.0/24", "asPath": [31898], "nextHop": "169.254.20.5"}]}

    def test_tunnels_are_up(self, transport: RouteEngine) -> None:
        assert transport.tunnel_state("att-tun1") == (True, None)
        assert transport.tunnel_state("att-tun2") == (True, None)

    def test_outbound_walk(self, transport: RouteEngine) -> None:
        """R49 outbound: VCN -> tunnel -> encryption -> loopback -> VC (product.md's trace example)."""
        outer = ("172.16.255.1", "192.168.200.1")
        assert transport.trace("att-vcn", "10.10.1.10", "172.20.10.10") == {
            "result": "DELIVERED", "reason": None, "reasonCode": None,
            "hops": [hop("att-vcn", "rt-vcn", "172.20.10.0/24", "FORWARD", "att-tun1"),
                     hop("att-tun1", None, None, "ENCRYPT", "att-tun1-lb", outer),
                     hop("att-tun1-lb", "att-vc1-lb-rt", "192.168.200.1/32", "FORWARD", "att-vc1", outer),
                     hop("att-vc1", None, None, "EXIT", None, outer)]}

    def test_inbound_walk(self, transport: RouteEngine) -> None:
        """R49 inbound: VC -> headend /32 -> loopback -> decryption -> tunnel -> VCN, delivered there by
        the VCN's implicit ingress table (R74, R75)."""
        outer = ("192.168.200.1", "172.16.255.1")
        assert transport.trace("att-vc1", "192.168.200.1", "172.16.255.1", "172.20.10.10", "10.10.1.10") == {
            "result": "DELIVERED", "reason": None, "reasonCode": None,
            "hops": [hop("att-vc1", "rt-vc", "172.16.255.1/32", "FORWARD", "att-tun1-lb", outer),
                     hop("att-tun1-lb", None, None, "DECRYPT", "att-tun1"),
                     hop("att-tun1", "rt-ipsec", "10.10.1.0/24", "FORWARD", "att-vcn"),
                     DELIVER_APP]}

    def test_clear_traffic_on_the_vc_is_dropped(self, transport: RouteEngine) -> None:
        """R44: a transport-only VC carries no clear traffic."""
        walk = transport.trace("att-vc1", "172.20.20.10", "10.10.1.10")
        assert walk["result"] == "DROPPED"
        assert "transport-only" in walk["reason"] and "(R44)" in walk["reason"]
        assert walk["hops"] == [hop("att-vc1", "rt-vc", None, "DROP", None)]


class TestAllTraffic:
    """Section 11.3."""

    def test_rt_vcn_reaches_the_clear_network_over_the_vc(self, all_traffic: RouteEngine) -> None:
        assert all_traffic.route_table("rt-vcn") == table("rt-vcn", "rd-vcn", ["att-vcn"],
                                                          [*TUNNEL_ROUTES, CLEAR, CPE])

    def test_rt_vc_adds_the_vcn(self, all_traffic: RouteEngine) -> None:
        """R45: the loopback statements stay in All Traffic mode; R48: the VC table may import VCNs."""
        expected = table("rt-vc", "rd-vc", ["att-vc1"], [VCN_ROUTE, *HEADENDS])
        assert all_traffic.route_table("rt-vc") == expected

    def test_rt_ipsec_unchanged(self, all_traffic: RouteEngine) -> None:
        assert all_traffic.route_table("rt-ipsec")["rules"] == [VCN_ROUTE]

    def test_loopback_table_imports_everything_from_the_vc(self, all_traffic: RouteEngine) -> None:
        assert all_traffic.route_table("att-vc1-lb-rt")["rules"] == [CLEAR, CPE]

    def test_advertisements(self, all_traffic: RouteEngine) -> None:
        """The VC now also carries the VCN subnet; never the tunnel or VC routes (R24)."""
        assert [r["prefix"] for r in all_traffic.advertised("att-vc1")["routes"]] == [
            "10.10.1.0/24", "172.16.255.1/32", "172.16.255.2/32"]
        for tunnel in ("att-tun1", "att-tun2"):
            assert [r["prefix"] for r in all_traffic.advertised(tunnel)["routes"]] == ["10.10.1.0/24"]

    def test_encrypted_walks_still_work(self, all_traffic: RouteEngine) -> None:
        out = all_traffic.trace("att-vcn", "10.10.1.10", "172.20.10.10")
        assert [(h["attachment"], h["action"]) for h in out["hops"]] == [
            ("att-vcn", "FORWARD"), ("att-tun1", "ENCRYPT"), ("att-tun1-lb", "FORWARD"), ("att-vc1", "EXIT")]
        back = all_traffic.trace("att-vc1", "192.168.200.1", "172.16.255.2", "172.20.10.10", "10.10.1.10")
        assert [(h["attachment"], h["action"]) for h in back["hops"]] == [
            ("att-vc1", "FORWARD"), ("att-tun2-lb", "DECRYPT"), ("att-tun2", "FORWARD"), ("att-vcn", "DELIVER")]

    def test_clear_paths(self, all_traffic: RouteEngine) -> None:
        """Clear return path of 11.3: VC -> rt-vc -> VCN, no IPSec; and VCN -> VC for 172.20.20.10."""
        assert all_traffic.trace("att-vc1", "172.20.20.10", "10.10.1.10") == {
            "result": "DELIVERED", "reason": None, "reasonCode": None,
            "hops": [hop("att-vc1", "rt-vc", "10.10.1.0/24", "FORWARD", "att-vcn"), DELIVER_APP]}
        assert all_traffic.trace("att-vcn", "10.10.1.10", "172.20.20.10") == {
            "result": "DELIVERED", "reason": None, "reasonCode": None,
            "hops": [hop("att-vcn", "rt-vcn", "172.20.20.0/24", "FORWARD", "att-vc1"),
                     hop("att-vc1", None, None, "EXIT", None)]}

    def test_pitfall_vc_route_beats_tunnels(self, all_traffic: RouteEngine) -> None:
        """11.3 pitfall: the edge also advertising 172.20.10.0/24 wins by AS path 1 < 2 (R27 step 2), so
        that traffic leaves unencrypted."""
        engine = engine_from_files(EXAMPLES / "all-traffic.yaml", EXAMPLES / "learned-all-traffic.yaml")
        engine.announce("att-vc1", 1, keys("172.20.10.0/24"), [65001])
        states = [(r["nextHop"], r["isConflict"]) for r in engine.route_table("rt-vcn")["rules"]
                  if r["destination"] == "172.20.10.0/24"]
        assert states == [("att-vc1", False), ("att-tun1", True), ("att-tun2", True)]
        walk = engine.trace("att-vcn", "10.10.1.10", "172.20.10.10")
        assert [h["action"] for h in walk["hops"]] == ["FORWARD", "EXIT"]
        assert walk["hops"][0]["nextHop"] == "att-vc1"


def _dump(engine: RouteEngine) -> dict[str, Any]:
    sessions = [a.name for a in engine.config.attachments if a.speaks_bgp]
    return {"routes": engine.route_tables(), "advertised": {s: engine.advertised(s) for s in sessions}}


@pytest.mark.parametrize("name", ["transport-mode", "all-traffic"])
def test_complete_dump_matches_golden_file(name: str) -> None:
    """Every table, OCI's defaults included (autogen-rt-vcn imports everything but the loopbacks: R50)."""
    engine = engine_from_files(EXAMPLES / f"{name}.yaml", EXAMPLES / f"learned-{name}.yaml")
    path = GOLDEN / f"{name}.json"
    if os.environ.get("DRG_UPDATE_GOLDEN"):
        path.write_text(json.dumps(_dump(engine), indent=1) + "\n")
    assert _dump(engine) == json.loads(path.read_text())
