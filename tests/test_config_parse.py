"""Loading a configuration file: defaults, YAML errors, schema errors turned into Problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.config.load import load_config, load_learned, parse_config, parse_learned
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import IpsecTunnelAttachment, VirtualCircuitAttachment
from tests.support.factory import example
from tests.support.paths import EXAMPLES


def problems(raw: dict[str, Any] | str) -> list[Problem]:
    text = raw if isinstance(raw, str) else yaml.safe_dump(raw, sort_keys=False)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "bad.yaml")
    return info.value.problems


@pytest.mark.parametrize("name", ["transport-mode", "all-traffic"])
def test_examples_load(name: str) -> None:
    config = load_config(EXAMPLES / f"{name}.yaml")
    assert config.drg.name == "drg1" and len(config.attachments) == 4 and len(config.onprem) == 3


def test_defaults_of_a_minimal_file() -> None:
    config = parse_config("drg: {name: d}\n")
    assert (config.drg.asn, config.drg.vpn_private_asn) == (31898, 64512)  # R51, R28
    assert config.speaker.listen == "127.0.0.1:1790" and config.api.listen == "127.0.0.1:8790"
    assert config.events.mqtt is None and config.events.embedded_listen == "127.0.0.1:1883"
    assert config.router_id == "127.0.0.1"  # default: the speaker.listen address


def test_session_defaults() -> None:
    """R55 hold 30 s; R58/R64 2000 IPv4 / 500 IPv6; passive; port 179; no MD5."""
    config = load_config(EXAMPLES / "transport-mode.yaml")
    vc, tun2 = config.attachments[1], config.attachments[3]
    assert isinstance(vc, VirtualCircuitAttachment) and isinstance(tun2, IpsecTunnelAttachment)
    assert tun2.bgp is not None
    for bgp in (vc.bgp, tun2.bgp):
        assert bgp.hold_time == 30 and (bgp.max_prefixes.ipv4, bgp.max_prefixes.ipv6) == (2000, 500)
    assert (vc.bgp.connect, vc.bgp.peer_port, vc.bgp.md5_key) == ("passive", 179, None)
    assert tun2.routing == "BGP"  # R61: a bgp block means BGP


def test_yaml_error_names_the_line() -> None:
    found = problems("drg:\n  name: d\nattachments: [\n  {name: x\n")
    assert len(found) == 1 and found[0].rule == "yaml"
    assert "line 5" in found[0].message and found[0].fix.startswith("correct the YAML syntax at line 5")


def test_duplicate_keys_are_an_error() -> None:
    found = problems("drg:\n  name: d\n  name: e\n")
    assert found[0].rule == "yaml" and "duplicate key 'name'" in found[0].message
    assert "line 3" in found[0].message


def test_a_file_that_is_not_a_mapping() -> None:
    assert problems("- 1\n")[0].message == "the file is not a YAML mapping"


def test_every_schema_problem_is_reported_with_object_field_and_fix() -> None:
    raw = example("transport-mode")
    raw["attachments"][1]["trasnport_only"] = True
    raw["attachments"][2]["bgp"]["customer_asn"] = "65002"
    raw["distributions"][0]["statements"].append({"priority": 20, "match": {"attachment_type": "VCN",
                                                                            "attachment": "att-vcn"}})
    del raw["route_tables"][1]["name"]
    found = {(p.object, p.field, p.rule) for p in problems(raw)}
    assert found == {("att-vc1", "trasnport_only", "schema"), ("att-tun1", "bgp.customer_asn", "schema"),
                     ("rd-vcn", "statements[1].match", "R19"), ("route_tables[1]", "name", "schema")}
    typo = next(p for p in problems(raw) if p.field == "trasnport_only")
    assert typo.fix == "remove trasnport_only from att-vc1; did you mean transport_only?"
    assert next(p for p in problems(raw) if p.field == "name").fix == "add name to route_tables[1]"


def test_problem_json_and_text() -> None:
    problem = Problem("f.yaml", "rd-vcn", "statements[1]", "R44", "msg", "fix it")
    assert problem.to_json() == {"object": "rd-vcn", "field": "statements[1]", "rule": "R44", "message": "msg",
                                 "fix": "fix it"}
    assert str(problem) == "f.yaml: rd-vcn statements[1]: msg [R44]; fix: fix it"


def test_r2_loopback_attachments_cannot_be_declared() -> None:
    raw = example("transport-mode")
    raw["attachments"].append({"name": "lb", "type": "LOOPBACK"})
    found = problems(raw)
    assert [(p.object, p.rule) for p in found] == [("lb", "R2")]
    assert "created by the system" in found[0].fix


def test_an_rpc_attachment_needs_its_peer() -> None:
    """R94, R109: an RPC attachment names its peer (a DRG and its RPC attachment) or says external."""
    raw = example("transport-mode")
    raw["attachments"].append({"name": "rpc", "type": "REMOTE_PEERING_CONNECTION"})
    found = problems(raw)
    assert [(p.object, p.field, p.rule, p.fix) for p in found] == [("rpc", "peer", "schema", "add peer to rpc")]


def test_strict_types() -> None:
    raw = example("transport-mode")
    raw["route_tables"][0]["ecmp"] = "yes"
    raw["drg"]["asn"] = 31898.0
    assert {(p.object, p.field) for p in problems(raw)} == {("rt-vcn", "ecmp"), ("drg", "asn")}


def test_router_id_needed_when_listening_on_ipv6() -> None:
    found = problems({"drg": {"name": "d"}, "speaker": {"listen": "[::1]:1790"}})
    assert [(p.object, p.field) for p in found] == [("drg", "router_id")]
    text = "drg: {name: d, router_id: 10.0.0.1}\nspeaker: {listen: '[::1]:1790'}\n"
    assert parse_config(text).router_id == \
        "10.0.0.1"


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:179", "bad host:1"])
def test_host_port_is_validated(value: str) -> None:
    assert problems({"drg": {"name": "d"}, "api": {"listen": value}})[0].field == "listen"


@pytest.mark.parametrize("value", ["mqtt://broker:1883", "mqtt://u:p@127.0.0.1:1883", "embedded", None])
def test_mqtt_urls(value: str | None) -> None:
    assert parse_config(yaml.safe_dump({"drg": {"name": "d"}, "events": {"mqtt": value}})).events.mqtt == value


@pytest.mark.parametrize("value", ["http://broker:1883", "mqtt://broker", "broker:1883", "mqtt://h:1/x"])
def test_bad_mqtt_urls(value: str) -> None:
    found = problems({"drg": {"name": "d"}, "events": {"mqtt": value}})
    assert [(p.object, p.field) for p in found] == [("events", "mqtt")]


def test_names_are_restricted() -> None:
    assert problems({"drg": {"name": "a b"}})[0].field == "name"


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "none.yaml")
    assert info.value.problems[0].rule == "io"


def test_learned_file() -> None:
    learned = load_learned(EXAMPLES / "learned-transport-mode.yaml")
    assert [r.prefix for r in learned["att-vc1"]] == ["192.168.200.1/32"]
    assert parse_learned("") == {}
    with pytest.raises(ConfigError) as info:
        parse_learned("att-vc1:\n  - {prefix: 10.0.0.1/8}\n  - {prefix: 10.0.0.0/8, path: [1]}\natt-x: 3\n")
    assert [(p.object, p.field) for p in info.value.problems] == [
        ("att-vc1", "[0].prefix"), ("att-vc1", "[1].path"), ("att-x", None)]
