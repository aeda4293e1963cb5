"""Transit validation (oci-drg-transit.md R69-R93): worked example 1 mutated once per rule and warning.

Each case edits ``examples/hub-firewall.yaml`` (section 8) and checks the exact object, field and rule,
with a fragment of the message and of the fix; the four pitfalls of section 8 are tests of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.config.problems import Problem
from tests.support.factory import example
from tests.support.paths import ROOT
from tests.support.validation import Edit, sites
from tests.support.validation import check as check_example

FW1 = {"private_ip": "fw1"}


def check(edit: Edit) -> tuple[list[Problem], list[Problem]]:
    return check_example(edit, "hub-firewall")


def one(found: list[Problem], site: tuple[str, str | None, str], message: str, fix: str) -> Problem:
    """The only problem found, at ``site``, with these fragments in its message and fix."""
    assert sites(found) == [site], [p.to_json() for p in found]
    assert message in found[0].message and fix in found[0].fix, found[0].to_json()
    return found[0]


def vcn(raw: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in raw["vcns"] if v["name"] == name)
    return found


def hub_table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in vcn(raw, "vcn-hub")["route_tables"] if t["name"] == name)
    return found


def drg_table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in raw["route_tables"] if t["name"] == name)
    return found


def import_into_ipsec(*matches: Any) -> Edit:
    """rt-ipsec imports through a new rd-ipsec (base 11.2's design, pitfalls 2 and 3)."""
    def edit(raw: dict[str, Any]) -> None:
        drg_table(raw, "rt-ipsec")["import_distribution"] = "rd-ipsec"
        raw["distributions"].append({"name": "rd-ipsec", "statements": [
            {"priority": 10 * (i + 1), "match": m} for i, m in enumerate(matches)]})
    return edit


def test_worked_example_1_is_valid_without_warnings() -> None:
    """Section 8: "Valid; no warnings"."""
    assert check(lambda raw: None) == ([], [])


# ---------------------------------------------------------------------------------------------- R72, R91

def test_pitfall_4_r72_an_appliance_with_its_check_on_is_an_error() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-hub")["appliances"][0].update(skip_source_dest_check=False))
    assert [p.to_json() for p in errors] == [{
        "object": "vcn-hub", "field": "appliances[0].skip_source_dest_check", "rule": "R72",
        "message": "appliance fw1 has its source/destination check on: its VNIC drops every packet not "
                   "addressed to it, so nothing routed to 10.0.1.4 is forwarded",
        "fix": "set skip_source_dest_check: true on fw1"}]


def test_r72_the_appliance_subnet_is_a_subnet_of_its_vcn() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-hub")["appliances"][0].update(subnet="sn-fx"))
    one(errors, ("vcn-hub", "appliances[0].subnet", "R72"), "subnet sn-fx of appliance fw1 is not a subnet of "
        "vcn-hub", "(did you mean sn-fw?)")


def test_r72_the_private_ip_lies_in_its_subnet() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-hub")["appliances"][0].update(private_ip="10.0.2.4"))
    one(errors, ("vcn-hub", "appliances[0].private_ip", "R72"), "10.0.2.4 of appliance fw1 is outside its "
        "subnet sn-fw (10.0.1.0/24)", "use an address of 10.0.1.0/24")


def test_r91_the_egress_subnet_exists() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-hub")["appliances"][0].update(egress_subnet="sn-out"))
    one(errors, ("vcn-hub", "appliances[0].egress_subnet", "R91"), "egress subnet sn-out of appliance fw1",
        "remove egress_subnet (default: its own subnet sn-fw)")


@pytest.mark.parametrize(("name", "message", "fix"), [
    ("fw1", "fw1 of rt-sp1 (10.20.0.0/16) is an appliance of vcn-hub, not of vcn-spoke1", "declare fw1 under "
     "appliances of vcn-spoke1"),
    ("fw2", "fw2 of rt-hub-ingress (10.10.0.0/16) is not a declared appliance", "(did you mean fw1?)"),
])
def test_r72_a_private_ip_target_is_an_appliance_of_the_same_vcn(name: str, message: str, fix: str) -> None:
    def edit(raw: dict[str, Any]) -> None:
        if name == "fw1":
            vcn(raw, "vcn-spoke1")["route_tables"][0]["rules"].append(
                {"destination": "10.20.0.0/16", "target": FW1})
        else:
            hub_table(raw, "rt-hub-ingress")["rules"][0]["target"] = {"private_ip": name}
    errors, _ = check(edit)
    where = "route_tables[0].rules[1].target" if name == "fw1" else "route_tables[0].rules[0].target"
    one(errors, ("vcn-spoke1" if name == "fw1" else "vcn-hub", where, "R72"), message, fix)


# ---------------------------------------------------------------------------------------------- R69, R71, R73

@pytest.mark.parametrize("target", ["drg", "internet_gateway", "nat_gateway"])
def test_r73_an_ingress_table_targets_no_gateway_of_the_vcn_nor_the_drg(target: str) -> None:
    errors, _ = check(lambda raw: hub_table(raw, "rt-hub-ingress")["rules"][2].update(target=target))
    one(errors, ("vcn-hub", "route_tables[0].rules[2].target", "R73"), "rt-hub-ingress is the ingress route "
        f"table of att-hub: its rule 172.20.10.0/24 may not target {target}", "give att-hub another "
        "ingress_route_table")


@pytest.mark.parametrize("target", [{"lpg": "lpg1"}, {"service_gateway": "sgw1"}, FW1])
def test_r73_an_ingress_table_may_target_a_private_ip_an_lpg_or_a_service_gateway(target: Any) -> None:
    assert check(lambda raw: hub_table(raw, "rt-hub-ingress")["rules"][2].update(target=target)) == ([], [])


def test_r73_the_same_rule_is_fine_in_a_table_that_is_no_ingress_table() -> None:
    """rt-fw targets the DRG: R73 applies only once a table is some attachment's ingress table."""
    errors, _ = check(lambda raw: raw["attachments"][0].update(ingress_route_table="rt-fw"))
    assert sites(errors) == [("vcn-hub", f"route_tables[1].rules[{i}].target", "R73") for i in range(3)]


@pytest.mark.parametrize(("table", "why", "fix"), [
    ("rt-sp1", " (it is a route table of vcn-spoke1)", "define rt-sp1 under route_tables of vcn-hub"),
    ("rt-hub", " (it is a DRG route table; ingress_route_table names a VCN route table)", "remove "
     "ingress_route_table (R74)"),
    ("rt-hub-ingres", "", "(did you mean rt-hub-ingress?)"),
])
def test_r73_the_ingress_table_is_a_table_of_the_attached_vcn(table: str, why: str, fix: str) -> None:
    errors, _ = check(lambda raw: raw["attachments"][0].update(ingress_route_table=table))
    one(errors, ("att-hub", "ingress_route_table", "R73"), f"{table} is not a route table of vcn-hub, the VCN "
        f"of att-hub{why}", fix)


def test_r73_r74_the_default_table_exists_implicitly() -> None:
    """``default`` (empty unless listed) is a valid ingress table: ingress routing switched off (R74)."""
    assert check(lambda raw: raw["attachments"][0].update(ingress_route_table="default")) == ([], [])


def test_r69_a_subnet_table_is_a_table_of_its_vcn() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-hub")["subnets"][0].update(route_table="rt-fx"))
    one(errors, ("vcn-hub", "subnets[0].route_table", "R69"), "route table rt-fx of subnet sn-fw is not a "
        "route table of vcn-hub", "(did you mean rt-fw?)")


@pytest.mark.parametrize(("target", "rule"), [(FW1, "R71"), ("nat_gateway", "R71"), ("drg", None),
                                              ("internet_gateway", None)])
def test_r71_an_ipv6_destination_targets_the_drg_or_an_internet_gateway(target: Any, rule: str | None) -> None:
    errors, _ = check(lambda raw: hub_table(raw, "rt-fw")["rules"].append(
        {"destination": "2001:db8::/32", "target": target}))
    if rule is None:
        assert errors == []
    else:
        one(errors, ("vcn-hub", "route_tables[1].rules[3].target", rule), "an IPv6 destination may only target "
            "the DRG or an internet gateway", "target drg or internet_gateway")


def test_names_are_unique_within_a_vcn() -> None:
    def edit(raw: dict[str, Any]) -> None:
        hub = vcn(raw, "vcn-hub")
        hub["subnets"].append({"name": "sn-fw", "cidr": "10.0.2.0/24"})
        hub["appliances"].append({"name": "fw1", "private_ip": "10.0.1.5", "subnet": "sn-fw",
                                  "skip_source_dest_check": True})
        hub["route_tables"].append({"name": "rt-fw"})
    errors, _ = check(edit)
    assert sites(errors) == [("vcn-hub", "subnets[1]", "names"), ("vcn-hub", "appliances[1]", "names"),
                             ("vcn-hub", "route_tables[2]", "names")]
    assert "two subnets of vcn-hub are named sn-fw" in errors[0].message


def test_r22_a_subnet_object_lies_inside_the_vcn_cidrs() -> None:
    errors, _ = check(lambda raw: vcn(raw, "vcn-spoke1")["subnets"][0].update(cidr="10.20.1.0/24"))
    one(errors, ("vcn-spoke1", "subnets[0]", "R22"), "subnet 10.20.1.0/24 is outside the CIDRs of vcn-spoke1",
        "add a CIDR covering 10.20.1.0/24")


# ---------------------------------------------------------------------------------------------- R44, R92

@pytest.mark.parametrize(("match", "words"), [
    ("all", "MATCH_ALL"),
    ({"attachment_type": "VIRTUAL_CIRCUIT"}, "DRG_ATTACHMENT_TYPE VIRTUAL_CIRCUIT"),
    ({"attachment": "att-vc1"}, "DRG_ATTACHMENT_ID att-vc1"),
])
def test_pitfall_1_r92b_the_hub_table_imports_nothing_from_the_transport_only_vc(match: Any, words: str) -> None:
    """R92 (b) is R44.4 on the hub table: rd-hub with MATCH_ALL, the VC type or the VC's id."""
    errors, _ = check(lambda raw: raw["distributions"][0]["statements"].append({"priority": 40, "match": match}))
    assert [p.to_json() for p in errors] == [{
        "object": "rd-hub", "field": "statements[3]", "rule": "R44",
        "message": f"{words} imports routes from att-vc1, which is transport-only",
        "fix": "remove statement priority 40 from rd-hub, or set att-vc1 transport_only: false"}]


# ---------------------------------------------------------------------------------------------- warnings

def test_pitfall_1_all_traffic_mode_w_transit_shadow() -> None:
    """R83: in All Traffic mode MATCH_ALL is legal, but rt-hub imports att-hub's own 172.20.10.0/24."""
    def edit(raw: dict[str, Any]) -> None:
        raw["distributions"][0]["statements"].append({"priority": 40, "match": "all"})
        raw["attachments"][3]["transport_only"] = False
    errors, warnings = check(edit)
    assert errors == []
    found = one(warnings, ("rt-hub", "import_distribution", "W-TRANSIT-SHADOW"), "R83: rt-hub imports "
                "172.20.10.0/24 from att-hub (ingress route table rt-hub-ingress, provenance VCN, empty AS path) "
                "and from att-tun1, att-tun2", "import into rt-hub without att-hub (MATCH_ALL in rd-hub imports "
                "it), or remove 172.20.10.0/24 from rt-hub-ingress")
    assert "wins over VC/IPSec routes on AS path length" in found.message


def test_w_transit_shadow_vcn_against_vcn() -> None:
    """R83: a hub ingress rule with a spoke's exact subnet competes with the spoke (VCN vs VCN)."""
    def edit(raw: dict[str, Any]) -> None:
        hub_table(raw, "rt-hub-ingress")["rules"].append({"destination": "10.10.1.0/24", "target": FW1})
        raw["distributions"][0]["statements"].append({"priority": 5, "match": {"attachment": "att-hub"}})
    _, warnings = check(edit)
    shadowed = [p for p in warnings if "10.10.1.0/24" in p.message]
    one(shadowed, ("rt-hub", "import_distribution", "W-TRANSIT-SHADOW"), "imports 10.10.1.0/24 from att-hub "
        "(ingress route table rt-hub-ingress, provenance VCN, empty AS path) and from att-spoke1",
        "DRG_ATTACHMENT_ID att-hub in rd-hub imports it")


def test_pitfall_2_w_bypass_rt_ipsec_importing_vcn_routes() -> None:
    """R88: the static /16s to att-hub lose to the spokes' /24s: walk 1 skips the firewall."""
    _, warnings = check(import_into_ipsec({"attachment_type": "VCN"}))
    bypass = [p for p in warnings if p.rule == "W-BYPASS"]
    assert sites(bypass) == [("rt-ipsec", "static_routes[0]", "W-BYPASS"),
                             ("rt-ipsec", "static_routes[1]", "W-BYPASS")]
    assert bypass[0].message == ("R88: rt-ipsec holds static 10.10.0.0/16 -> att-hub but imports the more "
                                 "specific 10.10.1.0/24 from att-spoke1: longest prefix match sends that traffic "
                                 "to att-spoke1, bypassing att-hub")
    assert bypass[0].fix == ("import into rt-ipsec without att-spoke1 (DRG_ATTACHMENT_TYPE VCN in rd-ipsec "
                             "imports it), or add static rules for 10.10.1.0/24 -> att-hub")
    assert "W-ECHO" in {p.rule for p in warnings}  # the VCN type imports att-hub too (pitfall 3)


def test_w_bypass_in_the_spoke_table() -> None:
    """R88: rt-spoke's static 0.0.0.0/0 -> att-hub with the other spokes' subnets imported."""
    def edit(raw: dict[str, Any]) -> None:
        drg_table(raw, "rt-spoke")["import_distribution"] = "rd-spoke"
        raw["distributions"].append({"name": "rd-spoke", "statements": [
            {"priority": 10, "match": {"attachment": "att-spoke2"}}]})
    _, warnings = check(edit)
    one(warnings, ("rt-spoke", "static_routes[0]", "W-BYPASS"), "static 0.0.0.0/0 -> att-hub but imports the "
        "more specific 10.11.1.0/24 from att-spoke2", "import into rt-spoke without att-spoke2")


def test_pitfall_3_w_echo_rt_ipsec_importing_the_hub() -> None:
    """R84, R87: rt-ipsec importing att-hub instead of static rules advertises 172.20.10.0/24 back."""
    def edit(raw: dict[str, Any]) -> None:
        import_into_ipsec({"attachment": "att-hub"})(raw)
        drg_table(raw, "rt-ipsec")["static_routes"] = []
    errors, warnings = check(edit)
    assert errors == []
    assert [p.to_json() for p in warnings] == [{
        "object": "rt-ipsec", "field": "import_distribution", "rule": "W-ECHO",
        "message": "R84: rt-ipsec would advertise 172.20.10.0/24 (from att-hub's ingress route table "
                   "rt-hub-ingress) back to att-tun1, att-tun2, whose peer announces it",
        "fix": "import into rt-ipsec without att-hub (DRG_ATTACHMENT_ID att-hub in rd-ipsec imports it): use "
               "static rules for the spoke CIDRs -> att-hub instead (R86, R92), or remove 172.20.10.0/24 from "
               "rt-hub-ingress"}]


def test_w_echo_from_a_static_rule() -> None:
    """R84: static rules of a tunnel table are advertised, so one for the on-prem prefix echoes."""
    _, warnings = check(lambda raw: drg_table(raw, "rt-ipsec")["static_routes"].append(
        {"destination": "172.20.10.0/24", "next_hop": "att-hub"}))
    one(warnings, ("rt-ipsec", "static_routes[2]", "W-ECHO"), "advertise 172.20.10.0/24 (from a static rule",
        "remove static route 172.20.10.0/24 from rt-ipsec")


# ---------------------------------------------------------------------------------------------- drg validate

def validate_json(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "controlplane", "validate", str(path), "--json"],
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_drg_validate_json_reports_the_transit_errors_and_warnings(tmp_path: Path) -> None:
    raw = example("hub-firewall")
    vcn(raw, "vcn-hub")["appliances"][0]["skip_source_dest_check"] = False
    doc = validate_json(raw, tmp_path)
    assert doc["valid"] is False
    assert [(e["object"], e["field"], e["rule"]) for e in doc["errors"]] == [
        ("vcn-hub", "appliances[0].skip_source_dest_check", "R72")]
    raw = example("hub-firewall")
    import_into_ipsec({"attachment": "att-hub"})(raw)
    drg_table(raw, "rt-ipsec")["static_routes"] = []
    doc = validate_json(raw, tmp_path)
    assert doc["valid"] is True
    assert [(w["object"], w["field"], w["rule"]) for w in doc["warnings"]] == [
        ("rt-ipsec", "import_distribution", "W-ECHO")]
    assert "172.20.10.0/24" in doc["warnings"][0]["message"]
