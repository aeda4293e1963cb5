"""The TransportMode lab with real routers on-prem: every `onprem` entry played by FRR's bgpd (one
test) or by BIRD 2 (another), through the daemon, as `drg lab` runs them (`onprem[].kind`).

What a network engineer would check: every session Established (`drg sessions`), the DRG's tables
equal the ExaBGP run (the golden file, and the offline mode on the learned file), the edge router
holds exactly the two headends and the firewalls the VCN subnet, read back from the router's own
CLI; and the regression that real routers expose: FRR advertises the headends it learned from the
DRG back to the DRG (AS path `65001 31898`). The DRG must not install them (RFC 4271 9.1.2) and
counts them in `prefixesRejected.asLoop`. BIRD never sends a route back to the neighbor it came
from, so with BIRD nothing is echoed and the count stays 0.

Unique loopback addresses (127.61.0.x for FRR, 127.62.0.x for BIRD) and free ports, so these run
next to the ExaBGP tests and a `make lab`. Skipped, saying what to install, without frr / bird2.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.engine.drgs import engine_from_files
from peers.bird import find_bird
from peers.frr import BGPD_CANDIDATES
from peers.router import RouterMissing, find_program
from tests.support.lab import Running, all_up, drg_cli, golden, lab_file, start, stop, tables
from tests.support.paths import EXAMPLES
from tests.support.ports import free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def _missing(check: Any) -> str | None:
    try:
        check()
    except RouterMissing as exc:
        return f"{exc}: tests with that router not run"
    return None


FRR_MISSING = _missing(lambda: (find_program("bgpd", "frr", BGPD_CANDIDATES), find_program("vtysh", "frr")))
BIRD_MISSING = _missing(find_bird)

HEADENDS = {"172.16.255.1/32", "172.16.255.2/32"}
FIREWALL_HOPS = {"firewall-t1": "169.254.20.1", "firewall-t2": "169.254.20.5"}


def router_lab(kind: str, net: str, tmp: Path) -> Path:
    """examples/transport-mode.yaml with every onprem entry of `kind`, on 127.<net>.0.2-4 and free ports."""

    def edit(doc: dict[str, Any]) -> None:
        for att in doc["attachments"]:
            bgp = att.get("bgp")
            if bgp:
                bgp["peer"] = bgp["peer"].replace("127.0.0.", f"127.{net}.0.")
                bgp["peer_port"] = free_port(bgp["peer"])  # BIRD listens even where it only dials
        for entry in doc["onprem"]:
            entry["kind"] = kind

    return lab_file("transport-mode", tmp, edit)


def sessions_json(run: Running) -> dict[str, dict[str, Any]]:
    out = drg_cli("sessions", "--json", "--api", run.api)
    assert out.returncode == 0, out.stderr
    return {s["attachment"]: s for s in json.loads(out.stdout)["sessions"]}


def adj_in(peer: Any) -> dict[str, tuple[list[Any], str]]:
    return {p: (a["as-path"], a["next-hop"]) for p, a in peer.received().items()}


def echoed_headends(run: Running) -> list[tuple[str, str]]:
    """Headend routes via the VC in the tables that import the VC: there must be none."""
    found = []
    for name in ("autogen-rt-vcn", "att-vc1-lb-rt"):
        for rule in run.drg.route_table(name)["rules"]:
            if rule["destination"] in HEADENDS and rule["nextHop"] == "att-vc1":
                found.append((name, rule["destination"]))
    return found


async def common_checks(run: Running) -> None:
    """Sessions, DRG tables, and what each router received (read back from the router)."""
    await all_up(run)
    states = await asyncio.to_thread(sessions_json, run)
    assert {a: s["state"] for a, s in states.items()} == {
        "att-vc1": "Established", "att-tun1": "Established", "att-tun2": "Established"}
    want = golden("transport-mode")
    await run.until(lambda: tables(run.drg.route_tables()) == tables(want["routes"]), 15, "golden tables")
    offline = engine_from_files(run.path, EXAMPLES / "learned-transport-mode.yaml")
    assert run.drg.route_tables() == offline.route_tables()
    assert run.drg.advertised("att-vc1") == want["advertised"]["att-vc1"]
    edge = run.lab["edge"]
    edge_want = {p: ([31898], "192.168.100.1") for p in HEADENDS}
    await edge.wait_for(lambda p: adj_in(p) == edge_want, 15)
    for fw, hop in FIREWALL_HOPS.items():
        await run.lab[fw].wait_for(lambda p, hop=hop: adj_in(p) == {"10.10.1.0/24": ([31898], hop)}, 15)
    assert all(peer.state() == "up" for peer in run.lab.peers.values())


@pytest.mark.skipif(FRR_MISSING is not None, reason=FRR_MISSING or "")
async def test_transport_mode_with_frr(tmp_path: Path) -> None:
    run = await start(router_lab("frr", "61", tmp_path), tmp_path)
    try:
        assert {type(p).__name__ for p in run.lab.peers.values()} == {"FrrPeer"}
        await common_checks(run)
        # FRR sends the headends back to the DRG, with its own AS before the DRG's ...
        edge = run.lab["edge"]
        drg = edge.spec.peer_address
        out = json.loads(await asyncio.to_thread(
            edge.cli, "show", "bgp", "ipv4", "unicast", "neighbors", drg, "advertised-routes", "json"))
        sent = {p: r["path"] for p, r in out["advertisedRoutes"].items()}
        assert sent == {"192.168.200.1/32": "", "172.16.255.1/32": "31898", "172.16.255.2/32": "31898"}
        # ... (the AS path on the wire is "65001 31898": eBGP prepends 65001) and the DRG drops them.
        def looped(att: str) -> int:
            return int(run.session(att).get("prefixesRejected", {}).get("asLoop", 0))

        await run.until(lambda: looped("att-vc1") >= 2, 15, "asLoop count >= 2 on att-vc1")
        await run.until(lambda: looped("att-tun1") >= 1 and looped("att-tun2") >= 1, 15, "asLoop on the tunnels")
        sessions = await asyncio.to_thread(sessions_json, run)
        assert sessions["att-vc1"]["prefixesRejected"]["asLoop"] >= 2
        assert sessions["att-vc1"]["prefixesReceived"] == 1  # the CPE address only
        for att in ("att-tun1", "att-tun2"):  # each firewall echoes 10.10.1.0/24 (path 65002 31898)
            assert sessions[att]["prefixesRejected"]["asLoop"] >= 1
            assert sessions[att]["prefixesReceived"] == 1
        assert echoed_headends(run) == []
        want = golden("transport-mode")
        assert tables(run.drg.route_tables()) == tables(want["routes"])
    finally:
        await stop(run)


@pytest.mark.skipif(BIRD_MISSING is not None, reason=BIRD_MISSING or "")
async def test_transport_mode_with_bird(tmp_path: Path) -> None:
    run = await start(router_lab("bird", "62", tmp_path), tmp_path)
    try:
        assert {type(p).__name__ for p in run.lab.peers.values()} == {"BirdPeer"}
        await common_checks(run)
        # BIRD exports everything (`export all`) but never to the neighbor a route came from:
        # the edge sends the CPE address only, and nothing is dropped for an AS loop.
        edge = run.lab["edge"]
        exported = await asyncio.to_thread(edge.cli, "show", "route", "export", "drg")
        assert "192.168.200.1/32" in exported
        assert not any(p in exported for p in HEADENDS), exported
        await asyncio.sleep(1.0)  # give a (wrong) echo time to arrive
        sessions = await asyncio.to_thread(sessions_json, run)
        assert {a: s["prefixesRejected"]["asLoop"] for a, s in sessions.items()} == {
            "att-vc1": 0, "att-tun1": 0, "att-tun2": 0}
        assert sessions["att-vc1"]["prefixesReceived"] == 1
        assert echoed_headends(run) == []
    finally:
        await stop(run)


def test_router_kinds_from_the_config(tmp_path: Path) -> None:
    """`kind` reaches the specs; FRR and BIRD configs bind the loopback address only."""
    from peers.bird import bird_peer_config
    from peers.frr import FrrPeer, frr_config
    from peers.lab import specs_from_config

    doc = yaml.safe_load(router_lab("frr", "61", tmp_path).read_text())
    specs = {s.name: s for s in specs_from_config(doc)}
    assert {s.kind for s in specs.values()} == {"frr"}
    edge, fw = specs["edge"], specs["firewall-t1"]
    conf = frr_config(edge)
    assert "neighbor 127.0.0.1 port" in conf and "update-source 127.61.0.2" in conf and "passive" not in conf
    assert "network 192.168.200.1/32" in conf and "set ip next-hop 192.168.100.2" in conf
    def argv(spec: Any) -> list[str]:
        peer = FrrPeer(spec)
        peer.workdir, peer.bgpd = tmp_path, "bgpd"
        return peer.argv()

    listener = argv(fw)
    assert listener[listener.index("-l") + 1] == "127.61.0.3"
    assert listener[listener.index("-p") + 1] == str(fw.listen_port)
    assert argv(edge)[-2:] == ["-p", "0"] and "-l" not in argv(edge)  # it dials: no BGP listener at all
    assert "neighbor 127.0.0.1 passive" in frr_config(fw)
    bird = bird_peer_config(fw, 1791)
    assert "strict bind yes;" in bird and "local 127.61.0.3 port 1791 as 65002;" in bird and "passive on;" in bird
    doc["onprem"][0]["announce"] = [{"prefix": "10.9.0.0/24", "as_path": [65099]}]
    with pytest.raises(ValueError, match="starts with the peer's own AS"):
        FrrPeer(specs_from_config(doc)[0])


def test_missing_router_says_what_to_install() -> None:
    with pytest.raises(RouterMissing, match="apt-get install frr"):
        find_program("no-such-bgpd", "frr", ("/nonexistent/bgpd",))
    with pytest.raises(RouterMissing, match="apt-get install bird2"):
        find_program("no-such-bird", "bird2")
