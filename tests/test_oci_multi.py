"""OCI's API of a daemon that runs several DRGs (a ``drgs:`` file): examples/two-regions.yaml, comments
and all, on free ports and without BGP peers (oci-drg-transit.md section 7, R94-R110).

Lists must cover both DRGs and narrow to one with ``drgId``/``vcnId`` as OCI does; gets and changes find
the DRG from the object's id; the two RPCs show each other as ``peerId`` (R94). A change to drg-b is
validated with the whole file (R104 names drg-b), written back in place under ``drgs[1]`` (the diff of
the file is exactly the changed lines; it loads back to what runs) and applied; a static rule added to
drg-a's RPC table reaches drg-b over the RPC (R97, R98, R99). The last test drives the real ``oci`` CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest

from controlplane.config.drgs import load_design, parse_design
from controlplane.config.schema import RouteTable
from controlplane.oci.writeback import render
from tests.support.oci import COMPARTMENT, Api, OciCli, cli_rule, expected_rule, oid, regions_file, running_api

pytestmark = pytest.mark.timeout(120)

BASE = "/20160918"
DRG_A, DRG_B = oid("drg", "drg-a", "drg-a"), oid("drg", "drg-b", "drg-b")
RT_B_VCN = oid("drgroutetable", "autogen-rt-vcn", "drg-b")
RT_B_OTHER = oid("drgroutetable", "autogen-rt-other", "drg-b")
RT_SN_B = oid("routetable", "vcn-b.rt-sn-b", "drg-b")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(regions_file(tmp_path)) as client:
        yield client


async def ok(api: Api, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    status, data, _ = await api.request(method, BASE + path, body, headers)
    assert status == 200, (method, path, data)
    return data


def api_rule(rule: dict[str, Any]) -> tuple[Any, ...]:
    a = rule["attributes"]
    return (rule["destination"], rule["nextHopDrgAttachmentId"], rule["routeType"], rule["routeProvenance"],
            rule["isConflict"], rule["isBlackhole"], a["nextHop"], a["asPath"], a["isEcmp"])


def changed_lines(before: str, after: str) -> list[tuple[list[str], list[str]]]:
    """(removed, added) lines of each place where two texts differ."""
    old, new = before.splitlines(), after.splitlines()
    return [(old[i1:i2], new[j1:j2]) for tag, i1, i2, j1, j2 in
            SequenceMatcher(None, old, new, autojunk=False).get_opcodes() if tag != "equal"]


async def test_lists_cover_every_drg_and_filter_as_oci_does(api: Api) -> None:
    q = f"compartmentId={COMPARTMENT}"
    assert [d["id"] for d in await ok(api, "GET", f"/drgs?{q}")] == [DRG_A, DRG_B]
    drg_b = await ok(api, "GET", f"/drgs/{DRG_B}")
    assert drg_b["displayName"] == "drg-b" and drg_b["defaultDrgRouteTables"]["vcn"] == RT_B_VCN
    every = await ok(api, "GET", f"/drgAttachments?{q}&attachmentType=ALL")
    assert [(a["displayName"], a["drgId"]) for a in every] == [
        ("att-a-vcn", DRG_A), ("att-a-vc", DRG_A), ("att-a-rpc", DRG_A),
        ("att-b-vcn", DRG_B), ("att-b-vc", DRG_B), ("att-b-rpc", DRG_B)]
    only_b = await ok(api, "GET", f"/drgAttachments?{q}&attachmentType=ALL&drgId={DRG_B}")
    assert [a["displayName"] for a in only_b] == ["att-b-vcn", "att-b-vc", "att-b-rpc"]
    by_vcn = await ok(api, "GET", f"/drgAttachments?{q}&vcnId={oid('vcn', 'vcn-b', 'drg-b')}")
    assert [a["displayName"] for a in by_vcn] == ["att-b-vcn"]
    att = await ok(api, "GET", f"/drgAttachments/{oid('drgattachment', 'att-b-rpc', 'drg-b')}")
    assert att["drgRouteTableId"] == RT_B_OTHER  # R96

    tables = await ok(api, "GET", f"/drgRouteTables?drgId={DRG_B}")
    assert {t["drgId"] for t in tables} == {DRG_B}
    assert {t["id"] for t in tables} >= {RT_B_VCN, RT_B_OTHER}
    assert [t["displayName"] for t in await ok(api, "GET", f"/drgRouteTables?drgId={DRG_A}&displayName=rt-a-rpc")] \
        == ["rt-a-rpc"]
    dists = await ok(api, "GET", f"/drgRouteDistributions?drgId={DRG_A}")
    assert {"rd-a-vcn", "rd-a-vc", "rd-a-rpc"} <= {d["displayName"] for d in dists}
    statements = await ok(api, "GET", f"/drgRouteDistributions/{oid('drgroutedistribution', 'rd-a-rpc', 'drg-a')}"
                                      "/drgRouteDistributionStatements")
    assert [s["matchCriteria"][0]["attachmentType"] for s in statements] == ["VIRTUAL_CIRCUIT", "VCN"]



async def test_vcn_tables_rpcs_and_vcs_of_every_drg(api: Api) -> None:
    q = f"compartmentId={COMPARTMENT}"
    vcn_tables = await ok(api, "GET", f"/routeTables?{q}")
    assert [t["displayName"] for t in vcn_tables] == ["Default Route Table for vcn-a", "rt-sn-a",
                                                      "Default Route Table for vcn-b", "rt-sn-b"]
    b_tables = await ok(api, "GET", f"/routeTables?{q}&vcnId={oid('vcn', 'vcn-b', 'drg-b')}")
    assert [t["id"] for t in b_tables] == [oid("routetable", "vcn-b.default", "drg-b"), RT_SN_B]
    assert (await ok(api, "GET", f"/routeTables/{RT_SN_B}"))["routeRules"][0]["networkEntityId"] == DRG_B

    rpcs = await ok(api, "GET", f"/remotePeeringConnections?{q}")  # R94: each RPC names the other
    a_rpc, b_rpc = oid("remotepeeringconnection", "att-a-rpc", "drg-a"), oid("remotepeeringconnection",
                                                                              "att-b-rpc", "drg-b")
    assert [(r["id"], r["drgId"], r["peerId"], r["peeringStatus"]) for r in rpcs] == [
        (a_rpc, DRG_A, b_rpc, "PEERED"), (b_rpc, DRG_B, a_rpc, "PEERED")]
    assert (await ok(api, "GET", f"/remotePeeringConnections/{b_rpc}"))["peerId"] == a_rpc
    assert [r["peerRegionName"] for r in rpcs] == ["us-phoenix-1", "us-ashburn-1"]  # the peer DRG's region
    assert [r["id"] for r in await ok(api, "GET", f"/remotePeeringConnections?{q}&drgId={DRG_B}")] == [b_rpc]

    vcs = await ok(api, "GET", f"/virtualCircuits?{q}")
    assert [(v["displayName"], v["gatewayId"]) for v in vcs] == [("att-a-vc", DRG_A), ("att-b-vc", DRG_B)]
    vc_b = await ok(api, "GET", f"/virtualCircuits/{oid('virtualcircuit', 'att-b-vc', 'drg-b')}")
    assert vc_b["crossConnectMappings"][0]["customerBgpPeeringIp"] == "192.168.101.2/30"
    assert await ok(api, "GET", f"/ipsecConnections?{q}") == []


async def test_the_second_drgs_rules_and_unknown_ids(api: Api) -> None:
    # The second DRG's rules are `drg routes --drg drg-b`'s, vcn-a's prefix learned over the RPC included.
    rules = await ok(api, "GET", f"/drgRouteTables/{RT_B_VCN}/drgRouteRules")
    want = api.drg.route_table("autogen-rt-vcn", drg="drg-b")["rules"]
    assert [api_rule(r) for r in rules] == [expected_rule(r) for r in want]
    learned = next(r for r in rules if r["destination"] == "10.10.1.0/24")  # sn-a (SUBNET_CIDRS)
    assert learned["nextHopDrgAttachmentId"] == oid("drgattachment", "att-b-rpc", "drg-b")

    # Unknown DRGs and objects: 404s, as OCI answers.
    for path in (f"/drgRouteTables?drgId={oid('drg', 'drg-c', 'drg-c')}", f"/drgs/{oid('drg', 'drg-c', 'drg-c')}",
                 f"/drgRouteTables/{oid('drgroutetable', 'rt-a-vcn', 'drg-b')}"):
        status, body, _ = await api.request("GET", BASE + path)
        assert (status, body["code"]) == (404, "NotAuthorizedOrNotFound"), path
    status, body, _ = await api.request("GET", f"{BASE}/drgRouteTables?drgId=nope")
    assert body["message"] == f"DRG nope not found (this emulator runs {DRG_A}, {DRG_B})"


async def test_changes_to_the_second_drg_are_written_back_under_its_item(api: Api, tmp_path: Path) -> None:
    assert api.path is not None
    original = api.path.read_text()

    # UpdateRouteTable of a VCN table of drg-b: one new line in drgs[1].vcns[0].route_tables[0].
    rules = [{"destination": "0.0.0.0/0", "networkEntityId": DRG_B},
             {"destination": "172.16.0.0/12", "networkEntityId": DRG_B, "description": "to on-prem"}]
    status, table, headers = await api.request("GET", f"{BASE}/routeTables/{RT_SN_B}")
    assert (status, table["id"]) == (200, RT_SN_B)
    body = await ok(api, "PUT", f"/routeTables/{RT_SN_B}", {"routeRules": rules}, {"if-match": headers["etag"]})
    assert [r["destination"] for r in body["routeRules"]] == ["0.0.0.0/0", "172.16.0.0/12"]
    after_vcn = api.path.read_text()
    assert changed_lines(original, after_vcn) == [
        ([], ["              - {destination: 172.16.0.0/12, target: drg, description: to on-prem}"])]
    assert (tmp_path / "two-regions.yaml.bak").read_text() == original

    # UpdateDrgRouteTable of one of drg-b's default tables: it becomes a table of drgs[1], nothing else moves.
    body = await ok(api, "PUT", f"/drgRouteTables/{RT_B_VCN}", {"isEcmpEnabled": True})
    assert body["isEcmpEnabled"] is True and body["drgId"] == DRG_B
    assert (await ok(api, "GET", f"/drgRouteTables/{RT_B_VCN}"))["isEcmpEnabled"] is True
    after = api.path.read_text()
    assert changed_lines(after_vcn, after) == [([], ["    route_tables:", "      - name: autogen-rt-vcn",
                                                     "        import_distribution: autogen-rd-all",
                                                     "        ecmp: true"])]
    assert after.index("ecmp: true") < after.index("\nspeaker:")  # inside drgs[1], before the shared sections
    design = load_design(api.path)
    assert isinstance(design, list) and [c.drg.name for c in design] == ["drg-a", "drg-b"]
    assert [(t.name, t.ecmp) for t in design[1].route_tables] == [("autogen-rt-vcn", True)]
    running = api.drg.daemon.routers
    assert design == [running["drg-a"].config, running["drg-b"].config]  # a restart runs what runs now

    # An invalid change is checked with the whole file, names its DRG, and changes nothing (R104).
    status, err, _ = await api.request("POST", f"{BASE}/drgRouteTables/{RT_B_OTHER}/actions/addDrgRouteRules", {
        "routeRules": [{"destinationType": "CIDR_BLOCK", "destination": "10.99.0.0/16",
                        "nextHopDrgAttachmentId": oid("drgattachment", "att-b-rpc", "drg-b")}]})
    assert (status, err["code"]) == (400, "InvalidParameter") and err["message"].startswith("R104: drg-b: ")
    status, err, _ = await api.request("POST", f"{BASE}/drgRouteTables/{RT_B_OTHER}/actions/addDrgRouteRules", {
        "routeRules": [{"destinationType": "CIDR_BLOCK", "destination": "10.99.0.0/16",
                        "nextHopDrgAttachmentId": oid("drgattachment", "att-a-vcn", "drg-a")}]})
    assert status == 400 and err["message"].endswith(f"is not an attachment of DRG {DRG_B}")
    assert api.path.read_text() == after



async def test_a_static_rule_of_drg_a_reaches_drg_b_over_the_rpc(api: Api) -> None:
    """R97: drg-a exports rt-a-rpc's active rules over att-a-rpc; drg-b learns them as DYNAMIC rules with
    provenance STATIC (R98) at network distance 1 (R99)."""
    rt_a_rpc = oid("drgroutetable", "rt-a-rpc", "drg-a")
    added = await ok(api, "POST", f"/drgRouteTables/{rt_a_rpc}/actions/addDrgRouteRules", {"routeRules": [
        {"destinationType": "CIDR_BLOCK", "destination": "10.99.0.0/16",
         "nextHopDrgAttachmentId": oid("drgattachment", "att-a-vcn", "drg-a")}]})
    assert added[0]["id"].startswith("ocid1.drgrouterule.emu.drg-a.rt-a-rpc.s")
    rules = await ok(api, "GET", f"/drgRouteTables/{RT_B_VCN}/drgRouteRules?routeType=DYNAMIC")
    learned = next(r for r in rules if r["destination"] == "10.99.0.0/16")
    assert (learned["nextHopDrgAttachmentId"], learned["routeProvenance"]) == (
        oid("drgattachment", "att-b-rpc", "drg-b"), "STATIC")
    assert (learned["attributes"]["networkDistance"], learned["attributes"]["drgPath"]) == ("1", "drg-a")
    assert api.path is not None
    design = load_design(api.path)
    assert isinstance(design, list)
    table = next(t for t in design[0].route_tables if t.name == "rt-a-rpc")
    assert [r.destination for r in table.static_routes] == ["10.99.0.0/16"]


async def test_the_oci_cli_lists_both_drgs_and_the_second_drgs_rules(api: Api, tmp_path: Path) -> None:
    oci = OciCli(tmp_path, api.base.removeprefix("http://"))
    drgs = await oci.ok("network", "drg", "list", "--compartment-id", COMPARTMENT)
    assert [(d["id"], d["display-name"]) for d in drgs] == [(DRG_A, "drg-a"), (DRG_B, "drg-b")]
    tables = await oci.ok("network", "drg-route-table", "list", "--drg-id", DRG_B, "--all")
    assert RT_B_VCN in [t["id"] for t in tables] and {t["drg-id"] for t in tables} == {DRG_B}
    rules = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_B_VCN, "--all")
    want = api.drg.route_table("autogen-rt-vcn", drg="drg-b")["rules"]
    assert [cli_rule(r) for r in rules] == [expected_rule(r) for r in want] and len(rules) >= 2


def test_a_drgs_file_that_no_longer_loads_is_written_whole(tmp_path: Path) -> None:
    """The write-back's fallback for a multi-DRG file: every DRG under ``drgs:``, the shared sections and
    the on-prem peers of every DRG once, under a header saying so; it loads back to the running design."""
    path = regions_file(tmp_path)
    old = load_design(path)
    assert isinstance(old, list)
    table = RouteTable(name="autogen-rt-vcn", import_distribution="autogen-rd-all", ecmp=True)
    new = [old[0], old[1].model_copy(update={"route_tables": [table]})]
    assert changed_lines(path.read_text(), render(path, old, new, "x"))[0][0] == []  # in place while it loads
    path.write_text("drgs: [this is not\n")
    text = render(path, old, new, "UpdateDrgRouteTable autogen-rt-vcn of drg-b through the OCI API")
    assert text.startswith("# Written whole by the DRG emulator after UpdateDrgRouteTable autogen-rt-vcn of drg-b")
    assert parse_design(text) == new
