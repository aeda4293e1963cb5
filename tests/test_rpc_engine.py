"""Remote peering in the engine: worked example 2 of oci-drg-transit.md section 9 (two DRGs, one RPC),
its variants V1, V2 and V4, R102's consequences (i)-(iii), R103's depth on a five-DRG chain, and the
fixed point's independence from the order of events. Two in-process engines joined by an RpcFabric
(``tests/support/regions.py``)."""

from __future__ import annotations

import copy
from typing import Any

from controlplane.config.effective import build_effective
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, dist, table, vcn, vcn_att
from tests.support.regions import ONPREM, Region, drg_a, drg_b, example2, rpc_att


def test_worked_example_2_tables() -> None:
    region = example2()
    assert region.rows("drg-a", "rt-a-vcn") == [("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False),
                                                (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)]
    assert region.rows("drg-a", "rt-a-vc") == [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                                               ("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False)]
    assert region.rows("drg-a", "rt-a-rpc") == [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                                                (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)]
    assert region.rows("drg-b", "autogen-rt-vcn") == [
        ("10.10.1.0/24", "att-b-rpc", "VCN", [], 1, False),
        ("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False),
        (ONPREM, "att-b-vc", "VIRTUAL_CIRCUIT", [65001], 0, False),  # R102 step 3: VC > RPC
        (ONPREM, "att-b-rpc", "VIRTUAL_CIRCUIT", [65001], 1, True)]
    assert region.rows("drg-b", "autogen-rt-other") == [("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False)]
    rule = region.engines["drg-b"].route_table("autogen-rt-vcn")["rules"][0]
    assert rule["drgPath"] == ["drg-a"] and rule["routeType"] == "DYNAMIC"


def test_worked_example_2_exchanged_and_advertised() -> None:
    region = example2()
    sent_a = [(o.provenance, o.distance) for o in region.engines["drg-a"].rpc_export("att-a-rpc")]
    assert sent_a == [("VCN", 1), ("VIRTUAL_CIRCUIT", 1)]  # 10.10.1.0/24, 172.20.0.0/16 (R97, R98)
    assert [o.provenance for o in region.engines["drg-b"].rpc_export("att-b-rpc")] == ["VCN"]  # 10.20.1.0/24
    assert region.advertised("drg-a", "att-a-vc") == ["10.10.1.0/24", "10.20.1.0/24"]  # R36, R107
    assert region.advertised("drg-b", "att-b-vc") == ["10.20.1.0/24"]  # R96: the default table imports VCNs only


def test_v1_prepending_on_the_local_vc_sends_traffic_cross_region() -> None:
    """R102 (iii): edge-b prepends, so the RPC route (AS path length 1) wins by step 2."""
    region = example2(edge_b=[65001, 65001])
    rows = [r for r in region.rows("drg-b", "autogen-rt-vcn") if r[0] == ONPREM]
    assert rows == [(ONPREM, "att-b-vc", "VIRTUAL_CIRCUIT", [65001, 65001], 0, True),
                    (ONPREM, "att-b-rpc", "VIRTUAL_CIRCUIT", [65001], 1, False)]


def test_v2_on_prem_routes_are_never_advertised_to_another_on_prem_site() -> None:
    """R100: att-b-vc's table imports RPC routes; it advertises the remote VCN, never the remote VC route."""
    b = drg_b()
    b["attachments"][1]["route_table"] = "rt-b-vc"
    b["route_tables"] = [table("rt-b-vc", "rd-b-vc")]
    b["distributions"] = [dist("rd-b-vc", "VCN", "REMOTE_PEERING_CONNECTION")]
    region = example2(b=b)
    assert [r[0] for r in region.rows("drg-b", "rt-b-vc")] == ["10.10.1.0/24", "10.20.1.0/24", ONPREM]
    assert region.advertised("drg-b", "att-b-vc") == ["10.10.1.0/24", "10.20.1.0/24"]


def test_v4_a_revoked_peering_carries_nothing() -> None:
    """R110: att-a-rpc REVOKED: drg-a loses 10.20.1.0/24, drg-b both RPC routes; the VC route stays."""
    a = drg_a()
    a["attachments"][2]["peering_status"] = "REVOKED"
    region = example2(a=a)
    assert "10.20.1.0/24" not in [r[0] for r in region.rows("drg-a", "rt-a-vc")]
    assert region.rows("drg-b", "autogen-rt-vcn") == [("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False),
                                                      (ONPREM, "att-b-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)]


def test_r102_i_a_remote_vcn_beats_a_local_vc_route() -> None:
    """Step 2 before step 3: a remote VCN prefix (empty AS path) beats the same CIDR from a local VC."""
    region = example2()
    region.announce("drg-b", "att-b-vc", "10.10.1.0/24", [65001])
    assert [r for r in region.rows("drg-b", "autogen-rt-vcn") if r[0] == "10.10.1.0/24"] == [
        ("10.10.1.0/24", "att-b-vc", "VIRTUAL_CIRCUIT", [65001], 0, True),
        ("10.10.1.0/24", "att-b-rpc", "VCN", [], 1, False)]


def chain(n: int) -> Region:
    """DRGs d0 - d1 - ... - d(n-1) joined by RPCs; every table imports everything; d0 has a VCN."""
    raws = []
    for i in range(n):
        atts: list[dict[str, Any]] = []
        if i > 0:
            atts.append(rpc_att(f"d{i}-left", f"d{i - 1}", f"d{i - 1}-right", "rt-all"))
        if i < n - 1:
            atts.append(rpc_att(f"d{i}-right", f"d{i + 1}", f"d{i + 1}-left", "rt-all"))
        vcns = []
        if i == 0:
            atts.insert(0, vcn_att("v0", "n0", "rt-all"))
            vcns = [vcn("n0", "10.0.1.0/24", cidrs=["10.0.0.0/16"])]
        raws.append({"drg": {"name": f"d{i}"}, "vcns": vcns, "attachments": atts,
                     "route_tables": [table("rt-all", "rd-all")], "distributions": [dist("rd-all", "all")]})
    return Region(*raws)


def test_r103_routes_cross_at_most_four_drgs() -> None:
    region = chain(5)
    seen = {drg: [(r[0], r[4]) for r in region.rows(drg, "rt-all")] for drg in region.engines}
    assert seen == {"d0": [("10.0.1.0/24", 0)], "d1": [("10.0.1.0/24", 1)], "d2": [("10.0.1.0/24", 2)],
                    "d3": [("10.0.1.0/24", 3)], "d4": []}
    rule = region.engines["d3"].route_table("rt-all")["rules"][0]
    assert rule["drgPath"] == ["d0", "d1", "d2"]


def test_the_fixed_point_does_not_depend_on_the_order_of_events() -> None:
    """Same design, events in the other order, RPCs settled once at the end: the same tables (R109)."""
    first = example2()
    second = Region(drg_a(), drg_b())
    b, a = second.engines["drg-b"], second.engines["drg-a"]
    b.set_session_established("att-b-vc", True)
    changes_b = b.announce("att-b-vc", AFI_IPV4, [parse_prefix(ONPREM)[1]], [65001])
    a.set_session_established("att-a-vc", True)
    changes_a = a.announce("att-a-vc", AFI_IPV4, [parse_prefix(ONPREM)[1]], [65001])
    second.fabric.settle({"drg-a": changes_a, "drg-b": changes_b})
    for drg in ("drg-a", "drg-b"):
        assert second.engines[drg].route_tables() == first.engines[drg].route_tables()


def test_an_external_peer_offers_the_routes_of_the_file() -> None:
    """R109: ``peer: external`` with ``offered_routes`` (provenance, AS path and distance kept)."""
    a = copy.deepcopy(drg_a())
    a["attachments"][2] = {"name": "att-a-rpc", "type": "REMOTE_PEERING_CONNECTION", "route_table": "rt-a-rpc",
                           "peer": "external", "offered_routes": [
                               {"prefix": "10.30.1.0/24", "provenance": "VCN", "as_path": [], "network_distance": 2},
                               {"prefix": "172.21.0.0/16", "provenance": "IPSEC_TUNNEL", "as_path": [64512, 65002]}]}
    engine = RouteEngine(build_effective(config(a)))
    assert [(r["destination"], r["routeProvenance"], r["asPath"], r["networkDistance"])
            for r in engine.route_table("rt-a-vcn")["rules"]] == [
        ("10.30.1.0/24", "VCN", [], 2), ("172.21.0.0/16", "IPSEC_TUNNEL", [64512, 65002], 1)]
    assert engine.offered("att-a-rpc")["routes"][0]["provenance"] == "REMOTE_PEERING_CONNECTION"


def test_advertised_over_an_rpc_is_its_export() -> None:
    """``drg advertised`` of an RPC attachment: what crosses it, as the peer will see it (R97-R99)."""
    region = example2()
    doc = region.engines["drg-a"].advertised("att-a-rpc")
    assert (doc["neighbor"], doc["state"]) == ("drg-b/att-b-rpc", "PEERED")
    assert doc["routes"] == [
        {"prefix": "10.10.1.0/24", "asPath": [], "provenance": "VCN", "networkDistance": 1, "drgPath": ["drg-a"]},
        {"prefix": ONPREM, "asPath": [65001], "provenance": "VIRTUAL_CIRCUIT", "networkDistance": 1,
         "drgPath": ["drg-a"]}]
