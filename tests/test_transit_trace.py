"""``drg trace`` across VCNs (R69-R93): worked example 1 of oci-drg-transit.md section 8 hop by hop, its
pitfalls 1 and 2, and one test per rule of the VCN side (R69-R75), the appliance (R91) and the loop guard
(R89). The engine is the offline one: examples/hub-firewall.yaml with its learned file replayed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from controlplane import render
from controlplane.cli import main
from controlplane.engine.engine import RouteEngine
from tests.support.factory import engine, example
from tests.support.paths import EXAMPLES
from tests.support.transit import (
    appliance_hop,
    chain,
    drg_hop,
    fw1,
    fw1_hop,
    hub,
    named,
    steps,
    vcn_hop,
    vcn_of,
    vcn_table,
)

ESP_IN = ("192.168.200.1", "172.16.255.1")  # on-prem firewall -> headend of tun1
ESP_OUT = ("172.16.255.1", "192.168.200.1")


@pytest.fixture(scope="module")
def example1() -> RouteEngine:
    return hub()


def walk1(e: RouteEngine, dst: str = "10.10.1.10") -> dict[str, Any]:
    """On-prem user 172.20.10.10 -> ``dst``, encrypted in tunnel 1 over the VC."""
    return e.trace("att-vc1", *ESP_IN, inner_src="172.20.10.10", inner_dst=dst)


def walk2(e: RouteEngine) -> dict[str, Any]:
    return e.trace("vcn-spoke1", "10.10.1.10", "172.20.10.10")


# ---- worked example 1 -----------------------------------------------------------------------------


def test_walk1_onprem_to_spoke_is_decrypted_then_inspected(example1: RouteEngine) -> None:
    """Section 8 Walk 1, steps 1-8 (R49 inbound, R24 per pass R90, R75, R91, R71, R74)."""
    assert walk1(example1) == {"result": "DELIVERED", "reason": None, "reasonCode": None, "hops": [
        drg_hop("att-vc1", "rt-vc", "172.16.255.1/32", "FORWARD", "att-tun1-lb", ESP_IN),
        drg_hop("att-tun1-lb", None, None, "DECRYPT", "att-tun1"),
        drg_hop("att-tun1", "rt-ipsec", "10.10.0.0/16", "FORWARD", "att-hub"),
        vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", "10.10.0.0/16", "STATIC", "VCN_ROUTE", "fw1", ingress=True),
        fw1_hop(),
        vcn_hop("vcn-hub", "sn-fw", "rt-fw", "10.10.0.0/16", "STATIC", "VCN_ROUTE", "att-hub"),
        drg_hop("att-hub", "rt-hub", "10.10.1.0/24", "FORWARD", "att-spoke1"),
        vcn_hop("vcn-spoke1", "att-spoke1", None, "10.10.0.0/16", "LOCAL", "DELIVER", "sn-app1", ingress=True)]}


def test_walk2_reply_is_inspected_then_encrypted(example1: RouteEngine) -> None:
    """Section 8 Walk 2, steps 1-9 (R69, R71, R75, R91, R49 outbound)."""
    assert walk2(example1) == {"result": "DELIVERED", "reason": None, "reasonCode": None, "hops": [
        vcn_hop("vcn-spoke1", "sn-app1", "rt-sp1", "0.0.0.0/0", "STATIC", "VCN_ROUTE", "att-spoke1"),
        drg_hop("att-spoke1", "rt-spoke", "0.0.0.0/0", "FORWARD", "att-hub"),
        vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", "172.20.10.0/24", "STATIC", "VCN_ROUTE", "fw1",
                ingress=True),
        fw1_hop(),
        vcn_hop("vcn-hub", "sn-fw", "rt-fw", "172.20.10.0/24", "STATIC", "VCN_ROUTE", "att-hub"),
        drg_hop("att-hub", "rt-hub", "172.20.10.0/24", "FORWARD", "att-tun1"),
        drg_hop("att-tun1", None, None, "ENCRYPT", "att-tun1-lb", ESP_OUT),
        drg_hop("att-tun1-lb", "att-vc1-lb-rt", "192.168.200.1/32", "FORWARD", "att-vc1", ESP_OUT),
        drg_hop("att-vc1", None, None, "EXIT", None, ESP_OUT)]}


@pytest.mark.parametrize(("vcn", "src", "dst", "att", "rule", "back_to", "table", "subnet"), [
    ("vcn-spoke1", "10.10.1.10", "10.11.1.10", "att-spoke1", "10.11.0.0/16", "att-spoke2", "rt-sp1", "sn-app1"),
    ("vcn-spoke2", "10.11.1.10", "10.10.1.10", "att-spoke2", "10.10.0.0/16", "att-spoke1", "rt-sp2", "sn-app2")])
def test_east_west_and_its_reply_go_through_the_firewall(example1: RouteEngine, vcn: str, src: str, dst: str,
                                                         att: str, rule: str, back_to: str, table: str,
                                                         subnet: str) -> None:
    """Section 8 east-west check (R85): spoke -> hub firewall -> other spoke, and the symmetric reply."""
    to = "vcn-spoke2" if vcn == "vcn-spoke1" else "vcn-spoke1"
    assert example1.trace(vcn, src, dst)["hops"] == [
        vcn_hop(vcn, subnet, table, "0.0.0.0/0", "STATIC", "VCN_ROUTE", att),
        drg_hop(att, "rt-spoke", "0.0.0.0/0", "FORWARD", "att-hub"),
        vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", rule, "STATIC", "VCN_ROUTE", "fw1", ingress=True),
        fw1_hop(),
        vcn_hop("vcn-hub", "sn-fw", "rt-fw", rule, "STATIC", "VCN_ROUTE", "att-hub"),
        drg_hop("att-hub", "rt-hub", dst.rsplit(".", 1)[0] + ".0/24", "FORWARD", back_to),
        vcn_hop(to, back_to, None, rule, "LOCAL", "DELIVER", "sn-app2" if subnet == "sn-app1" else "sn-app1",
                ingress=True)]


def test_offline_cli_walks_from_a_vcn(capsys: pytest.CaptureFixture[str]) -> None:
    """``drg trace --from VCN --config --learned`` (the offline path of the CLI) gives the engine's walk."""
    files = ["--config", str(EXAMPLES / "hub-firewall.yaml"), "--learned",
             str(EXAMPLES / "learned-hub-firewall.yaml")]
    assert main(["trace", "--from", "vcn-spoke1", "--src", "10.10.1.10", "--dst", "172.20.10.10", "--json",
                 *files]) == 0
    assert json.loads(capsys.readouterr().out) == walk2(hub())
    assert main(["trace", "--from", "vcn-spoke1", "--src", "10.99.0.1", "--dst", "172.20.10.10", *files]) == 2
    assert "no subnet of vcn-spoke1 holds 10.99.0.1" in capsys.readouterr().err


