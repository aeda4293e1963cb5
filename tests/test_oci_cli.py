"""The real `oci` CLI (oci-cli 3.95.1) against the running daemon with ExaBGP peers.

The transport-mode example runs with its three ExaBGP on-prem peers; every `oci network ...`
command is the one a user types, with ``--endpoint http://<api.listen> --no-retry`` and a
throwaway key. The lists and gets must say what ``drg routes --json`` and ``drg sessions --json``
say; a static rule added with the CLI must reach the tunnel peers and survive a restart; an invalid
one must be refused with the R14 text and change nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import Drg
from tests.support.lab import Running, adj_in, all_up, drg_cli
from tests.support.oci import COMPARTMENT, DRG, OciCli, cli_rule, expected_rule, oid

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

IPSC = oid("ipsecconnection", "cpe-192-168-200-1")
RT_IPSEC = oid("drgroutetable", "rt-ipsec")


async def drg_routes(run: Running) -> dict[str, Any]:
    """``drg routes --json`` of the running daemon, through the project's own CLI."""
    out = await asyncio.to_thread(drg_cli, "routes", "--json", "--api", run.api)
    assert out.returncode == 0, out.stderr
    routes: dict[str, Any] = json.loads(out.stdout)
    return routes


async def drg_sessions(run: Running) -> dict[str, Any]:
    out = await asyncio.to_thread(drg_cli, "sessions", "--json", "--api", run.api)
    assert out.returncode == 0, out.stderr
    return {s["attachment"]: s for s in json.loads(out.stdout)["sessions"]}


