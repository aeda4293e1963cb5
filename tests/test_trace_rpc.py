"""``drg trace`` across DRGs (R93 with R89, R90, R97, R101, R109, R110): worked example 2 of
oci-drg-transit.md section 9 hop by hop (the on-prem walk entering region A and its asymmetric reply,
V1's symmetric reply), peering states, an RPC whose peer is not in this process, R101's two readings,
the loop guard across DRGs and the text rendering. Two DRGs in one process (``tests/support/regions.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controlplane import render
from controlplane.config.effective import build_effective
from controlplane.engine.engine import RouteEngine
from tests.support.factory import config, dist, table
from tests.support.regions import ONPREM, Region, drg_a, drg_b, example2
from tests.support.transit import drg_hop, steps, vcn_hop

WALK = ("drg-a", "att-a-vc", "172.20.5.5", "10.20.1.10")  # on-prem -> vcn-b, entering region A
REPLY = ("drg-b", "vcn-b", "10.20.1.10", "172.20.5.5")


def at(drg: str, hop: dict[str, Any]) -> dict[str, Any]:
    return {**hop, "drg": drg}


def delivered(*hops: dict[str, Any]) -> dict[str, Any]:
    return {"result": "DELIVERED", "reason": None, "reasonCode": None, "hops": list(hops)}


def where(walk: dict[str, Any]) -> list[tuple[str, str | None, str, str | None]]:
    """Each hop as (drg, where, action, next hop)."""
    return [(h["drg"], *step[1:]) for h, step in zip(walk["hops"], steps(walk), strict=True)]


# ---- worked example 2 -----------------------------------------------------------------------------


def test_example2_walk_from_onprem_crosses_the_rpc_into_region_b() -> None:
    """Section 9: drg-a att-a-vc/rt-a-vc -> att-a-rpc; drg-b att-b-rpc/autogen-rt-other -> att-b-vcn;
    DELIVER (R97: it re-enters on the peer attachment; R90: VC -> RPC, RPC -> VCN legal)."""
    assert example2().trace(*WALK) == delivered(
        at("drg-a", drg_hop("att-a-vc", "rt-a-vc", "10.20.1.0/24", "FORWARD", "att-a-rpc")),
        at("drg-b", drg_hop("att-b-rpc", "autogen-rt-other", "10.20.1.0/24", "FORWARD", "att-b-vcn")),
        at("drg-b", vcn_hop("vcn-b", "att-b-vcn", None, "10.20.0.0/16", "LOCAL", "DELIVER", "sn-b", ingress=True)))


def test_example2_reply_exits_in_region_b() -> None:
    """Section 9: the reply follows autogen-rt-vcn's local VC route (R102 step 3) and EXITs in region B:
    asymmetric (R29's principle across regions)."""
    assert example2().trace(*REPLY) == delivered(
        at("drg-b", vcn_hop("vcn-b", "sn-b", "rt", "0.0.0.0/0", "STATIC", "VCN_ROUTE", "att-b-vcn")),
        at("drg-b", drg_hop("att-b-vcn", "autogen-rt-vcn", ONPREM, "FORWARD", "att-b-vc")),
        at("drg-b", drg_hop("att-b-vc", None, None, "EXIT", None)))


def test_v1_the_reply_goes_back_over_the_rpc_and_exits_in_region_a() -> None:
    """V1: edge-b prepends, the RPC route wins by R102 step 2; R24 in drg-a: RPC -> VC allowed (R90)."""
    assert example2(edge_b=[65001, 65001]).trace(*REPLY) == delivered(
        at("drg-b", vcn_hop("vcn-b", "sn-b", "rt", "0.0.0.0/0", "STATIC", "VCN_ROUTE", "att-b-vcn")),
        at("drg-b", drg_hop("att-b-vcn", "autogen-rt-vcn", ONPREM, "FORWARD", "att-b-rpc")),
        at("drg-a", drg_hop("att-a-rpc", "rt-a-rpc", ONPREM, "FORWARD", "att-a-vc")),
        at("drg-a", drg_hop("att-a-vc", None, None, "EXIT", None)))


def test_vcn_a_to_vcn_b_and_back() -> None:
    region = example2()
    assert where(region.trace("drg-a", "vcn-a", "10.10.1.10", "10.20.1.10")) == [
        ("drg-a", "sn-a", "VCN_ROUTE", "att-a-vcn"), ("drg-a", "att-a-vcn", "FORWARD", "att-a-rpc"),
        ("drg-b", "att-b-rpc", "FORWARD", "att-b-vcn"), ("drg-b", "att-b-vcn", "DELIVER", "sn-b")]
    assert where(region.trace("drg-b", "vcn-b", "10.20.1.10", "10.10.1.10")) == [
        ("drg-b", "sn-b", "VCN_ROUTE", "att-b-vcn"), ("drg-b", "att-b-vcn", "FORWARD", "att-b-rpc"),
        ("drg-a", "att-a-rpc", "FORWARD", "att-a-vcn"), ("drg-a", "att-a-vcn", "DELIVER", "sn-a")]


# ---- peering states and the edge of the process ---------------------------------------------------------


def with_static_to_rpc(a: dict[str, Any]) -> dict[str, Any]:
    """rt-a-vcn gets static 10.20.0.0/16 -> att-a-rpc (R104 allows it in a VCN attachment's table)."""
    a["route_tables"][0] = table("rt-a-vcn", "rd-a-vcn", static=[("10.20.0.0/16", "att-a-rpc")])
    return a


@pytest.mark.parametrize("side", ["drg-a", "drg-b"])
def test_r110_traffic_over_an_rpc_that_is_not_peered_is_dropped(side: str) -> None:
    """R110: the RPC offers nothing, the static rule to it stays, and traffic following it is dropped,
    whichever side is not PEERED."""
    a, b = with_static_to_rpc(drg_a()), drg_b()
    (a if side == "drg-a" else b)["attachments"][2]["peering_status"] = "REVOKED"
    walk = example2(a, b).trace("drg-a", "vcn-a", "10.10.1.10", "10.20.1.10")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "RPC_NOT_PEERED")
    assert walk["hops"][-1] == at("drg-a", drg_hop("att-a-vcn", "rt-a-vcn", "10.20.0.0/16", "DROP", "att-a-rpc"))
    rpc = "att-a-rpc is REVOKED" if side == "drg-a" else "att-a-rpc's peer att-b-rpc of drg-b is REVOKED"
    assert walk["reason"].startswith(rpc) and "(R110)" in walk["reason"]