def test_text_rendering_names_every_location(example1: RouteEngine) -> None:
    text = render.trace(walk1(example1))
    for piece in ("vcn-hub ingress from att-hub", "vcn-hub: fw1 (10.0.1.4)", "INSPECT ALLOW", "vcn-hub: sn-fw",
                  "implicit (R74)", "10.10.0.0/16 (local)", "DELIVER", "Result: DELIVERED"):
        assert piece in text
    stopped = hub(lambda raw: fw1(raw).update(state="stopped"))
    assert "Result: DROPPED (PRIVATE_IP_TARGET_DOWN): appliance fw1" in render.trace(walk1(stopped))


# ---- pitfalls ---------------------------------------------------------------------------------------


def test_pitfall1_match_all_in_the_hub_table_loops_walk2() -> None:
    """rd-hub MATCH_ALL (All Traffic mode, so R44.4 allows it) imports att-hub's own 172.20.10.0/24, which
    beats the tunnels (R83): walk 2 step 6 goes back to att-hub and the walk ends ROUTING_LOOP (R89)."""
    def all_traffic(raw: dict[str, Any]) -> None:
        named(raw["attachments"], "att-vc1")["transport_only"] = False
        named(raw["distributions"], "rd-hub")["statements"] = [{"priority": 10, "match": "all"}]

    walk = walk2(hub(all_traffic))
    assert walk["result"] == "DROPPED" and walk["reasonCode"] == "ROUTING_LOOP"
    assert walk["hops"][5] == drg_hop("att-hub", "rt-hub", "172.20.10.0/24", "FORWARD", "att-hub")  # a U-turn
    assert walk["hops"][6] == vcn_hop("vcn-hub", "att-hub", None, None, None, "DROP", None, ingress=True)
    assert walk["reason"] == "routing loop: the packet to 172.20.10.10 is back at the ingress of vcn-hub over " \
                             "att-hub (R89)"