async def test_cli_lists_and_gets_say_what_drg_routes_and_sessions_say(lab: Running, tmp_path: Path) -> None:
    run = lab
    oci = OciCli(tmp_path, run.api)
    routes = await drg_routes(run)
    sessions = await drg_sessions(run)

    drgs = await oci.ok("network", "drg", "list", "--compartment-id", COMPARTMENT)
    assert [d["id"] for d in drgs] == [DRG]
    got = await oci("network", "drg", "get", "--drg-id", DRG)
    assert got.returncode == 0 and got.doc["etag"]
    assert got.data["default-drg-route-tables"]["vcn"] == oid("drgroutetable", "autogen-rt-vcn")
    assert got.data["default-export-drg-route-distribution-id"] == oid("drgroutedistribution", "autogen-rd-export")

    # Attachments: OCI lists VCN attachments unless asked for ALL (which includes the system loopbacks).
    every = await oci.ok("network", "drg-attachment", "list", "--compartment-id", COMPARTMENT, "--drg-id", DRG,
                         "--attachment-type", "ALL", "--all")
    assert [a["display-name"] for a in every] == ["att-vcn", "att-vc1", "att-tun1", "att-tun2", "att-tun1-lb",
                                                  "att-tun2-lb"]
    table_of = {t["name"]: t["attachments"] for t in routes["routeTables"]}
    for att in every:
        table = att["drg-route-table-id"].rsplit(".", 1)[1]
        assert att["display-name"] in table_of[table]
    vcn_only = await oci.ok("network", "drg-attachment", "list", "--compartment-id", COMPARTMENT)
    assert [a["display-name"] for a in vcn_only] == ["att-vcn"]
    tun1 = await oci.ok("network", "drg-attachment", "get", "--drg-attachment-id", oid("drgattachment", "att-tun1"))
    assert tun1["network-details"] == {"type": "IPSEC_TUNNEL", "id": oid("ipsectunnel", "att-tun1"),
                                       "ipsec-connection-id": IPSC,
                                       "transport-attachment-id": oid("drgattachment", "att-vc1")}
    assert tun1["export-drg-route-distribution-id"] == oid("drgroutedistribution", "autogen-rd-export")

    # Route tables and every rule of every table, as `drg routes --json` has them.
    tables = await oci.ok("network", "drg-route-table", "list", "--drg-id", DRG, "--all")
    assert [(t["id"], t["is-ecmp-enabled"]) for t in tables] == \
        [(t["id"], t["isEcmpEnabled"]) for t in routes["routeTables"]]
    rt_vcn = await oci.ok("network", "drg-route-table", "get", "--drg-route-table-id", oid("drgroutetable", "rt-vcn"))
    assert rt_vcn["import-drg-route-distribution-id"] == oid("drgroutedistribution", "rd-vcn")
    for table in routes["routeTables"]:
        rules = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", table["id"], "--all")
        assert [cli_rule(r) for r in rules] == [expected_rule(r) for r in table["rules"]], table["name"]
        assert len({r["id"] for r in rules}) == len(rules)
    dynamic = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", oid("drgroutetable", "rt-vcn"),
                           "--route-type", "DYNAMIC")
    assert len(dynamic) == 2
    static = await oci("network", "drg-route-rule", "list", "--drg-route-table-id", oid("drgroutetable", "rt-vcn"),
                       "--route-type", "STATIC")
    assert static.returncode == 0 and static.data in (None, [])

    # Pagination by hand: --limit 1, then --page with each opc-next-page, every rule exactly once.
    all_vcn = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", oid("drgroutetable", "rt-vcn"))
    seen: list[str] = []
    page: list[str] = []
    while True:
        result = await oci("network", "drg-route-rule", "list", "--drg-route-table-id",
                           oid("drgroutetable", "rt-vcn"), "--limit", "1", *page)
        assert result.returncode == 0, result.stderr
        assert len(result.data) == 1
        seen.append(result.data[0]["id"])
        token = result.doc.get("opc-next-page")
        if token is None:
            break
        page = ["--page", token]
    assert seen == [r["id"] for r in all_vcn] and len(set(seen)) == 2

    # Distributions and statements, the system ones (R45) included.
    dists = await oci.ok("network", "drg-route-distribution", "list", "--drg-id", DRG, "--all")
    assert {d["display-name"]: d["distribution-type"] for d in dists} == {
        "rd-vcn": "IMPORT", "rd-ipsec": "IMPORT", "rd-vc": "IMPORT",
        "Autogenerated Import Route Distribution for ALL routes": "IMPORT",
        "Autogenerated Import Route Distribution for VCN Routes": "IMPORT",
        "Default Export Route Distribution for DRG: drg1": "EXPORT", "att-vc1-lb-rd": "IMPORT"}
    statements = await oci.ok("network", "drg-route-distribution-statement", "list", "--route-distribution-id",
                              oid("drgroutedistribution", "rd-vc"), "--all")
    assert sorted((s["priority"], s["match-criteria"][0]["drg-attachment-id"]) for s in statements) == [
        (65534, oid("drgattachment", "att-tun2-lb")), (65535, oid("drgattachment", "att-tun1-lb"))]

    # The VC and the tunnels: live session and tunnel states, live Adj-RIB-In / Adj-RIB-Out.
    vc = await oci.ok("network", "virtual-circuit", "get", "--virtual-circuit-id", oid("virtualcircuit", "att-vc1"))
    assert sessions["att-vc1"]["state"] == "Established" and vc["bgp-session-state"] == "UP"
    assert (vc["customer-asn"], vc["oracle-bgp-asn"], vc["gateway-id"]) == (65001, 31898, DRG)
    assert vc["cross-connect-mappings"][0]["customer-bgp-peering-ip"] == "192.168.100.2/30"
    tunnels = await oci.ok("network", "ip-sec-tunnel", "list", "--ipsc-id", IPSC, "--all")
    assert [(t["display-name"], t["status"], t["bgp-session-info"]["bgp-state"]) for t in tunnels] == [
        (name, sessions[name]["tunnel"], "UP" if sessions[name]["state"] == "Established" else "DOWN")
        for name in ("att-tun1", "att-tun2")]
    tun2 = await oci.ok("network", "ip-sec-tunnel", "get", "--ipsc-id", IPSC, "--tunnel-id",
                        oid("ipsectunnel", "att-tun2"))
    assert (tun2["vpn-ip"], tun2["cpe-ip"], tun2["routing"]) == ("172.16.255.2", "192.168.200.1", "BGP")
    assert tun2["bgp-session-info"]["customer-bgp-asn"] == "65002"
    for name, best in (("att-tun1", True), ("att-tun2", False)):  # att-tun2's route loses in rt-vcn (R31)
        received = await oci.ok("network", "tunnel-route", "list-ip-sec-connection", "--ipsc-id", IPSC,
                                "--tunnel-id", oid("ipsectunnel", name), "--advertiser", "CUSTOMER", "--all")
        assert [(r["prefix"], r["as-path"], r["is-best-path"]) for r in received] == \
            [("172.20.10.0/24", [65002], best)]
        assert len(received) == sessions[name]["prefixesReceived"]
        sent = await oci.ok("network", "tunnel-route", "list-ip-sec-connection", "--ipsc-id", IPSC,
                            "--tunnel-id", oid("ipsectunnel", name), "--advertiser", "ORACLE", "--all")
        advertised = run.drg.advertised(name)["routes"]
        assert [(r["prefix"], r["as-path"]) for r in sent] == [(r["prefix"], r["asPath"]) for r in advertised]
        assert len(sent) == sessions[name]["prefixesAdvertised"]

    # Unknown ids and other services' paths: OCI's 404 body, exit 1, no retry loop.
    missing = await oci("network", "drg-route-table", "get", "--drg-route-table-id", oid("drgroutetable", "nope"))
    assert missing.returncode == 1 and "NotAuthorizedOrNotFound" in missing.stderr and '"status": 404' in missing.stderr
    other = await oci("iam", "region", "list")
    assert other.returncode == 1 and "NotAuthorizedOrNotFound" in other.stderr


