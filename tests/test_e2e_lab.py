"""The running DRG against real ExaBGP on-prem peers: both designs of oci-drg-semantics.md section 11.

Each test writes the example file with free loopback ports, runs the daemon in-process
(``controlplane.Drg``, with its control API) and one ExaBGP process per ``onprem`` entry, and checks
what a network engineer would: every route table equals the worked example (the golden files that
the offline mode also produces), every ExaBGP peer receives exactly the advertisements of section
11, packet walks, tunnel sessions that follow the CPE route (R47), a live switch of the VC's mode,
and the CLI against the running daemon.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import ConfigError
from controlplane.engine.drgs import engine_from_files
from peers.exabgp import Route
from tests.support.lab import Running, adj_in, all_up, drg_cli, golden, lab_file, start, stop, tables
from tests.support.paths import EXAMPLES
from tests.support.ports import free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@pytest.fixture
async def transport(tmp_path: Path) -> AsyncIterator[Running]:
    run = await start(lab_file("transport-mode", tmp_path), tmp_path)
    try:
        yield run
    finally:
        await stop(run)


async def test_transport_mode_end_to_end(transport: Running) -> None:
    run = transport
    await all_up(run)
    want = golden("transport-mode")
    await run.until(lambda: tables(run.drg.route_tables()) == tables(want["routes"]), 10, "golden tables")
    # Each on-prem peer receives exactly section 11.2's advertisements.
    edge_want = {"172.16.255.1/32": ([31898], "192.168.100.1"), "172.16.255.2/32": ([31898], "192.168.100.1")}
    await run.lab["edge"].wait_for(lambda p: adj_in(run.lab, "edge") == edge_want, 10)
    await run.lab["firewall-t1"].wait_for(
        lambda p: adj_in(run.lab, "firewall-t1") == {"10.10.1.0/24": ([31898], "169.254.20.1")}, 10)
    await run.lab["firewall-t2"].wait_for(
        lambda p: adj_in(run.lab, "firewall-t2") == {"10.10.1.0/24": ([31898], "169.254.20.5")}, 10)
    assert run.drg.advertised("att-vc1") == want["advertised"]["att-vc1"]
    # The daemon's tables are what the offline mode computes from the same routes.
    offline = engine_from_files(run.path, EXAMPLES / "learned-transport-mode.yaml")
    assert run.drg.route_tables() == offline.route_tables()
    # R49: both packet walks.
    out = run.drg.trace("att-vcn", "10.10.1.10", "172.20.10.10")
    assert out["result"] == "DELIVERED"
    assert [(h["attachment"], h["action"]) for h in out["hops"]] == [
        ("att-vcn", "FORWARD"), ("att-tun1", "ENCRYPT"), ("att-tun1-lb", "FORWARD"), ("att-vc1", "EXIT")]
    back = run.drg.trace("att-vc1", "192.168.200.1", "172.16.255.1", inner_src="172.20.10.10",
                         inner_dst="10.10.1.10")
    assert back["result"] == "DELIVERED"
    assert [h["action"] for h in back["hops"]][-1] == "DELIVER"  # R74, R75: the implicit ingress table delivers
    assert "DECRYPT" in [h["action"] for h in back["hops"]]
    clear = run.drg.trace("att-vc1", "172.20.20.10", "10.10.1.10")
    assert clear["result"] == "DROPPED"


async def test_tunnels_follow_the_cpe_route(tmp_path: Path) -> None:
    """R47: the tunnel sessions come up only once the edge advertises the CPE address, and go down
    (routes withdrawn from every table) when it withdraws it."""

    def no_cpe(doc: dict[str, Any]) -> None:
        edge = next(p for p in doc["onprem"] if p["name"] == "edge")
        edge["announce"] = []

    run = await start(lab_file("transport-mode", tmp_path, no_cpe), tmp_path)
    try:
        await run.drg.wait_established("att-vc1", timeout=30)
        await asyncio.sleep(1.5)
        tun = run.session("att-tun1")
        assert tun["tunnel"] == "DOWN" and tun["state"] != "Established"
        assert "192.168.200.1" in tun["downReason"] and "R47" in tun["downReason"]
        await run.lab["edge"].announce(Route("192.168.200.1/32", next_hop="192.168.100.2", as_path=[65001]))
        await run.drg.wait_established("att-tun1", timeout=30)
        await run.drg.wait_established("att-tun2", timeout=30)
        await run.until(lambda: len(run.drg.route_table("rt-vcn")["rules"]) == 2, 10, "tunnel routes in rt-vcn")
        await run.lab["edge"].withdraw("192.168.200.1/32")
        await run.until(lambda: run.session("att-tun1")["tunnel"] == "DOWN", 10, "tunnel down")
        await run.until(lambda: run.drg.route_table("rt-vcn")["rules"] == [], 10, "routes withdrawn")
        assert run.session("att-tun1")["state"] != "Established"
        assert all(r["nextHop"] not in ("att-tun1", "att-tun2")
                   for t in run.drg.route_tables()["routeTables"] for r in t["rules"])
        await run.lab["firewall-t1"].wait_for(lambda p: p.state() == "down", 10)
    finally:
        await stop(run)


async def test_all_traffic_then_live_switch_to_transport_mode(tmp_path: Path) -> None:
    path = lab_file("all-traffic", tmp_path)
    run = await start(path, tmp_path)
    try:
        await all_up(run)
        want = golden("all-traffic")
        await run.until(lambda: tables(run.drg.route_tables()) == tables(want["routes"]), 10, "golden tables")
        edge_all = {"172.16.255.1/32", "172.16.255.2/32", "10.10.1.0/24"}
        await run.lab["edge"].wait_for(lambda p: set(p.received()) == edge_all, 10)
        assert adj_in(run.lab, "edge")["10.10.1.0/24"] == ([31898], "192.168.100.1")
        for fw, hop in (("firewall-t1", "169.254.20.1"), ("firewall-t2", "169.254.20.5")):
            await run.lab[fw].wait_for(lambda p, hop=hop: adj_in(run.lab, p.spec.name) == {
                "10.10.1.0/24": ([31898], hop)}, 10)
        assert run.drg.advertised("att-vc1") == want["advertised"]["att-vc1"]
        clear = run.drg.trace("att-vc1", "172.20.20.10", "10.10.1.10")
        assert clear["result"] == "DELIVERED" and clear["hops"][0]["nextHop"] == "att-vcn"
        events = run.drg.events()
        # An invalid new configuration is rejected whole; nothing changes.
        bad = yaml.safe_load(path.read_text())
        next(a for a in bad["attachments"] if a["name"] == "att-vc1")["transport_only"] = True
        bad_path = tmp_path / "bad.yaml"
        bad_path.write_text(yaml.safe_dump(bad, sort_keys=False))
        before = run.drg.route_tables()
        with pytest.raises(ConfigError) as info:
            await run.drg.apply(bad_path)
        assert any(p.rule == "R44" for p in info.value.problems)
        assert run.drg.route_tables() == before
        # The TransportMode file with the same ports: the VC now advertises the headends only.
        good = yaml.safe_load((EXAMPLES / "transport-mode.yaml").read_text())
        good["speaker"], good["api"] = bad["speaker"], bad["api"]
        ports = {a["name"]: a["bgp"].get("peer_port") for a in bad["attachments"] if a.get("bgp")}
        for att in good["attachments"]:
            if att.get("bgp"):
                att["bgp"]["peer_port"] = ports[att["name"]]
        good_path = tmp_path / "transport.yaml"
        good_path.write_text(yaml.safe_dump(good, sort_keys=False))
        result = await run.drg.apply(good_path)
        assert result["applied"]
        await run.lab["edge"].wait_for(lambda p: set(p.received()) == {"172.16.255.1/32", "172.16.255.2/32"}, 10)
        assert run.session("att-vc1")["state"] == "Established"  # the VC session was not reset
        kinds = []
        while not events.queue.empty():
            kinds.append(events.queue.get_nowait().type)
        events.close()
        assert "config-rejected" in kinds and "config-applied" in kinds and "advertisement-change" in kinds
    finally:
        await stop(run)


async def test_cli_against_the_running_daemon(transport: Running) -> None:
    run = transport
    await all_up(run)
    await run.until(lambda: len(run.drg.route_table("rt-vcn")["rules"]) == 2, 10, "routes")
    api = run.api
    out = await asyncio.to_thread(drg_cli, "routes", "--json", "--api", api)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == run.drg.route_tables()
    out = await asyncio.to_thread(drg_cli, "routes", "rt-vcn", "--api", api)
    assert "172.20.10.0/24" in out.stdout and "conflict" in out.stdout
    out = await asyncio.to_thread(drg_cli, "sessions", "--json", "--api", api)
    states = {s["attachment"]: s["state"] for s in json.loads(out.stdout)["sessions"]}
    assert states == {"att-vc1": "Established", "att-tun1": "Established", "att-tun2": "Established"}
    out = await asyncio.to_thread(drg_cli, "sessions", "--api", api)
    assert "Established" in out.stdout and "att-tun1" in out.stdout
    out = await asyncio.to_thread(drg_cli, "advertised", "192.168.100.2", "--json", "--api", api)
    assert json.loads(out.stdout) == golden("transport-mode")["advertised"]["att-vc1"]
    out = await asyncio.to_thread(drg_cli, "trace", "--from", "att-vcn", "--src", "10.10.1.10", "--dst",
                                  "172.20.10.10", "--api", api)
    assert "ENCRYPT" in out.stdout and "DELIVERED" in out.stdout
    offline = await asyncio.to_thread(
        drg_cli, "routes", "--json", "--config", str(run.path), "--learned",
        str(EXAMPLES / "learned-transport-mode.yaml"))
    assert json.loads(offline.stdout) == run.drg.route_tables()
    out = await asyncio.to_thread(drg_cli, "routes", "no-such-table", "--api", api)
    assert out.returncode == 1 and "no-such-table" in out.stderr
    # A rejected apply through the CLI: exit 1, errors printed, nothing changed.
    bad = yaml.safe_load(run.path.read_text())
    bad["distributions"][0]["statements"].append({"priority": 20, "match": "all"})
    bad_path = run.path.parent / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(bad, sort_keys=False))
    before = run.drg.route_tables()
    out = await asyncio.to_thread(drg_cli, "apply", str(bad_path), "--api", api)
    assert out.returncode == 1 and "R44" in out.stdout
    assert run.drg.route_tables() == before


def test_cli_without_daemon_exits_3() -> None:
    out = drg_cli("sessions", "--api", f"127.0.0.1:{free_port()}")
    assert out.returncode == 3 and "no DRG daemon answers" in out.stderr



async def test_prefix_limit_closes_the_session_and_withdraws(tmp_path: Path) -> None:
    """R58: the first prefix over max_prefixes -> Cease 6/1 (AFI, SAFI, limit) to the peer, the
    session's routes leave every table, a prefix-limit event, and the session stays down ~30 s."""

    def limit(doc: dict[str, Any]) -> None:
        vc = next(a for a in doc["attachments"] if a["name"] == "att-vc1")
        vc["bgp"]["max_prefixes"] = {"ipv4": 3, "ipv6": 500}

    run = await start(lab_file("transport-mode", tmp_path, limit), tmp_path)
    try:
        await run.drg.wait_established("att-vc1", timeout=30)
        events = run.drg.events()
        edge = run.lab["edge"]
        for i in range(2):
            await edge.announce(Route(f"10.50.{i}.0/24", next_hop="192.168.100.2", as_path=[65001]))
        await run.until(lambda: len(run.drg.route_table("att-vc1-lb-rt")["rules"]) == 3, 10, "3 routes")
        await edge.announce(Route("10.50.9.0/24", next_hop="192.168.100.2", as_path=[65001]))
        await edge.wait_for(lambda p: any((n.get("code"), n.get("subcode")) == (6, 1) for n in p.notifications()), 10)
        await run.until(lambda: run.drg.route_table("att-vc1-lb-rt")["rules"] == [], 10, "routes withdrawn")
        assert run.session("att-vc1")["state"] != "Established"
        assert "prefix limit 3" in (run.session("att-vc1")["lastError"] or "")
        seen = []
        while not events.queue.empty():
            seen.append(events.queue.get_nowait())
        events.close()
        assert any(e.type == "prefix-limit" and e.subject == "att-vc1" and e.data["limit"] == 3 for e in seen)
        await asyncio.sleep(3)
        assert run.session("att-vc1")["state"] != "Established"  # held down (30 s), not flapping
    finally:
        await stop(run)


async def test_apply_recreates_only_the_changed_session(lab: Running, tmp_path: Path) -> None:
    """A changed session setting (the VC's hold time) re-creates that neighbor only: Cease 6/6 to the
    edge, which reconnects and is sent the whole Adj-RIB-Out again (the headends, R40)."""
    run = lab
    edge = run.lab["edge"]
    doc = yaml.safe_load(run.path.read_text())
    next(a for a in doc["attachments"] if a["name"] == "att-vc1")["bgp"]["hold_time"] = 60
    changed = tmp_path / "hold60.yaml"
    changed.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = await run.drg.apply(changed)
    assert "session att-vc1 re-created" in result["changes"]
    assert not [c for c in result["changes"] if c.startswith("session att-tun")]
    await edge.wait_for(lambda p: any((n.get("code"), n.get("subcode")) == (6, 6) for n in p.notifications()), 10)
    await run.drg.wait_established("att-vc1", timeout=30)
    await edge.wait_for(lambda p: set(p.received()) == {"172.16.255.1/32", "172.16.255.2/32"}, 15)
    await run.drg.wait_established("att-tun1", timeout=30)  # the tunnels ride on the VC again (R47)