def test_pitfall2_rt_ipsec_importing_vcn_routes_bypasses_the_firewall() -> None:
    """rt-ipsec keeping the VCN-type import learns 10.10.1.0/24 -> att-spoke1, more specific than the static
    /16 to the hub (R88): walk 1 goes straight to the spoke, never INSPECTed."""
    def bypass(raw: dict[str, Any]) -> None:
        named(raw["route_tables"], "rt-ipsec")["import_distribution"] = "rd-ipsec"
        raw["distributions"].append({"name": "rd-ipsec", "statements": [
            {"priority": 10, "match": {"attachment_type": "VCN"}}]})

    walk = walk1(hub(bypass))
    assert walk["result"] == "DELIVERED" and "INSPECT" not in [h["action"] for h in walk["hops"]]
    assert steps(walk)[2:] == [("DRG", "att-tun1", "FORWARD", "att-spoke1"),
                               ("VCN", "att-spoke1", "DELIVER", "sn-app1")]
    assert walk["hops"][2]["matchedRule"] == "10.10.1.0/24"


# ---- R69-R71: subnet egress ---------------------------------------------------------------------------


def test_r69_a_vcn_walk_starts_at_the_table_of_the_sources_subnet(example1: RouteEngine) -> None:
    assert example1.trace("vcn-hub", "10.0.1.9", "10.10.1.10")["hops"][0]["routeTable"] == "rt-fw"
    with pytest.raises(ValueError, match=r"no subnet of vcn-hub holds 10.0.9.9 .*\(R69\)"):
        example1.trace("vcn-hub", "10.0.9.9", "10.10.1.10")
    with pytest.raises(KeyError, match="unknown attachment or VCN 'vcn-nope'"):
        example1.trace("vcn-nope", "10.0.1.9", "10.10.1.10")


def test_r69_a_plain_cidr_subnet_uses_the_empty_default_table() -> None:
    """transport-mode.yaml's vcn-app lists its subnet as a CIDR: its table is ``default``, empty, so traffic
    leaving the VCN has no route (R82: DRG routes never reach VCN tables)."""
    walk = engine(example("transport-mode")).trace("vcn-app", "10.10.1.10", "172.20.10.10")
    assert walk["result"] == "DROPPED" and walk["reasonCode"] == "NO_ROUTE_IN_VCN"
    assert walk["hops"] == [vcn_hop("vcn-app", "10.10.1.0/24", "default", None, None, "DROP", None)]
    assert "(R70); add a rule to default (R82" in walk["reason"]


def test_r70_the_same_subnet_is_never_routed() -> None:
    e = hub(lambda raw: vcn_table(raw, "vcn-spoke1", "rt-sp1")["rules"].append(
        {"destination": "10.10.1.0/24", "target": "drg"}))
    assert e.trace("vcn-spoke1", "10.10.1.10", "10.10.1.20") == {
        "result": "DELIVERED", "reason": None, "reasonCode": None,
        "hops": [vcn_hop("vcn-spoke1", "sn-app1", None, None, None, "DELIVER", "sn-app1")]}


def test_r70_local_route_then_a_static_rule_for_the_same_prefix_wins() -> None:
    local = hub().trace("vcn-spoke1", "10.10.1.10", "10.10.2.5")
    assert local["hops"] == [vcn_hop("vcn-spoke1", "sn-app1", "rt-sp1", "10.10.0.0/16", "LOCAL", "DELIVER", None)]
    e = hub(lambda raw: vcn_table(raw, "vcn-spoke1", "rt-sp1")["rules"].append(
        {"destination": "10.10.0.0/16", "target": "drg"}))
    walk = e.trace("vcn-spoke1", "10.10.1.10", "10.10.2.5")
    assert walk["hops"][0] == vcn_hop("vcn-spoke1", "sn-app1", "rt-sp1", "10.10.0.0/16", "STATIC", "VCN_ROUTE",
                                      "att-spoke1")


def test_r70_no_rule_for_a_destination_outside_the_vcn_drops() -> None:
    e = hub(lambda raw: vcn_table(raw, "vcn-spoke1", "rt-sp1").update(rules=[]))
    walk = e.trace("vcn-spoke1", "10.10.1.10", "172.20.10.10")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "NO_ROUTE_IN_VCN")
    assert walk["reason"].startswith("no route to 172.20.10.10 in rt-sp1 of vcn-spoke1: it is outside 10.10.0.0/16")


