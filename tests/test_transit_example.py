"""Worked example 1 of oci-drg-transit.md section 8 (examples/hub-firewall.yaml), offline: the offered
routes (R78, R79, R81), every DRG route table in use, and every advertisement, exactly as the spec's tables."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.engine.drgs import engine_from_files
from controlplane.engine.engine import RouteEngine
from tests.support.factory import advertised, rows
from tests.support.paths import EXAMPLES

TUNNEL_PATH = [64512, 65002]  # R28: the VPN private ASN before the CPE's


@pytest.fixture(scope="module")
def engine() -> RouteEngine:
    return engine_from_files(EXAMPLES / "hub-firewall.yaml", EXAMPLES / "learned-hub-firewall.yaml")


def offers(doc: dict[str, Any]) -> list[tuple[str, str, list[Any], str]]:
    return [(r["prefix"], r["provenance"], r["asPath"], r["origin"]) for r in doc["routes"]]


def test_offered_routes(engine: RouteEngine) -> None:
    """Section 8 "Offered routes": a hub offers its subnet and its ingress table's destinations (R78, R79)."""
    hub = engine.offered("att-hub")
    assert offers(hub) == [("10.0.1.0/24", "VCN", [], "SUBNET_CIDRS"),
                           ("10.10.0.0/16", "VCN", [], "INGRESS_ROUTE_TABLE"),
                           ("10.11.0.0/16", "VCN", [], "INGRESS_ROUTE_TABLE"),
                           ("172.20.10.0/24", "VCN", [], "INGRESS_ROUTE_TABLE")]
    assert "rt-hub" not in hub["importedBy"] and "rt-spoke" not in hub["importedBy"]  # imported nowhere in use
    assert offers(engine.offered("att-spoke1")) == [("10.10.1.0/24", "VCN", [], "SUBNET_CIDRS")]
    assert offers(engine.offered("att-spoke2")) == [("10.11.1.0/24", "VCN", [], "SUBNET_CIDRS")]
    for tunnel in ("att-tun1", "att-tun2"):
        assert offers(engine.offered(tunnel)) == [("172.20.10.0/24", "IPSEC_TUNNEL", TUNNEL_PATH, "BGP")]
        assert engine.offered(tunnel)["importedBy"][0] == "rt-hub"
    assert offers(engine.offered("att-vc1")) == [("192.168.200.1/32", "VIRTUAL_CIRCUIT", [65001], "BGP")]
    assert offers(engine.offered("att-tun1-lb")) == [("172.16.255.1/32", "LOOPBACK", [], "TUNNEL_HEADEND")]
    assert offers(engine.offered("att-tun2-lb")) == [("172.16.255.2/32", "LOOPBACK", [], "TUNNEL_HEADEND")]


def test_an_ingress_cidr_that_is_also_a_subnet_is_offered_once() -> None:
    """R81: a CIDR offered twice by one attachment (a subnet that is also an ingress destination) counts once."""
    from controlplane.config.effective import build_effective
    from tests.support.factory import config, example

    raw = example("hub-firewall")
    hub = raw["vcns"][0]
    hub["route_tables"][0]["rules"].append({"destination": "10.0.1.0/24", "target": {"private_ip": "fw1"}})
    routes = RouteEngine(build_effective(config(raw))).offered("att-hub")["routes"]
    assert [r["prefix"] for r in routes].count("10.0.1.0/24") == 1
    assert routes[0] == {"prefix": "10.0.1.0/24", "provenance": "VCN", "asPath": [], "origin": "SUBNET_CIDRS"}


def test_the_ingress_table_is_offered_whatever_vcn_route_type_says() -> None:
    """R78: with VCN_CIDRS the base offer is the VCN CIDR; the ingress destinations are offered anyway."""
    from controlplane.config.effective import build_effective
    from tests.support.factory import config, example

    raw = example("hub-firewall")
    raw["attachments"][0]["vcn_route_type"] = "VCN_CIDRS"
    routes = RouteEngine(build_effective(config(raw))).offered("att-hub")["routes"]
    assert [(r["prefix"], r["origin"]) for r in routes] == [
        ("10.0.0.0/16", "VCN_CIDRS"), ("10.10.0.0/16", "INGRESS_ROUTE_TABLE"),
        ("10.11.0.0/16", "INGRESS_ROUTE_TABLE"), ("172.20.10.0/24", "INGRESS_ROUTE_TABLE")]


