"""Several DRGs in one file (``drgs:``, oci-drg-transit.md section 7): reading, checks across the file
(R94, R103, R104, R106, R108, R109, unique names, sockets), ``drg validate`` per DRG. Every problem
names the file, the DRG, the object, the field, the rule and a fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import main
from controlplane.config.drgs import design_json, load_design, parse_design, validate_design
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import DrgConfig
from controlplane.config.validate import validate_file, validation_json
from tests.support.factory import example
from tests.support.paths import EXAMPLES

Edit = Callable[[dict[str, Any]], None]


def check(edit: Edit | None = None, raw: dict[str, Any] | None = None) -> tuple[list[Problem], list[Problem]]:
    raw = raw if raw is not None else example("two-regions")
    if edit is not None:
        edit(raw)
    result = validate_design(parse_design(yaml.safe_dump(raw, sort_keys=False), "t.yaml"), "t.yaml")
    for problem in result.errors + result.warnings:
        assert problem.object and problem.rule and problem.fix and problem.message and problem.file == "t.yaml"
    return result.errors, result.warnings


def sites(found: list[Problem]) -> list[tuple[str | None, str, str | None, str]]:
    return [(p.drg, p.object, p.field, p.rule) for p in found]


def parse_problems(raw: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_design(yaml.safe_dump(raw, sort_keys=False), "t.yaml")
    return caught.value.problems


def drg_item(raw: dict[str, Any], name: str) -> dict[str, Any]:
    item: dict[str, Any] = next(d for d in raw["drgs"] if d["drg"]["name"] == name)
    return item


def att(raw: dict[str, Any], drg: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in drg_item(raw, drg)["attachments"] if a["name"] == name)
    return found


# ------------------------------------------------------------------------------ reading

def test_a_drgs_file_is_one_config_per_drg_with_the_shared_sections() -> None:
    design = load_design(EXAMPLES / "two-regions.yaml")
    assert isinstance(design, list)
    assert [c.drg.name for c in design] == ["drg-a", "drg-b"]
    assert {c.speaker.listen for c in design} == {"127.0.0.1:1790"}
    assert {c.api.listen for c in design} == {"127.0.0.1:8790"}
    assert [[p.name for p in c.onprem] for c in design] == [["edge-a"], ["edge-b"]]  # by the DRG of the session
    assert [a.name for a in design[1].attachments] == ["att-b-vcn", "att-b-vc", "att-b-rpc"]
    assert check() == ([], [])


def test_a_single_drg_file_is_unchanged() -> None:
    design = load_design(EXAMPLES / "transport-mode.yaml")
    assert isinstance(design, DrgConfig)
    config, result = validate_file(EXAMPLES / "transport-mode.yaml")
    assert design_json(validate_design(design, str(EXAMPLES / "transport-mode.yaml")), design) == \
        validation_json(result, config)


def test_schema_problems_name_the_drg_and_the_object() -> None:
    raw = example("two-regions")
    att(raw, "drg-b", "att-b-vc")["bgp"]["customer_asn"] = "65001"
    drg_item(raw, "drg-a")["speaker"] = {"listen": "127.0.0.1:1790"}
    raw["route_tables"] = []
    found = parse_problems(raw)
    assert [(p.drg, p.object, p.field, p.rule) for p in found] == [
        (None, "route_tables", None, "schema"),
    ]
    assert found[0].fix == "move route_tables into an item of drgs"
    del raw["route_tables"]
    found = parse_problems(raw)
    assert [(p.drg, p.object, p.field, p.rule) for p in found] == [
        ("drg-a", "drg-a", "speaker", "schema"), ("drg-b", "att-b-vc", "bgp.customer_asn", "schema")]
    assert found[0].fix == "move speaker to the top level of the file"
    assert "drg-b: att-b-vc bgp.customer_asn" in str(found[1])


def test_an_onprem_session_must_be_an_attachment_of_some_drg() -> None:
    raw = example("two-regions")
    raw["onprem"][1]["session"] = "att-bvc"
    found = parse_problems(raw)
    assert [(p.drg, p.object, p.field, p.rule) for p in found] == [(None, "edge-b", "session", "reference")]
    assert "did you mean att-b-vc?" in found[0].fix


# ------------------------------------------------------------------------------ names and sockets

def test_drg_names_are_unique_in_the_file() -> None:
    raw = example("two-regions")
    raw["drgs"].append({"drg": {"name": "drg-a"}})
    found = parse_problems(raw)
    assert [(p.drg, p.object, p.field, p.rule) for p in found] == [("drg-a", "drgs[2]", "drg.name", "names")]
    assert found[0].message == "drgs[0] and drgs[2] are both named drg-a"


def test_attachment_names_are_unique_in_the_file() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["drgs"].append({"drg": {"name": "drg-c"}, "vcns": [{"name": "vcn-c", "cidrs": ["10.30.0.0/16"],
                                                                 "subnets": ["10.30.1.0/24"]}],
                            "attachments": [{"name": "att-a-vcn", "type": "VCN", "vcn": "vcn-c"}]})

    errors, _ = check(edit)
    assert sites(errors) == [("drg-c", "att-a-vcn", "name", "names")]
    assert errors[0].message == "attachment att-a-vcn is also an attachment of drg-a"


def test_sessions_of_two_drgs_need_their_own_peer_address() -> None:
    errors, _ = check(lambda raw: att(raw, "drg-b", "att-b-vc")["bgp"].update(peer="127.0.0.2"))
    assert sites(errors) == [("drg-b", "att-b-vc", "bgp.peer", "sockets")]
    assert "att-b-vc and att-a-vc of drg-a both have their BGP peer at 127.0.0.2" in errors[0].message


def test_shared_sections_are_reported_once() -> None:
    errors, _ = check(lambda raw: raw["api"].update(listen="127.0.0.1:1790"))
    assert sites(errors) == [(None, "api", "listen", "sockets")]


# ------------------------------------------------------------------------------ R94, R109: RPC peers

def test_r94_the_peer_drg_must_be_in_the_file() -> None:
    errors, _ = check(lambda raw: att(raw, "drg-a", "att-a-rpc")["peer"].update(drg="drg-bb"))
    assert sites(errors) == [("drg-a", "att-a-rpc", "peer.drg", "R94"), ("drg-b", "att-b-rpc", "peer", "R94")]
    assert errors[0].message == "DRG drg-bb is not in this file"
    assert errors[0].fix.startswith("name a DRG of the file (did you mean drg-b?); for a DRG run by another daemon")
    assert errors[1].message == ("the peering is not mutual: att-a-rpc of drg-a peers with "
                                 "{drg: drg-bb, attachment: att-b-rpc}")
    assert errors[1].fix.startswith("set att-a-rpc's peer to {drg: drg-b, attachment: att-b-rpc}")


def test_r94_the_peer_attachment_must_be_an_rpc_of_that_drg() -> None:
    errors, _ = check(lambda raw: att(raw, "drg-a", "att-a-rpc")["peer"].update(attachment="att-b-vc"))
    assert sites(errors) == [("drg-a", "att-a-rpc", "peer.attachment", "R94"), ("drg-b", "att-b-rpc", "peer", "R94")]
    assert errors[0].message == "att-b-vc of drg-b is a VIRTUAL_CIRCUIT attachment, not an RPC"
    errors, _ = check(lambda raw: att(raw, "drg-a", "att-a-rpc")["peer"].update(attachment="att-b-rcp"))
    assert errors[0].message == "drg-b has no attachment att-b-rcp" and "(did you mean att-b-rpc?)" in errors[0].fix


def test_r94_an_rpc_cannot_peer_with_its_own_drg() -> None:
    def edit(raw: dict[str, Any]) -> None:
        att(raw, "drg-a", "att-a-rpc")["peer"] = {"drg": "drg-a", "attachment": "att-a-rpc"}
        att(raw, "drg-b", "att-b-rpc")["peer"] = "external"

    errors, _ = check(edit)
    assert sites(errors) == [("drg-a", "att-a-rpc", "peer.drg", "R94")]


def test_r109_remote_is_for_a_drg_of_another_daemon() -> None:
    errors, _ = check(lambda raw: att(raw, "drg-a", "att-a-rpc")["peer"].update(
        remote={"address": "127.0.0.9", "port": 1790}))
    assert sites(errors) == [("drg-a", "att-a-rpc", "peer.remote", "R109")]
    # In a single-DRG file the peer DRG runs elsewhere: remote (or external) is how to say so.
    single = example("two-regions")["drgs"][0] | {"speaker": {"listen": "127.0.0.1:1790"}}
    errors, _ = check(raw=single)
    assert sites(errors) == [(None, "att-a-rpc", "peer.drg", "R94")]
    single["attachments"][2]["peer"]["remote"] = {"address": "127.0.0.9", "port": 1790}
    assert check(raw=single) == ([], [])


# ------------------------------------------------------------------------------ R104, R106, R103, R108

def test_v3_a_static_rule_to_an_rpc_in_an_on_prem_table_is_rejected() -> None:
    """Worked example 2, V3: static 10.20.0.0/16 -> att-a-rpc in rt-a-vc (used by att-a-vc) (R104)."""

    def edit(raw: dict[str, Any]) -> None:
        tables = drg_item(raw, "drg-a")["route_tables"]
        tables[1]["static_routes"] = [{"destination": "10.20.0.0/16", "next_hop": "att-a-rpc"}]

    errors, _ = check(edit)
    assert sites(errors) == [("drg-a", "rt-a-vc", "static_routes[0]", "R104")]
    assert errors[0].message.startswith("static rule 10.20.0.0/16 -> att-a-rpc (REMOTE_PEERING_CONNECTION) in "
                                        "rt-a-vc, which att-a-vc (VIRTUAL_CIRCUIT) uses")
    assert errors[0].fix.startswith("remove static route 10.20.0.0/16 from rt-a-vc")


def test_r104_a_static_rule_to_an_rpc_is_fine_in_a_vcn_table() -> None:
    """S11: a static rule may use an RPC as next hop; rt-a-vcn is used by a VCN attachment only."""

    def edit(raw: dict[str, Any]) -> None:
        drg_item(raw, "drg-a")["route_tables"][0]["static_routes"] = [
            {"destination": "10.20.0.0/16", "next_hop": "att-a-rpc"}]

    assert check(edit) == ([], [])


def test_r106_an_rpc_table_may_not_import_a_transport_only_vc() -> None:
    """R44.4 on an RPC table: rt-a-rpc imports VIRTUAL_CIRCUIT while att-a-vc is transport-only."""

    def edit(raw: dict[str, Any]) -> None:
        att(raw, "drg-a", "att-a-vc")["transport_only"] = True
        a = drg_item(raw, "drg-a")
        a["route_tables"][1] = {"name": "rt-a-vc"}  # R44.3: the VC's own table imports nothing of the user
        del a["distributions"][1]
        a["distributions"][0]["statements"] = [
            {"priority": 20, "match": {"attachment_type": "REMOTE_PEERING_CONNECTION"}}]

    errors, _ = check(edit)
    assert sites(errors) == [("drg-a", "rd-a-rpc", "statements[0]", "R106")]
    assert errors[0].message == ("DRG_ATTACHMENT_TYPE VIRTUAL_CIRCUIT imports routes from att-a-vc, which is "
                                 "transport-only (an RPC table: rt-a-rpc is used by att-a-rpc)")


def chain(n: int) -> dict[str, Any]:
    """DRGs d0 - d1 - ... joined by PEERED RPCs."""
    drgs = []
    for i in range(n):
        atts: list[dict[str, Any]] = []
        if i > 0:
            atts.append({"name": f"d{i}-left", "type": "REMOTE_PEERING_CONNECTION",
                         "peer": {"drg": f"d{i - 1}", "attachment": f"d{i - 1}-right"}})
        if i < n - 1:
            atts.append({"name": f"d{i}-right", "type": "REMOTE_PEERING_CONNECTION",
                         "peer": {"drg": f"d{i + 1}", "attachment": f"d{i + 1}-left"}})
        drgs.append({"drg": {"name": f"d{i}"}, "attachments": atts})
    return {"drgs": drgs}


def test_r103_drgs_more_than_four_apart_exchange_nothing() -> None:
    assert check(raw=chain(4)) == ([], [])
    errors, warnings = check(raw=chain(6))
    assert errors == []
    assert sites(warnings) == [("d0", "d0", None, "R103"), ("d0", "d0", None, "R103"), ("d1", "d1", None, "R103")]
    assert [w.message.split(":")[0] for w in warnings] == [
        "d4 is 5 DRGs away from d0 over RPCs", "d5 is 6 DRGs away from d0 over RPCs",
        "d5 is 5 DRGs away from d1 over RPCs"]


def test_r108_more_than_300_rpcs_on_one_table_is_a_warning() -> None:
    raw: dict[str, Any] = {"drgs": [{"drg": {"name": "hub"}, "attachments": [
        {"name": f"rpc{i}", "type": "REMOTE_PEERING_CONNECTION", "peer": "external"} for i in range(301)]}]}
    errors, warnings = check(raw=raw)
    assert errors == [] and sites(warnings) == [("hub", "autogen-rt-other", None, "R108")]


# ------------------------------------------------------------------------------ drg validate

def test_drg_validate_reports_per_drg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "two-regions.yaml")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{EXAMPLES / 'two-regions.yaml'}: valid (2 DRGs)",
        "  drg-a: 3 attachments, 5 route tables", "  drg-b: 3 attachments, 2 route tables"]
    assert main(["validate", str(EXAMPLES / "two-regions.yaml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(d["drg"], [a["name"] for a in d["config"]["attachments"]]) for d in doc["drgs"]] == [
        ("drg-a", ["att-a-vcn", "att-a-vc", "att-a-rpc"]), ("drg-b", ["att-b-vcn", "att-b-vc", "att-b-rpc"])]
    raw = example("two-regions")
    drg_item(raw, "drg-a")["route_tables"][1]["static_routes"] = [{"destination": "10.20.0.0/16",
                                                                  "next_hop": "att-a-rpc"}]
    bad = tmp_path / "v3.yaml"
    bad.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["validate", str(bad), "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["errors"][0]
    assert (error["drg"], error["object"], error["field"], error["rule"]) == (
        "drg-a", "rt-a-vc", "static_routes[0]", "R104")
    assert main(["validate", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[1].startswith("drg-a: rt-a-vc.static_routes[0]: static rule ")