def rule_details(destination: str, next_hop: str) -> dict[str, str]:
    return {"destinationType": "CIDR_BLOCK", "destination": destination,
            "nextHopDrgAttachmentId": oid("drgattachment", next_hop)}


async def test_cli_static_rules_are_validated_applied_advertised_and_kept(lab: Running, tmp_path: Path) -> None:
    run = lab
    oci = OciCli(tmp_path, run.api)
    path = run.path
    original = path.read_text()
    events = run.drg.events()

    # A static rule in rt-ipsec towards the VCN: in `drg routes`, and advertised to both tunnel peers.
    added = await oci.ok("network", "drg-route-rule", "add", "--drg-route-table-id", RT_IPSEC, "--route-rules",
                         json.dumps([rule_details("10.20.0.0/16", "att-vcn")]))
    assert [(r["destination"], r["destination-type"], r["next-hop-drg-attachment-id"], r["route-type"],
             r["route-provenance"]) for r in added] == [
        ("10.20.0.0/16", "CIDR_BLOCK", oid("drgattachment", "att-vcn"), "STATIC", "STATIC")]
    rule_id = added[0]["id"]
    table = next(t for t in (await drg_routes(run))["routeTables"] if t["name"] == "rt-ipsec")
    assert {"destination": "10.20.0.0/16", "destinationType": "CIDR_BLOCK", "nextHop": "att-vcn",
            "nextHopDrgAttachmentId": oid("drgattachment", "att-vcn"), "routeType": "STATIC",
            "routeProvenance": "STATIC", "asPath": [], "isConflict": False, "isEcmp": False,
            "isBlackhole": False} in table["rules"]
    for peer, next_hop in (("firewall-t1", "169.254.20.1"), ("firewall-t2", "169.254.20.5")):
        await run.lab[peer].wait_for(lambda p, peer=peer, nh=next_hop:
                                     adj_in(run.lab, peer).get("10.20.0.0/16") == ([31898], nh), 10)
    assert "10.20.0.0/16" not in run.lab["edge"].received()  # rt-vc is the VC's table, not rt-ipsec
    kinds = []
    while not events.queue.empty():
        kinds.append(events.queue.get_nowait().type)
    events.close()
    assert "config-applied" in kinds and "route-table-change" in kinds and "advertisement-change" in kinds

    # Written back: the file has the rule, the previous text is the .bak.
    saved = yaml.safe_load(path.read_text())
    assert {"destination": "10.20.0.0/16", "next_hop": "att-vcn"} in \
        next(t for t in saved["route_tables"] if t["name"] == "rt-ipsec")["static_routes"]
    assert path.with_name(path.name + ".bak").read_text() == original

    # R14: a static rule towards the VC is refused with the rule's text; nothing changes anywhere.
    before_routes = await drg_routes(run)
    before_file = path.read_text()
    bad = await oci("network", "drg-route-rule", "add", "--drg-route-table-id", RT_IPSEC, "--route-rules",
                    json.dumps([rule_details("10.30.0.0/16", "att-vc1")]))
    assert bad.returncode == 1 and '"status": 400' in bad.stderr
    assert "R14: static rules may not point at VIRTUAL_CIRCUIT attachment att-vc1" in bad.stderr
    assert await drg_routes(run) == before_routes
    assert path.read_text() == before_file
    assert "10.30.0.0/16" not in run.lab["firewall-t1"].received()

    # A dynamic (BGP-learned or VCN) rule cannot be removed or updated: a clear 400.
    rules = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC, "--all")
    dynamic = next(r for r in rules if r["route-type"] == "DYNAMIC")
    refused = await oci("network", "drg-route-rule", "remove", "--drg-route-table-id", RT_IPSEC,
                        "--route-rule-ids", json.dumps([dynamic["id"]]))
    assert refused.returncode == 1 and '"status": 400' in refused.stderr
    assert "is a DYNAMIC rule" in refused.stderr and "cannot be removed" in refused.stderr
    assert await drg_routes(run) == before_routes

    # Paging over more rules: --limit 2 by hand and --all --page-size 1 give every rule exactly once.
    await oci.ok("network", "drg-route-rule", "add", "--drg-route-table-id", RT_IPSEC, "--route-rules",
                 json.dumps([rule_details(f"10.{n}.0.0/16", "att-vcn") for n in (21, 22, 23)]))
    every = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC, "--all",
                         "--page-size", "1")
    assert len(every) == 5 and len({r["id"] for r in every}) == 5
    pages: list[list[str]] = []
    extra: list[str] = []
    while True:
        result = await oci("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC, "--limit", "2",
                           *extra)
        assert result.returncode == 0, result.stderr
        pages.append([r["id"] for r in result.data])
        token = result.doc.get("opc-next-page")
        if token is None:
            break
        extra = ["--page", token]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == [r["id"] for r in every]

    # Remove one of them again with the CLI: empty answer, gone from the table.
    removed = await oci("network", "drg-route-rule", "remove", "--drg-route-table-id", RT_IPSEC,
                        "--route-rule-ids", json.dumps([r["id"] for r in every if r["destination"] == "10.23.0.0/16"]))
    assert removed.returncode == 0 and removed.stdout.strip() == ""
    assert "10.23.0.0/16" not in {r["destination"] for r in run.drg.route_table("rt-ipsec")["rules"]}

    # Restart: a new daemon from the same file has the rules, with the same ids, and advertises them.
    await run.drg.stop()
    run.drg = Drg(path)
    await run.drg.start()
    after = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC, "--route-type",
                         "STATIC", "--all")
    kept = [r for r in every if r["route-type"] == "STATIC" and r["destination"] != "10.23.0.0/16"]
    assert [(r["id"], r["destination"]) for r in after] == [(r["id"], r["destination"]) for r in kept]
    assert rule_id in {r["id"] for r in after}
    await all_up(run)
    await run.lab["firewall-t1"].wait_for(lambda p: "10.20.0.0/16" in p.received(), 30)