def test_a_peer_drg_in_another_daemon_ends_the_walk_left_scope() -> None:
    """R109: the peer DRG is not among this process's engines: LEFT_SCOPE naming it, where the walk would
    go on; the hops carry drg (the walk met an RPC)."""
    walk = example2().engines["drg-a"].trace(*WALK[1:])
    assert walk == {"result": "LEFT_SCOPE", "reasonCode": "REMOTE_DRG", "reason": walk["reason"],
                    "peer": {"drg": "drg-b", "attachment": "att-b-rpc"},
                    "hops": [at("drg-a", drg_hop("att-a-vc", "rt-a-vc", "10.20.1.0/24", "FORWARD", "att-a-rpc"))]}
    assert "drg-b (att-b-rpc)" in walk["reason"] and "another daemon" in walk["reason"]


def test_an_external_peer_ends_the_walk_left_scope() -> None:
    """R109: ``peer: external`` with offered routes; the walk follows them to the RPC and stops there."""
    a = copy.deepcopy(drg_a())
    a["attachments"][2] = {"name": "att-a-rpc", "type": "REMOTE_PEERING_CONNECTION", "route_table": "rt-a-rpc",
                           "peer": "external", "offered_routes": [{"prefix": "10.30.1.0/24"}]}
    walk = RouteEngine(build_effective(config(a))).trace("vcn-a", "10.10.1.10", "10.30.1.5")
    assert (walk["result"], walk["reasonCode"], walk["peer"]) == (
        "LEFT_SCOPE", "REMOTE_DRG", {"drg": None, "attachment": None})
    assert [(h["drg"], h["attachment"], h["nextHop"]) for h in walk["hops"]] == [
        ("drg-a", None, "att-a-vcn"), ("drg-a", "att-a-vcn", "att-a-rpc")]
    assert "external peer" in walk["reason"]


# ---- R24 per DRG pass across DRGs (R90, R101) -----------------------------------------------------------------


def onprem_b_to_onprem_a() -> Region:
    """V2's drg-b: att-b-vc's table imports RPC routes, so site B reaches 172.20.0.0/16 over the RPC."""
    b = drg_b()
    b["attachments"][1]["route_table"] = "rt-b-vc"
    b["route_tables"] = [table("rt-b-vc", "rd-b-vc")]
    b["distributions"] = [dist("rd-b-vc", "VCN", "REMOTE_PEERING_CONNECTION")]
    return example2(b=b)


