"""Issue 9 through the running daemon against real ExaBGP peers.

A dual-stack VC (R53, R59): two sessions, each with its own family.

examples/dual-stack.yaml: the IPv4 session (att-vc1) carries IPv4 unicast only, the IPv6 session
(att-vc1.ipv6) IPv6 unicast only, each announced with its own Oracle peering address as NEXT_HOP
(read back from ExaBGP exactly); each has its own state in ``drg sessions``, its own prefix limit and
Adj-RIB-Out, and one going down leaves the other's routes in place. Also: an on-prem router that
echoes the DRG's routes with the DRG's AS in the path (RFC 4271 s9.1.2) is counted, not installed;
and a second VC never learns another VC's tunnel headends (R40, R50).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controlplane import Drg
from controlplane.engine.drgs import engine_from_files
from peers.exabgp import Route
from tests.support.lab import add_second_vc, adj_in, lab_file, start, stop
from tests.support.paths import EXAMPLES

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def rules(drg: Drg, table: str) -> set[tuple[str, str]]:
    doc = drg.route_table(table)
    return {(r["destination"], r["nextHop"]) for r in doc["rules"]}


async def test_dual_stack_vc_runs_one_session_per_family(tmp_path: Path) -> None:
    run = await start(lab_file("dual-stack", tmp_path), tmp_path)
    try:
        await run.drg.wait_established("att-vc1", timeout=30)
        await run.drg.wait_established("att-vc1.ipv6", timeout=30)
        sessions = {s["session"]: s for s in run.drg.sessions()["sessions"]}
        assert set(sessions) == {"att-vc1", "att-vc1.ipv6"}
        assert sessions["att-vc1"]["neighbor"] == "192.168.100.2"
        assert sessions["att-vc1.ipv6"]["neighbor"] == "2001:db8:100::2"
        assert sessions["att-vc1"]["addressFamilies"] == ["ipv4"]
        assert sessions["att-vc1.ipv6"]["addressFamilies"] == ["ipv6"]
        assert {s["attachment"] for s in sessions.values()} == {"att-vc1"}
        # Each session advertises its own family with its own Oracle address as next hop.
        await run.lab["edge"].wait_for(
            lambda p: adj_in(run.lab, "edge") == {"10.10.1.0/24": ([31898], "192.168.100.1")}, 10)
        await run.lab["edge6"].wait_for(
            lambda p: adj_in(run.lab, "edge6") == {"2001:db8:10:1::/64": ([31898], "2001:db8:100::1")}, 10)
        assert [r["prefix"] for r in run.drg.advertised("att-vc1")["routes"]] == ["10.10.1.0/24"]
        six = run.drg.advertised("att-vc1.ipv6")
        assert six["session"] == "att-vc1.ipv6" and six["state"] == "Established"
        assert six["routes"] == [{"prefix": "2001:db8:10:1::/64", "asPath": [31898], "nextHop": "2001:db8:100::1"}]
        assert run.drg.advertised("2001:db8:100::2") == six
        await run.until(lambda: rules(run.drg, "rt-vcn") == {("172.20.20.0/24", "att-vc1"),
                                                            ("2001:db8:20::/48", "att-vc1")}, 10, "rt-vcn")
        assert run.session("att-vc1")["prefixesReceived"] == 1
        offline = engine_from_files(run.path, EXAMPLES / "learned-dual-stack.yaml")
        assert offline.route_tables() == run.drg.route_tables()
        assert offline.advertised("att-vc1.ipv6") == run.drg.advertised("att-vc1.ipv6")
        # The IPv6 session going down withdraws the IPv6 routes only; its Adj-RIB-Out sends nothing.
        await run.lab["edge6"].stop()
        await run.until(lambda: rules(run.drg, "rt-vcn") == {("172.20.20.0/24", "att-vc1")}, 40, "IPv6 gone")
        down = run.drg.advertised("att-vc1.ipv6")
        assert down["state"] != "Established" and down["routes"] == []
        assert [r["prefix"] for r in down["wouldAdvertise"]] == ["2001:db8:10:1::/64"]
        assert run.drg.advertised("att-vc1")["state"] == "Established"
        assert {s["session"]: s["prefixesAdvertised"] for s in run.drg.sessions()["sessions"]} == {
            "att-vc1": 1, "att-vc1.ipv6": 0}
    finally:
        await stop(run)


async def test_routes_echoed_with_the_drg_asn_are_counted_and_not_installed(tmp_path: Path) -> None:
    """What a real router does (FRR advertises the headends back as 65001 31898): RFC 4271 s9.1.2."""
    run = await start(lab_file("transport-mode", tmp_path), tmp_path)
    try:
        await run.drg.wait_established("att-vc1", timeout=30)
        for prefix in ("172.16.255.1/32", "172.16.255.2/32"):
            await run.lab["edge"].announce(Route(prefix, next_hop="192.168.100.2", as_path=[65001, 31898]))
        await run.until(lambda: run.session("att-vc1")["prefixesRejected"] == {"asLoop": 2}, 10, "loops counted")
        assert run.session("att-vc1")["prefixesReceived"] == 1  # the CPE /32 only
        for table in ("att-vc1-lb-rt", "autogen-rt-vcn"):
            assert not any(d.startswith("172.16.255.") and nh == "att-vc1" for d, nh in rules(run.drg, table))
        assert [r["prefix"] for r in run.drg.advertised("att-vc1")["routes"]] == ["172.16.255.1/32",
                                                                                  "172.16.255.2/32"]
    finally:
        await stop(run)


async def test_a_second_vc_never_learns_another_vcs_headends(tmp_path: Path) -> None:
    """R40, R50 through the daemon: All Traffic att-vc1 carries the tunnels; att-vc2 uses a table that
    imports MATCH_ALL (``add_second_vc``). Its on-prem router receives the VCN subnet, never the
    headends, and a packet to a headend cannot enter on att-vc2."""
    run = await start(lab_file("all-traffic", tmp_path, add_second_vc), tmp_path)
    try:
        for name in ("att-vc1", "att-vc2", "att-tun1", "att-tun2"):
            await run.drg.wait_established(name, timeout=30)
        await run.lab["edge"].wait_for(lambda p: {"172.16.255.1/32", "172.16.255.2/32"} <= set(p.received()), 10)
        await run.lab["edge2"].wait_for(lambda p: "10.10.1.0/24" in p.received(), 10)
        assert set(run.lab["edge2"].received()) == {"10.10.1.0/24"}
        assert not any(d.startswith("172.16.255.") for d, _ in rules(run.drg, "rt-vc2"))
        walk = run.drg.trace("att-vc2", "192.168.200.1", "172.16.255.1", inner_src="172.20.10.10",
                             inner_dst="10.10.1.10")
        assert walk["result"] == "DROPPED" and "DECRYPT" not in [h["action"] for h in walk["hops"]]
    finally:
        await stop(run)


async def test_routes_the_standards_forbid_are_counted_per_reason_and_reported(tmp_path: Path) -> None:
    """Issue 14 through the daemon: a real ExaBGP sends routes whose leftmost AS is not its own, whose
    NEXT_HOP is the DRG's Oracle address, or whose path holds AS 0. None is installed, the session
    stays up, `drg sessions` counts them per reason (JSON and text) and one warning says why."""
    from controlplane.events.event import EventType
    from controlplane.render import sessions as sessions_text

    run = await start(lab_file("transport-mode", tmp_path), tmp_path)
    try:
        await run.drg.wait_established("att-vc1", timeout=30)
        events = run.drg.events()
        await run.lab["edge"].announce(Route("10.77.1.0/24", next_hop="192.168.100.2", as_path=[65099]))
        await run.lab["edge"].announce(Route("10.77.2.0/24", next_hop="192.168.100.1", as_path=[65001]))
        await run.lab["edge"].announce(Route("10.77.3.0/24", next_hop="192.168.100.2", as_path=[65001, 0]))
        want = {"asLoop": 0, "firstAs": 1, "nextHop": 1, "asZero": 1}
        await run.until(lambda: run.session("att-vc1")["prefixesRejected"] == want, 10, "rejections counted")
        session = run.session("att-vc1")
        assert session["state"] == "Established" and session["prefixesReceived"] == 1  # the CPE /32 only
        assert not any(d.startswith("10.77.") for d, _ in rules(run.drg, "autogen-rt-vcn"))
        text = sessions_text(run.drg.sessions())
        assert "att-vc1: 1 prefix(es) not installed: the leftmost AS is not the peer's AS (RFC 4271 s6.3)" in text
        assert "att-vc1: 1 prefix(es) not installed: AS 0 in the AS path (RFC 7607)" in text
        first = await asyncio.wait_for(anext(aiter(events)), 5)
        while not (first.type == EventType.WARNING and first.subject == "att-vc1"):
            first = await asyncio.wait_for(anext(aiter(events)), 5)
        assert "firstAs" in first.data["summary"] and "65099" in first.data["summary"]
        events.close()
    finally:
        await stop(run)


async def test_redundant_vcs_offering_the_same_prefixes_conflict_then_fail_over(tmp_path: Path) -> None:
    """Two VCs, each a real ExaBGP, announce the same 24 prefixes (more than ``bulk.GROUPED``: the
    contested keys of one UPDATE are resolved in groups, engine/resolve.py). In rt-vc2, which imports
    both, att-vc1's shorter AS path wins each (R27.2) and att-vc2's rule is a conflict (R17). When
    edge's ExaBGP stops, att-vc1's routes go and att-vc2's are the only, active rules."""
    from controlplane.engine import bulk

    prefixes = [f"10.77.{i}.0/24" for i in range(24)]
    assert len(prefixes) > bulk.GROUPED

    def redundant(doc: dict[str, Any]) -> None:
        add_second_vc(doc, [{"prefix": p, "as_path": [65003, 65003]} for p in prefixes])
        next(p for p in doc["onprem"] if p["name"] == "edge")["announce"] += [{"prefix": p} for p in prefixes]

    def contested(drg: Drg) -> set[tuple[str, str, bool]]:
        return {(r["destination"], r["nextHop"], r["isConflict"]) for r in drg.route_table("rt-vc2")["rules"]
                if r["destination"].startswith("10.77.")}

    run = await start(lab_file("all-traffic", tmp_path, redundant), tmp_path)
    try:
        both = {(p, "att-vc1", False) for p in prefixes} | {(p, "att-vc2", True) for p in prefixes}
        await run.until(lambda: contested(run.drg) == both, 30, "both VCs' rules")
        await run.lab["edge"].stop()
        alone = {(p, "att-vc2", False) for p in prefixes}
        await run.until(lambda: contested(run.drg) == alone, 30, "att-vc2 alone")
        assert run.session("att-vc2")["prefixesReceived"] == len(prefixes)
    finally:
        await stop(run)