def test_drg_route_tables(engine: RouteEngine) -> None:
    """Section 8 "DRG route tables and distributions", row for row (R31 ties, ECMP off)."""
    assert rows(engine, "rt-spoke") == [("0.0.0.0/0", "att-hub", "STATIC", "STATIC", [], "ACTIVE")]
    assert rows(engine, "rt-hub") == [
        ("10.10.1.0/24", "att-spoke1", "DYNAMIC", "VCN", [], "ACTIVE"),
        ("10.11.1.0/24", "att-spoke2", "DYNAMIC", "VCN", [], "ACTIVE"),
        ("172.20.10.0/24", "att-tun1", "DYNAMIC", "IPSEC_TUNNEL", TUNNEL_PATH, "ACTIVE"),
        ("172.20.10.0/24", "att-tun2", "DYNAMIC", "IPSEC_TUNNEL", TUNNEL_PATH, "CONFLICT"),
    ]
    assert rows(engine, "rt-ipsec") == [
        ("10.10.0.0/16", "att-hub", "STATIC", "STATIC", [], "ACTIVE"),
        ("10.11.0.0/16", "att-hub", "STATIC", "STATIC", [], "ACTIVE"),
    ]
    assert rows(engine, "rt-vc") == [
        ("172.16.255.1/32", "att-tun1-lb", "DYNAMIC", "LOOPBACK", [], "ACTIVE"),
        ("172.16.255.2/32", "att-tun2-lb", "DYNAMIC", "LOOPBACK", [], "ACTIVE"),
    ]
    assert rows(engine, "att-vc1-lb-rt") == [
        ("192.168.200.1/32", "att-vc1", "DYNAMIC", "VIRTUAL_CIRCUIT", [65001], "ACTIVE")]
    in_use = {t["name"] for t in engine.route_tables()["routeTables"] if t["attachments"]}
    assert in_use == {"rt-spoke", "rt-hub", "rt-ipsec", "rt-vc", "att-vc1-lb-rt"}


def test_advertised_to_on_premises(engine: RouteEngine) -> None:
    """Section 8 "Advertised to on-premises": the headends over the VC; the static spoke rules over the
    tunnels (R84), never the hub's ingress-derived offers, which no tunnel table imports."""
    assert advertised(engine, "att-vc1") == ["172.16.255.1/32", "172.16.255.2/32"]
    assert advertised(engine, "att-tun1") == ["10.10.0.0/16", "10.11.0.0/16"]
    assert advertised(engine, "att-tun2") == ["10.10.0.0/16", "10.11.0.0/16"]
    assert {r["nextHop"] for r in engine.advertised("att-tun2")["routes"]} == {"169.254.20.5"}
    assert {tuple(r["asPath"]) for r in engine.advertised("att-tun1")["routes"]} == {(31898,)}  # R36


@pytest.mark.interop
@pytest.mark.timeout(120)
async def test_hub_firewall_lab_end_to_end(tmp_path: Path) -> None:
    """The hub-firewall lab with real ExaBGP peers: the daemon's tables, offers and advertisements are
    the offline ones (the same engine), and the on-prem peers receive exactly what section 8 says."""
    from tests.support.lab import adj_in, all_up, drg_cli, lab_file, start, stop

    run = await start(lab_file("hub-firewall", tmp_path), tmp_path)
    try:
        await all_up(run)
        offline = engine_from_files(EXAMPLES / "hub-firewall.yaml", EXAMPLES / "learned-hub-firewall.yaml")
        await run.until(lambda: run.drg.route_tables() == offline.route_tables(), 15, "the offline tables")
        assert run.drg.offered("att-hub") == offline.offered("att-hub")
        assert run.drg.offered("att-tun1")["routes"] == offline.offered("att-tun1")["routes"]
        await run.until(lambda: sorted(adj_in(run.lab, "firewall-t1")) == ["10.10.0.0/16", "10.11.0.0/16"], 15,
                        "the spoke rules at firewall-t1")
        assert adj_in(run.lab, "firewall-t1")["10.10.0.0/16"] == ([31898], "169.254.20.1")
        await run.until(lambda: sorted(adj_in(run.lab, "edge")) == ["172.16.255.1/32", "172.16.255.2/32"], 15,
                        "the headends at the edge")
        out = await asyncio.to_thread(drg_cli, "offered", "att-hub", "--api", run.api, "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == offline.offered("att-hub")
        missing = await asyncio.to_thread(drg_cli, "offered", "att-nope", "--api", run.api)
        assert missing.returncode != 0 and "att-nope" in missing.stderr
    finally:
        await stop(run)


@pytest.mark.timeout(30)
async def test_a_vcn_side_change_is_reported_by_config_applied(tmp_path: Path) -> None:
    """VCN route tables and appliances have no DRG table diff of their own: ``config-applied`` lists them,
    so the log, ``drg events``, MQTT's ``events`` topic and ``Drg.events()`` see the change."""
    from controlplane import Drg
    from controlplane.config.load import parse_config
    from tests.support.lab import lab_file

    path = lab_file("hub-firewall", tmp_path)
    drg = Drg(path, control_api=False)
    await drg.start()
    try:
        events = drg.events()
        config = parse_config(path.read_text(), str(path))
        hub = config.vcns[0]
        rt_fw = hub.route_tables[1].model_copy(update={"rules": hub.route_tables[1].rules[:2]})
        fw1 = hub.appliances[0].model_copy(update={"policy": "deny"})
        new_hub = hub.model_copy(update={"route_tables": [hub.route_tables[0], rt_fw], "appliances": [fw1]})
        result = await drg.apply(config.model_copy(update={"vcns": [new_hub, *config.vcns[1:]]}))
        assert result["changes"] == ["VCN vcn-hub route table rt-fw changed", "VCN vcn-hub appliance fw1 changed"]
        event = await asyncio.wait_for(events.__anext__(), 5)
        while event.type != "config-applied":
            event = await asyncio.wait_for(events.__anext__(), 5)
        assert event.data["changes"] == result["changes"]
        walk = drg.trace("vcn-spoke1", "10.10.1.10", "172.20.10.10")
        assert (walk["result"], walk["reasonCode"]) == ("DROPPED", "APPLIANCE_DENY")  # the new policy is live
    finally:
        await drg.stop()