def test_r71_target_drg_enters_on_the_vcns_attachment_or_nowhere(example1: RouteEngine) -> None:
    assert steps(walk2(example1))[:2] == [("VCN", "sn-app1", "VCN_ROUTE", "att-spoke1"),
                                          ("DRG", "att-spoke1", "FORWARD", "att-hub")]
    e = hub(lambda raw: raw["attachments"].remove(named(raw["attachments"], "att-spoke2")))
    walk = e.trace("vcn-spoke2", "10.11.1.10", "10.10.1.10")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "NO_DRG_ATTACHMENT")
    assert walk["hops"] == [vcn_hop("vcn-spoke2", "sn-app2", "rt-sp2", "0.0.0.0/0", "STATIC", "DROP", "drg")]


def test_r93_gateway_targets_leave_scope() -> None:
    e = hub(lambda raw: vcn_table(raw, "vcn-spoke1", "rt-sp1")["rules"].append(
        {"destination": "203.0.113.0/24", "target": "nat_gateway"}))
    walk = e.trace("vcn-spoke1", "10.10.1.10", "203.0.113.7")
    assert (walk["result"], walk["reasonCode"]) == ("LEFT_SCOPE", "NAT_GATEWAY")
    assert walk["hops"] == [vcn_hop("vcn-spoke1", "sn-app1", "rt-sp1", "203.0.113.0/24", "STATIC", "VCN_ROUTE",
                                    "nat_gateway")]


# ---- R72, R91: appliances ---------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "why"), [({"state": "stopped"}, "is stopped"),
                                             ({"skip_source_dest_check": False}, "checks source/destination")])
def test_r72_an_appliance_that_cannot_forward_blackholes_its_traffic(change: dict[str, Any], why: str) -> None:
    walk = walk1(hub(lambda raw: fw1(raw).update(change)))
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "PRIVATE_IP_TARGET_DOWN")
    assert walk["hops"][-1] == vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", "10.10.0.0/16", "STATIC", "DROP",
                                       "fw1", ingress=True)
    assert f"appliance fw1 (10.0.1.4) {why}" in walk["reason"] and "(R72)" in walk["reason"]


def test_r91_a_deny_policy_drops_at_the_inspect_hop() -> None:
    walk = walk1(hub(lambda raw: fw1(raw).update(policy="deny")))
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "APPLIANCE_DENY")
    assert walk["hops"][-1] == fw1_hop("DENY")
    assert walk["reason"] == "fw1 (10.0.1.4) denies 172.20.10.10 -> 10.10.1.10 by its policy (R91)"


def test_r91_the_policy_is_first_match() -> None:
    e = hub(lambda raw: fw1(raw).update(policy=[{"action": "deny", "src": "172.20.10.0/24", "dst": "10.11.0.0/16"},
                                                {"action": "allow"}]))
    assert walk1(e)["result"] == "DELIVERED"
    assert walk1(e, "10.11.1.10")["reasonCode"] == "APPLIANCE_DENY"


def test_r91_the_appliance_forwards_through_its_egress_subnet() -> None:
    def egress(raw: dict[str, Any]) -> None:
        hub_vcn = vcn_of(raw, "vcn-hub")
        hub_vcn["subnets"].append({"name": "sn-out", "cidr": "10.0.2.0/24", "route_table": "rt-out"})
        hub_vcn["route_tables"].append({"name": "rt-out", "rules": [{"destination": "10.0.0.0/8", "target": "drg"}]})
        fw1(raw)["egress_subnet"] = "sn-out"

    walk = walk1(hub(egress))
    assert walk["hops"][4] == appliance_hop("vcn-hub", "sn-fw", "fw1", "10.0.1.4", "ALLOW", "sn-out")
    assert walk["hops"][5] == vcn_hop("vcn-hub", "sn-out", "rt-out", "10.0.0.0/8", "STATIC", "VCN_ROUTE", "att-hub")
    assert walk["result"] == "DELIVERED"


# ---- R73-R75: VCN ingress ---------------------------------------------------------------------------


