"""Validation beyond IPSec over FastConnect: names, references, static rules, distributions, limits,
sessions. Every error names the object and the rule and says how to fix it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.config.validate import validate_file, validation_json
from tests.support.paths import EXAMPLES
from tests.support.validation import Edit, check, sites

# ------------------------------------------------------------------------------ names and references

def test_duplicate_names() -> None:
    errors, _ = check(lambda raw: raw["route_tables"].append({"name": "rt-vc"}))
    assert sites(errors) == [("rt-vc", None, "names")]


def test_r2_r46_system_names_are_taken() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["attachments"].append({"name": "att-tun1-lb", "type": "VCN", "vcn": "vcn-app"})
        raw["route_tables"].append({"name": "att-vc1-lb-rt"})
        raw["distributions"].append({"name": "att-vc1-lb-rd"})
    errors, _ = check(edit)
    assert {("att-tun1-lb", "name", "R2"), ("att-vc1-lb-rt", "name", "R46"),
            ("att-vc1-lb-rd", "name", "R46")} <= set(sites(errors))


@pytest.mark.parametrize(("edit", "site", "hint"), [
    (lambda raw: raw["attachments"][0].update(route_table="rt-vnc"), ("att-vcn", "route_table"), "rt-vcn"),
    (lambda raw: raw["attachments"][0].update(vcn="vcn-ap"), ("att-vcn", "vcn"), "vcn-app"),
    (lambda raw: raw["route_tables"][0].update(import_distribution="rd-vnc"), ("rt-vcn", "import_distribution"),
     "rd-vcn"),
    (lambda raw: raw["distributions"][0]["statements"].append({"priority": 5, "match": {"attachment": "att-vnc"}}),
     ("rd-vcn", "statements[2]"), "att-vcn"),
    (lambda raw: raw["attachments"][2].update(transport_attachment="att-vc2"), ("att-tun1", "transport_attachment"),
     "att-vc1"),
    (lambda raw: raw["onprem"][0].update(session="att-vc"), ("edge", "session"), "att-vc1"),
])
def test_unknown_references_with_did_you_mean(edit: Edit, site: tuple[str, str], hint: str) -> None:
    errors, _ = check(edit)
    assert (errors[0].object, errors[0].field, errors[0].rule) == (*site, "reference")
    assert f"(did you mean {hint}?)" in errors[0].fix


def test_r7_transport_attachment_must_be_a_vc() -> None:
    errors, _ = check(lambda raw: raw["attachments"][2].update(transport_attachment="att-vcn"))
    assert ("att-tun1", "transport_attachment", "R7") in sites(errors)


def test_r46_user_objects_may_not_use_system_tables() -> None:
    errors, _ = check(lambda raw: raw["attachments"][0].update(route_table="att-vc1-lb-rt"))
    assert sites(errors) == [("att-vcn", "route_table", "R46")]
    errors, _ = check(lambda raw: raw["route_tables"][0].update(import_distribution="att-vc1-lb-rd"))
    assert sites(errors) == [("rt-vcn", "import_distribution", "R46")]


def test_r5_user_statements_may_not_import_loopbacks() -> None:
    errors, _ = check(lambda raw: raw["distributions"][2]["statements"].append(
        {"priority": 40, "match": {"attachment": "att-tun1-lb"}}))
    assert sites(errors) == [("rd-vc", "statements[1]", "R5")]


def test_r38_onprem_peer_on_a_static_tunnel() -> None:
    def edit(raw: dict[str, Any]) -> None:
        tunnel = raw["attachments"][3]
        del tunnel["bgp"]
        tunnel.update(routing="STATIC", static_routes=["172.20.10.0/24"])
    errors, _ = check(edit)
    assert sites(errors) == [("firewall-t2", "session", "R38")]


def test_r3_a_vcn_is_attached_once_and_r22_subnets_lie_in_its_cidrs() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["attachments"].append({"name": "att-vcn-2", "type": "VCN", "vcn": "vcn-app", "route_table": "rt-vcn"})
        raw["vcns"][0]["subnets"].append("10.20.0.0/24")
    errors, _ = check(edit)
    assert sites(errors) == [("att-vcn-2", "vcn", "R3"), ("vcn-app", "subnets[1]", "R22")]


# ------------------------------------------------------------------------------ R14 static rules

@pytest.mark.parametrize(("next_hop", "words"), [("att-vc1", "VIRTUAL_CIRCUIT"), ("att-tun1", "IPSEC_TUNNEL"),
                                                 ("att-tun1-lb", "LOOPBACK")])
def test_r14_static_next_hop_must_be_a_vcn(next_hop: str, words: str) -> None:
    errors, _ = check(lambda raw: raw["route_tables"][0].update(
        static_routes=[{"destination": "10.20.0.0/16", "next_hop": next_hop}]))
    assert sites(errors) == [("rt-vcn", "static_routes[0]", "R14")] and words in errors[0].message


def test_r14_one_rule_per_cidr_and_at_most_100() -> None:
    routes = [{"destination": f"10.{i // 256}.{i % 256}.0/24", "next_hop": "att-vcn"} for i in range(101)]
    routes.append({"destination": "10.0.0.0/24", "next_hop": "att-vcn"})
    errors, _ = check(lambda raw: raw["route_tables"][0].update(static_routes=routes))
    assert sites(errors) == [("rt-vcn", "static_routes", "R14"), ("rt-vcn", "static_routes[101]", "R14")]


def test_r17_unknown_static_next_hop_is_a_blackhole_warning() -> None:
    errors, warnings = check(lambda raw: raw["route_tables"][0].update(
        static_routes=[{"destination": "10.20.0.0/16", "next_hop": "att-vcm"}]))
    assert errors == [] and sites(warnings) == [("rt-vcn", "static_routes[0]", "R17")]
    assert "did you mean att-vcn?" in warnings[0].fix


# ------------------------------------------------------------------------------ distributions

def test_r20_unique_priorities() -> None:
    errors, _ = check(lambda raw: raw["distributions"][0]["statements"].append(
        {"priority": 10, "match": {"attachment": "att-tun1"}}))
    assert sites(errors) == [("rd-vcn", "statements[2]", "R20")]
    assert errors[0].fix == "give statements[2] a priority not used in rd-vcn"


def test_r25_statements_per_distribution() -> None:
    statements = [{"priority": i, "match": "all"} for i in range(301)]
    errors, _ = check(lambda raw: raw["distributions"].append({"name": "rd-big", "statements": statements}))
    assert sites(errors) == [("rd-big", "statements", "R25")]


def test_r25_import_distributions_per_drg() -> None:
    errors, _ = check(lambda raw: raw["distributions"].extend({"name": f"rd-{i}"} for i in range(100)))
    assert sites(errors) == [("distributions", None, "R25")]


def test_limits_route_tables_per_drg() -> None:
    errors, _ = check(lambda raw: raw["route_tables"].extend({"name": f"rt-{i}"} for i in range(95)))
    assert sites(errors) == [("route_tables", None, "limits")]


def test_r11_only_the_default_export_distribution() -> None:
    errors, _ = check(lambda raw: raw["distributions"].append({"name": "rd-out", "type": "EXPORT"}))
    assert sites(errors) == [("rd-out", "type", "R11")]
    errors, _ = check(lambda raw: raw["distributions"].append(
        {"name": "autogen-rd-export", "type": "EXPORT", "statements": [{"priority": 1, "match": {
            "attachment_type": "VCN"}}]}))
    assert sites(errors) == [("autogen-rd-export", "statements", "R11")]
    errors, _ = check(lambda raw: raw["route_tables"][0].update(import_distribution="autogen-rd-export"))
    assert sites(errors) == [("rt-vcn", "import_distribution", "R11")]


# ------------------------------------------------------------------------------ sessions and sockets

def test_r53_distinct_customer_addresses_and_r52_different_asn() -> None:
    def edit(raw: dict[str, Any]) -> None:
        vc2 = yaml.safe_load(yaml.safe_dump(raw["attachments"][1]))
        vc2.update(name="att-vc2", route_table="rt-vc")
        vc2["bgp"].update(peer="127.0.0.9", customer_asn=31898)
        raw["attachments"].append(vc2)
    errors, _ = check(edit)
    assert sites(errors) == [("att-vc2", "bgp.customer_ip", "R53"), ("att-vc2", "bgp.customer_asn", "R52")]


def test_sockets_must_be_unambiguous() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["attachments"][2]["bgp"].update(peer="127.0.0.2", connect="both")
        raw["api"] = {"listen": "127.0.0.1:1790"}
    errors, _ = check(edit)
    assert sites(errors) == [("att-tun1", "bgp.peer", "sockets"), ("api", "listen", "sockets")]


def test_warnings_r55_hold_time_and_r65_ignored_static_routes() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["attachments"][1]["bgp"]["hold_time"] = 9
        raw["attachments"][2]["static_routes"] = ["172.20.10.0/24"]
    errors, warnings = check(edit)
    assert errors == [] and sites(warnings) == [("att-vc1", "bgp.hold_time", "R55"),
                                                ("att-tun1", "static_routes", "R65")]


def test_limits_vcs_per_region_is_a_warning() -> None:
    def edit(raw: dict[str, Any]) -> None:
        for i in range(10):
            raw["attachments"].append({"name": f"vc-{i}", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc", "bgp": {
                "oracle_ip": f"10.99.{i}.1/30", "customer_ip": f"10.99.{i}.2/30", "customer_asn": 65001,
                "peer": f"127.0.3.{i}"}})
    errors, warnings = check(edit)
    assert errors == [] and sites(warnings) == [("attachments", None, "limits")]


# ------------------------------------------------------------------------------ files and JSON

def test_validate_file_reports_schema_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("drg: {name: d, asn: 0}\n")
    config_, result = validate_file(path)
    assert config_ is None and sites(result.errors) == [("drg", "asn", "R51")]
    assert validation_json(result, config_) == {"valid": False, "errors": [result.errors[0].to_json()]}


def test_validation_json_of_a_valid_file() -> None:
    config_, result = validate_file(EXAMPLES / "transport-mode.yaml")
    doc = validation_json(result, config_)
    assert doc["valid"] is True and doc["warnings"] == []
    assert [a["name"] for a in doc["config"]["attachments"]][-2:] == ["att-tun1-lb", "att-tun2-lb"]