def test_r101_literal_reading_on_prem_to_on_prem_across_an_rpc_is_allowed() -> None:
    """Default: R24 per DRG pass - drg-b VC -> RPC, drg-a RPC -> VC, both legal."""
    walk = onprem_b_to_onprem_a().trace("drg-b", "att-b-vc", "172.21.0.1", "172.20.5.5")
    assert walk == delivered(at("drg-b", drg_hop("att-b-vc", "rt-b-vc", ONPREM, "FORWARD", "att-b-rpc")),
                             at("drg-a", drg_hop("att-a-rpc", "rt-a-rpc", ONPREM, "FORWARD", "att-a-vc")),
                             at("drg-a", drg_hop("att-a-vc", None, None, "EXIT", None)))


def test_r101_strict_reading_drops_it_where_it_would_leave() -> None:
    walk = onprem_b_to_onprem_a().trace("drg-b", "att-b-vc", "172.21.0.1", "172.20.5.5",
                                        onprem_transit_across_rpc="drop")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "ONPREM_TO_ONPREM")
    assert walk["hops"][-1] == at("drg-a", drg_hop("att-a-rpc", "rt-a-rpc", ONPREM, "DROP", "att-a-vc"))
    assert "VIRTUAL_CIRCUIT att-b-vc of drg-b" in walk["reason"] and "R101" in walk["reason"]


@pytest.mark.parametrize("walk", [WALK, REPLY])
@pytest.mark.parametrize("edge_b", [[65001], [65001, 65001]])
def test_r101_strict_reading_leaves_vcn_traffic_alone(walk: tuple[str, ...], edge_b: list[int]) -> None:
    region = example2(edge_b=edge_b)
    assert region.trace(*walk, onprem_transit_across_rpc="drop") == region.trace(*walk)


def test_onprem_transit_option_is_checked() -> None:
    with pytest.raises(ValueError, match="R101"):
        example2().trace(*WALK, onprem_transit_across_rpc="strict")


# ---- loop guard across DRGs (R89) ---------------------------------------------------------------------------


def test_r89_a_ping_pong_between_two_drgs_is_a_loop() -> None:
    """Both RPC tables send 10.99.0.0/16 back over the RPC (U-turns): the state (DRG, ingress attachment,
    destination, encrypted) repeats at drg-b's second pass."""
    a, b = drg_a(), drg_b()
    u_turn = [("10.99.0.0/16", "att-a-rpc")]
    a["route_tables"] = [table("rt-a-vcn", "rd-a-vcn", static=u_turn), table("rt-a-vc", "rd-a-vc"),
                         table("rt-a-rpc", "rd-a-rpc", static=u_turn)]
    b["attachments"][2]["route_table"] = "rt-b-rpc"
    b["route_tables"] = [table("rt-b-rpc", static=[("10.99.0.0/16", "att-b-rpc")])]
    walk = example2(a, b).trace("drg-a", "vcn-a", "10.10.1.10", "10.99.1.1")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "ROUTING_LOOP")
    assert where(walk) == [("drg-a", "sn-a", "VCN_ROUTE", "att-a-vcn"),
                           ("drg-a", "att-a-vcn", "FORWARD", "att-a-rpc"),
                           ("drg-b", "att-b-rpc", "FORWARD", "att-b-rpc"),
                           ("drg-a", "att-a-rpc", "FORWARD", "att-a-rpc"),
                           ("drg-b", "att-b-rpc", "DROP", None)]


# ---- single DRG unchanged, rendering ------------------------------------------------------------------------------


def test_a_walk_without_other_drgs_and_rpcs_has_no_drg_field() -> None:
    """A one-DRG trace (no peers, or only itself) is today's JSON; the reply of example 2 meets no RPC."""
    engine = example2().engines["drg-b"]
    walk = engine.trace(*REPLY[1:])
    assert all("drg" not in h for h in walk["hops"])
    assert engine.trace(*REPLY[1:], peers={"drg-b": engine}) == walk
    assert "DRG" not in render.trace(walk).splitlines()[0].split()


def test_text_rendering_shows_the_drg_column() -> None:
    text = render.trace(example2().trace(*WALK))
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["#", "KIND", "DRG", "WHERE"]
    assert lines[1].split()[:4] == ["1", "DRG", "drg-a", "att-a-vc"]
    assert lines[2].split()[:4] == ["2", "DRG", "drg-b", "att-b-rpc"]
    assert text.endswith("Result: DELIVERED\n")
