"""Field rules checked while parsing: ASNs, peering addresses, MD5, timers, routing, statements."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controlplane.config.load import parse_config
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import DrgConfig, IpsecTunnelAttachment, TunnelBgp, VcBgp, VirtualCircuitAttachment
from tests.support.factory import example


def parse(raw: dict[str, Any]) -> DrgConfig:
    return parse_config(yaml.safe_dump(raw, sort_keys=False), "t.yaml")


def vc_bgp(raw: dict[str, Any]) -> VcBgp:
    """The VC's parsed bgp block of a configuration that must be valid."""
    vc = parse(raw).attachments[1]
    assert isinstance(vc, VirtualCircuitAttachment) and vc.name == "att-vc1"
    return vc.bgp


def tunnel_bgp(raw: dict[str, Any]) -> TunnelBgp:
    """The first tunnel's parsed bgp block of a configuration that must be valid."""
    tunnel = parse(raw).attachments[2]
    assert isinstance(tunnel, IpsecTunnelAttachment) and tunnel.name == "att-tun1"
    assert tunnel.bgp is not None
    return tunnel.bgp


def problems(raw: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse(raw)
    return info.value.problems


def with_vc_bgp(**bgp: Any) -> dict[str, Any]:
    raw = example("transport-mode")
    raw["attachments"][1]["bgp"].update(bgp)
    return raw


def with_tunnel(**fields: Any) -> dict[str, Any]:
    raw = example("transport-mode")
    tunnel = raw["attachments"][2]
    for name, value in fields.items():
        if value is None:
            tunnel.pop(name, None)
        elif name == "bgp":
            tunnel["bgp"].update(value)
        else:
            tunnel[name] = value
    return raw


@pytest.mark.parametrize("asn", [0, 23456, 64496, 64511, 65534, 65535, 65536, 65551, 4294967295, 4294967296])
def test_r52_refused_customer_asns(asn: int) -> None:
    found = problems(with_vc_bgp(customer_asn=asn))
    assert [(p.object, p.field, p.rule) for p in found] == [("att-vc1", "bgp.customer_asn", "R52")]
    assert "64512-65533" in found[0].fix


@pytest.mark.parametrize("asn", [1, 31898, 64512, 65533, 65552, 4200000000, 4294967294])
def test_r52_allowed_customer_asns(asn: int) -> None:
    assert vc_bgp(with_vc_bgp(customer_asn=asn)).customer_asn == asn


@pytest.mark.parametrize(("oracle", "customer"), [("10.0.0.1/28", "10.0.0.14/28"), ("10.0.0.1/30", "10.0.0.2/30"),
                                                  ("10.0.0.18/31", "10.0.0.19/31"), ("fd00::1/64", "fd00::2/64")])
def test_r53_vc_peering_subnets_28_to_31(oracle: str, customer: str) -> None:
    bgp = vc_bgp(with_vc_bgp(oracle_ip=oracle, customer_ip=customer))
    assert (bgp.oracle_ip, bgp.customer_ip) == (oracle, customer)


@pytest.mark.parametrize(("oracle", "customer", "words"), [
    ("10.0.0.1/27", "10.0.0.2/27", "not /28-/31"), ("10.0.0.1/32", "10.0.0.1/32", "not /28-/31"),
    ("10.0.0.1/30", "10.0.0.5/30", "not in the same subnet"), ("10.0.0.1/30", "10.0.0.1/30", "both"),
    ("10.0.0.0/30", "10.0.0.1/30", "not a usable host"), ("10.0.0.1/30", "10.0.0.3/30", "not a usable host"),
    ("10.0.0.1/30", "fd00::2/64", "different families")])
def test_r53_bad_vc_peering_addresses(oracle: str, customer: str, words: str) -> None:
    found = problems(with_vc_bgp(oracle_ip=oracle, customer_ip=customer))
    assert found[0].rule == "R53" and words in found[0].message and found[0].object == "att-vc1"


def test_r54_md5_key_length() -> None:
    assert vc_bgp(with_vc_bgp(md5_key="s3cret-key")).md5_key == "s3cret-key"
    assert problems(with_vc_bgp(md5_key="x" * 81))[0].rule == "R54"
    assert problems(with_vc_bgp(md5_key=""))[0].rule == "R54"


def test_r55_hold_time() -> None:
    assert vc_bgp(with_vc_bgp(hold_time=0)).hold_time == 0  # no keepalives (RFC 4271)
    assert vc_bgp(with_vc_bgp(hold_time=90)).hold_time == 90
    found = problems(with_vc_bgp(hold_time=2))
    assert (found[0].field, found[0].rule) == ("bgp.hold_time", "R55")


def test_r58_max_prefixes_are_per_family_and_positive() -> None:
    limits = vc_bgp(with_vc_bgp(max_prefixes={"ipv4": 1000000})).max_prefixes
    assert (limits.ipv4, limits.ipv6) == (1000000, 500)  # the IPv6 limit keeps its default (R64)
    assert problems(with_vc_bgp(max_prefixes={"ipv4": 0}))[0].field == "bgp.max_prefixes.ipv4"
    assert problems(with_vc_bgp(max_prefixes={"ipv5": 1}))[0].field == "bgp.max_prefixes.ipv5"


@pytest.mark.parametrize(("oracle", "customer"), [("169.254.20.1/30", "169.254.20.2/30"),
                                                  ("10.9.9.0/31", "10.9.9.1/31"), ("169.254.9.1/30", "169.254.9.2/30")])
def test_r62_inside_tunnel_addresses(oracle: str, customer: str) -> None:
    bgp = tunnel_bgp(with_tunnel(bgp={"oracle_ip": oracle, "customer_ip": customer}))
    assert (bgp.oracle_ip, bgp.customer_ip) == (oracle, customer)


@pytest.mark.parametrize(("oracle", "customer"), [("169.254.20.1/29", "169.254.20.2/29"),
                                                  ("169.254.10.1/30", "169.254.10.2/30"),
                                                  ("169.254.105.1/30", "169.254.105.2/30"),
                                                  ("169.254.201.253/30", "169.254.201.254/30")])
def test_r62_refused_inside_tunnel_addresses(oracle: str, customer: str) -> None:
    found = problems(with_tunnel(bgp={"oracle_ip": oracle, "customer_ip": customer}))
    assert (found[0].object, found[0].field, found[0].rule) == ("att-tun1", "bgp", "R62")


def test_r63_no_md5_on_tunnels() -> None:
    found = problems(with_tunnel(bgp={"md5_key": "secret"}))
    assert [(p.object, p.field, p.rule) for p in found] == [("att-tun1", "bgp.md5_key", "R63")]


def test_r61_routing_defaults_from_the_bgp_block() -> None:
    raw = with_tunnel(routing=None, bgp=None)  # None removes the field
    raw["attachments"][2]["static_routes"] = ["172.20.10.0/24"]
    raw["onprem"] = []
    tunnel = parse_config(yaml.safe_dump(raw)).attachments[2]
    assert isinstance(tunnel, IpsecTunnelAttachment)
    assert (tunnel.routing, tunnel.bgp, tunnel.static_routes) == ("STATIC", None, ["172.20.10.0/24"])


def test_r62_bgp_tunnel_needs_a_bgp_block_and_static_has_none() -> None:
    raw = with_tunnel(routing="BGP")
    del raw["attachments"][2]["bgp"]
    assert [(p.field, p.rule) for p in problems(raw)] == [("bgp", "R62")]
    assert [(p.field, p.rule) for p in problems(with_tunnel(routing="STATIC", static_routes=["10.0.0.0/8"]))] == [
        ("bgp", "R62")]


def test_r65_static_tunnels_need_one_to_ten_routes() -> None:
    raw = with_tunnel(routing="STATIC")
    del raw["attachments"][2]["bgp"]
    assert [(p.field, p.rule) for p in problems(raw)] == [("static_routes", "R65")]
    raw["attachments"][2]["static_routes"] = [f"172.20.{i}.0/24" for i in range(11)]
    assert problems(raw)[0].field == "static_routes"


def test_r39_tunnel_over_fastconnect_needs_its_headend() -> None:
    found = problems(with_tunnel(oracle_tunnel_ip=None))
    assert [(p.object, p.field, p.rule) for p in found] == [("att-tun1", "oracle_tunnel_ip", "R39")]


def test_r19_one_criterion_and_r5_no_loopback_type() -> None:
    raw = example("transport-mode")
    raw["distributions"][0]["statements"] = [
        {"priority": 1, "match": {"attachment_type": "VCN", "attachment": "att-vcn"}},
        {"priority": 2, "match": {"attachment_type": "LOOPBACK"}},
        {"priority": 3, "match": {"attachment_type": "REMOTE_PEERING_CONNECTION"}},  # R97: a type since RPCs
        {"priority": 4, "match": {"drg_attachment_id": "x"}},
        {"priority": 5, "match": "everything"},
        {"priority": 6, "match": "all", "action": "REJECT"},
        {"priority": 7, "match": {"attachment_type": "LOCAL_PEERING_GATEWAY"}}]
    found = [(p.field, p.rule) for p in problems(raw)]
    assert found == [("statements[0].match", "R19"), ("statements[1].match", "R5"),
                     ("statements[3].match", "schema"), ("statements[4].match", "schema"),
                     ("statements[5].action", "schema"), ("statements[6].match", "schema")]


@pytest.mark.parametrize(("priority", "ok"), [(0, True), (65535, True), (-1, False), (65536, False)])
def test_r20_priority_range(priority: int, ok: bool) -> None:
    raw = example("transport-mode")
    raw["distributions"][0]["statements"][0]["priority"] = priority
    if ok:
        parse(raw)
    else:
        assert problems(raw)[0].field == "statements[0].priority"


def test_r14_static_rules_are_cidr_blocks() -> None:
    raw = example("transport-mode")
    raw["route_tables"][0]["static_routes"] = [
        {"destination": "10.20.0.0/16", "next_hop": "att-vcn", "destination_type": "SERVICE_CIDR_BLOCK"},
        {"destination": "10.20.0.1/16", "next_hop": "att-vcn"}]
    found = problems(raw)
    assert [(p.field, p.rule) for p in found] == [("static_routes[0].destination_type", "R14"),
                                                  ("static_routes[1].destination", "schema")]
    assert found[1].fix == "write the network address: 10.20.0.0/16"