def test_r73_an_ingress_table_may_not_send_to_the_drg() -> None:
    """The validator refuses it; the trace of such a file (built without the validator) drops too."""
    e = hub(lambda raw: vcn_table(raw, "vcn-hub", "rt-hub-ingress")["rules"][0].update(target="drg"))
    walk = walk1(e)
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "INGRESS_TARGET_REFUSED")
    assert walk["hops"][-1] == vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", "10.10.0.0/16", "STATIC", "DROP",
                                       "drg", ingress=True)
    assert "(R73)" in walk["reason"]


def test_r74_no_ingress_table_delivers_locally_and_nothing_else() -> None:
    e = hub(lambda raw: named(raw["route_tables"], "rt-hub").update(
        static_routes=[{"destination": "192.0.2.0/24", "next_hop": "att-spoke1"}]))
    walk = e.trace("att-hub", "10.0.1.9", "192.0.2.1")
    assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "NO_ROUTE_IN_VCN")
    assert walk["hops"][-1] == vcn_hop("vcn-spoke1", "att-spoke1", None, None, None, "DROP", None, ingress=True)
    assert "the implicit ingress table of att-spoke1 (R74)" in walk["reason"]


def test_r75_ingress_local_route_when_no_static_rule_is_more_specific(example1: RouteEngine) -> None:
    walk = example1.trace("att-spoke1", "10.10.1.10", "10.0.1.9")  # rt-spoke 0/0 -> att-hub
    assert walk["hops"][-1] == vcn_hop("vcn-hub", "att-hub", "rt-hub-ingress", "10.0.0.0/16", "LOCAL", "DELIVER",
                                       "sn-fw", ingress=True)


def test_r75_an_ingress_rule_to_an_lpg_leaves_scope() -> None:
    e = hub(lambda raw: vcn_table(raw, "vcn-hub", "rt-hub-ingress")["rules"][0].update(target={"lpg": "lpg1"}))
    walk = walk1(e)
    assert (walk["result"], walk["reasonCode"]) == ("LEFT_SCOPE", "LPG")
    assert walk["hops"][-1]["action"] == "VCN_ROUTE" and walk["hops"][-1]["nextHop"] == "lpg lpg1"


# ---- R89, R90 -----------------------------------------------------------------------------------------


def test_r89_a_loop_without_the_drg_is_caught_at_the_appliance() -> None:
    """rt-fw sending the spokes back to fw1: appliance -> subnet -> appliance, same state (R89)."""
    e = hub(lambda raw: vcn_table(raw, "vcn-hub", "rt-fw")["rules"][0].update(target={"private_ip": "fw1"}))
    walk = walk1(e)
    assert walk["reasonCode"] == "ROUTING_LOOP"
    assert walk["hops"][-1] == appliance_hop("vcn-hub", "sn-fw", "fw1", "10.0.1.4", None, None, action="DROP")


def test_r89_more_than_16_drg_passes_is_a_loop() -> None:
    walk = chain(20).trace("v0", "10.0.1.10", "192.0.2.1")
    assert walk["reasonCode"] == "ROUTING_LOOP" and walk["reason"] == "routing loop: more than 16 DRG passes (R89)"
    assert [h["action"] for h in walk["hops"] if h["kind"] == "DRG"] == ["FORWARD"] * 16 + ["DROP"]
    short = chain(3).trace("v0", "10.0.1.10", "192.0.2.1")  # round the ring, back where it started
    assert short["reason"] == "routing loop: the packet to 192.0.2.1 is back at subnet sn of v0 (R89)"
    assert short["hops"][-1] == vcn_hop("v0", "sn", None, None, None, "DROP", None)


def test_r90_r24_is_checked_per_drg_pass() -> None:
    """tun2 -> hub firewall -> tun1: each pass is IPSec -> VCN or VCN -> IPSec, so it is allowed."""
    e = hub(lambda raw: named(raw["route_tables"], "rt-ipsec")["static_routes"].append(
        {"destination": "172.20.10.0/24", "next_hop": "att-hub"}))
    walk = e.trace("att-tun2", "172.20.10.20", "172.20.10.10")
    assert walk["result"] == "DELIVERED"
    assert [s for s in steps(walk) if s[0] == "DRG"] == [
        ("DRG", "att-tun2", "FORWARD", "att-hub"), ("DRG", "att-hub", "FORWARD", "att-tun1"),
        ("DRG", "att-tun1", "ENCRYPT", "att-tun1-lb"), ("DRG", "att-tun1-lb", "FORWARD", "att-vc1"),
        ("DRG", "att-vc1", "EXIT", None)]
