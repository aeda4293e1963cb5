"""IPSec over FastConnect validation: section 11.2's rejected cases (R44), R43, R41, R45, R40."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controlplane.config.problems import Problem
from controlplane.config.validate import validate
from tests.support.factory import config, example

Edit = Callable[[dict[str, Any]], None]


def errors(raw: dict[str, Any]) -> list[Problem]:
    return validate(config(raw), "t.yaml").errors


def transport(edit: Edit) -> list[Problem]:
    raw = example("transport-mode")
    edit(raw)
    return errors(raw)


def add_statement(dist_index: int, match: Any, priority: int = 20) -> Edit:
    return lambda raw: raw["distributions"][dist_index]["statements"].append({"priority": priority, "match": match})


def sites(found: list[Problem]) -> list[tuple[str, str | None, str]]:
    return [(p.object, p.field, p.rule) for p in found]


def test_both_examples_are_valid_without_warnings() -> None:
    for name in ("transport-mode", "all-traffic"):
        result = validate(config(example(name)), f"{name}.yaml")
        assert result.ok and result.errors == [] and result.warnings == []


@pytest.mark.parametrize(("dist_index", "dist_name", "match", "words"), [
    (0, "rd-vcn", "all", "MATCH_ALL"),
    (0, "rd-vcn", {"attachment_type": "VIRTUAL_CIRCUIT"}, "DRG_ATTACHMENT_TYPE VIRTUAL_CIRCUIT"),
    (0, "rd-vcn", {"attachment": "att-vc1"}, "DRG_ATTACHMENT_ID att-vc1"),
    (1, "rd-ipsec", "all", "MATCH_ALL"),
    (1, "rd-ipsec", {"attachment_type": "VIRTUAL_CIRCUIT"}, "DRG_ATTACHMENT_TYPE VIRTUAL_CIRCUIT"),
    (1, "rd-ipsec", {"attachment": "att-vc1"}, "DRG_ATTACHMENT_ID att-vc1"),
])
def test_r44_4_nothing_else_may_import_from_a_transport_only_vc(dist_index: int, dist_name: str, match: Any,
                                                                words: str) -> None:
    """Section 11.2: MATCH_ALL, type VIRTUAL_CIRCUIT or id att-vc1 in rd-vcn or rd-ipsec is rejected."""
    found = transport(add_statement(dist_index, match))
    assert [p.to_json() for p in found] == [{
        "object": dist_name, "field": "statements[1]", "rule": "R44",
        "message": f"{words} imports routes from att-vc1, which is transport-only",
        "fix": f"remove statement priority 20 from {dist_name}, or set att-vc1 transport_only: false"}]


def test_r44_3_no_statement_may_be_added_to_the_vc_distribution() -> None:
    found = transport(add_statement(2, {"attachment_type": "VCN"}))
    assert sites(found) == [("rd-vc", "statements[0]", "R44")]
    assert "may import only from its loopbacks" in found[0].message
    assert found[0].fix == "remove statement priority 20 from rd-vc, or set att-vc1 transport_only: false"


def test_r44_2_no_static_rule_in_the_vc_table() -> None:
    found = transport(lambda raw: raw["route_tables"][2].update(
        static_routes=[{"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]))
    assert sites(found) == [("rt-vc", "static_routes[0]", "R44")]
    assert found[0].fix == "remove static route 10.20.0.0/16 from rt-vc, or set att-vc1 transport_only: false"


def test_r44_the_all_routes_distribution_on_a_table_in_use() -> None:
    """Section 11.2: assigning the default "ALL routes" distribution to a table in use is rejected."""
    found = transport(lambda raw: raw["route_tables"][0].update(import_distribution="autogen-rd-all"))
    assert sites(found) == [("rt-vcn", "import_distribution", "R44")]
    assert found[0].message == "MATCH_ALL imports routes from att-vc1, which is transport-only"
    assert "autogen-rd-all is OCI's default" in found[0].fix


def test_r44_an_attachment_on_the_default_vcn_table() -> None:
    found = transport(lambda raw: raw["attachments"][0].pop("route_table"))
    assert sites(found) == [("att-vcn", "route_table", "R44")]
    assert "autogen-rt-vcn imports autogen-rd-all" in found[0].fix


def test_r44_scope_unused_tables_do_not_block_transport_mode() -> None:
    """EMULATOR CHOICE: autogen-rt-vcn (MATCH_ALL) is unused in 11.2; an unused file table may import
    anything too."""
    def edit(raw: dict[str, Any]) -> None:
        raw["route_tables"].append({"name": "rt-spare", "import_distribution": "rd-spare"})
        raw["distributions"].append({"name": "rd-spare", "statements": [{"priority": 1, "match": "all"}]})
    assert transport(edit) == []


def test_r43_1_default_vc_table_without_static_rules_when_in_use() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["route_tables"].append({"name": "autogen-rt-other", "import_distribution": "autogen-rd-vcn",
                                    "static_routes": [{"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]})
        raw["attachments"].append({"name": "att-vc2", "type": "VIRTUAL_CIRCUIT", "bgp": {
            "oracle_ip": "192.168.101.1/30", "customer_ip": "192.168.101.2/30", "customer_asn": 65001,
            "peer": "127.0.0.9"}})
    found = transport(edit)
    assert sites(found) == [("autogen-rt-other", "static_routes[0]", "R43")]
    assert found[0].fix.endswith("or set att-vc1 transport_only: false")


def test_r48_all_traffic_allows_what_transport_mode_forbids() -> None:
    raw = example("all-traffic")
    raw["distributions"][0]["statements"].append({"priority": 30, "match": "all"})
    raw["route_tables"][2]["static_routes"] = [{"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]
    assert errors(raw) == []


def test_several_problems_are_all_reported() -> None:
    def edit(raw: dict[str, Any]) -> None:
        add_statement(0, "all")(raw)
        add_statement(1, {"attachment": "att-vc1"}, 30)(raw)
        add_statement(2, {"attachment_type": "VCN"}, 5)(raw)
        raw["route_tables"][2]["static_routes"] = [{"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]
    found = transport(edit)
    assert sorted(sites(found)) == [("rd-ipsec", "statements[1]", "R44"), ("rd-vc", "statements[0]", "R44"),
                                    ("rd-vcn", "statements[1]", "R44"), ("rt-vc", "static_routes[0]", "R44")]
    assert all(p.fix and p.message and p.file == "t.yaml" for p in found)


# ------------------------------------------------------------------------------ R41 table separation

def test_r41_tunnel_and_vc_may_not_share_a_table() -> None:
    found = transport(lambda raw: raw["attachments"][2].update(route_table="rt-vc"))
    assert ("att-tun1", "route_table", "R41") in sites(found)


def test_r41_on_the_default_table_too() -> None:
    def edit(raw: dict[str, Any]) -> None:
        for att in raw["attachments"][1:]:
            att.pop("route_table")
    found = transport(edit)
    assert ("att-tun1", "route_table", "R41") in sites(found)
    assert ("att-tun2", "route_table", "R41") in sites(found)


def test_r41_tables_may_not_share_an_import_distribution() -> None:
    raw = example("all-traffic")
    raw["route_tables"][1]["import_distribution"] = "rd-vc"
    found = errors(raw)
    assert sites(found) == [("rt-ipsec", "import_distribution", "R41")]


def test_r41_the_vc_table_may_not_import_the_tunnels() -> None:
    raw = example("all-traffic")
    raw["distributions"][2]["statements"].append({"priority": 40, "match": "all"})
    found = errors(raw)
    assert sites(found) == [("rd-vc", "statements[1]", "R41")]
    assert found[0].message == "MATCH_ALL imports routes from tunnel att-tun1 into rt-vc, the table of att-vc1"
    assert found[0].fix == "remove statement priority 40 from rd-vc"


def test_r41_the_tunnel_table_may_not_import_the_vc() -> None:
    raw = example("all-traffic")
    raw["distributions"][1]["statements"].append({"priority": 40, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}})
    assert sites(errors(raw)) == [("rd-ipsec", "statements[1]", "R41")]


# ------------------------------------------------------------------------------ R45 / R40

def test_r45_the_vc_table_needs_an_import_distribution() -> None:
    found = transport(lambda raw: raw["route_tables"][2].pop("import_distribution"))
    assert sites(found) == [("rt-vc", "import_distribution", "R45")]


@pytest.mark.parametrize(("priority", "rejected"), [(65535, True), (65534, True), (65533, False)])
def test_r45_system_priorities_are_reserved(priority: int, rejected: bool) -> None:
    raw = example("all-traffic")
    raw["distributions"][2]["statements"][0]["priority"] = priority
    found = errors(raw)
    assert sites(found) == ([("rd-vc", "statements[0]", "R45")] if rejected else [])
    if rejected:
        assert found[0].fix == "use a priority below 65534 for this statement"


def test_r40_headends_are_unique_and_must_be_advertised() -> None:
    found = transport(lambda raw: raw["attachments"][3].update(oracle_tunnel_ip="172.16.255.1"))
    assert ("att-tun2", "oracle_tunnel_ip", "R40") in sites(found)
    raw = example("transport-mode")
    raw["attachments"][1]["export_distribution"] = "none"
    result = validate(config(raw))
    assert result.ok and [(p.object, p.rule) for p in result.warnings] == [("att-vc1", "R40")]
