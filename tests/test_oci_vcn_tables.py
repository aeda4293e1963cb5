"""VCN route tables in OCI's API (ListRouteTables, GetRouteTable, UpdateRouteTable) and a write-back
that edits the user's file instead of rewriting it.

The daemon runs ``examples/hub-firewall.yaml`` as written - comments, flow-style rules, column-aligned
remarks - with only its ports changed, and no on-prem peers (the sessions stay down; nothing here
needs them). Reads must show every VCN's tables (the implicit ``default`` included) in the SDK's
``RouteTable`` shape, the hub attachment's ``networkDetails.routeTableId``, and page like the other
lists. An update must be refused with the rule and a fix when OCI would refuse it (R71-R73), honour
``if-match``, change what the hub offers to the DRG (R78), and leave every line of the file it did not
change byte for byte. The last test drives the real ``oci`` CLI.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.config.load import parse_config
from tests.support.oci import COMPARTMENT, Api, OciCli, oid, running_api
from tests.support.paths import EXAMPLES
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)

BASE = "/20160918"
INGRESS = oid("routetable", "vcn-hub.rt-hub-ingress")
FW1 = oid("privateip", "vcn-hub.fw1")
DRG_ID = oid("drg", "drg1")


def hub_file(tmp: Path) -> Path:
    """examples/hub-firewall.yaml as its author wrote it, on free ports."""
    text = (EXAMPLES / "hub-firewall.yaml").read_text()
    text = text.replace("127.0.0.1:1790", f"127.0.0.1:{free_port()}")
    text = text.replace("127.0.0.1:8790", f"127.0.0.1:{free_port()}")
    text = re.sub(r"peer_port: 1791", lambda _m: f"peer_port: {free_port()}", text)
    path = tmp / "hub-firewall.yaml"
    path.write_text(text)
    return path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(hub_file(tmp_path)) as client:
        yield client


def rule(destination: str, target: str, description: str | None = None) -> dict[str, Any]:
    return {"destination": destination, "destinationType": "CIDR_BLOCK", "cidrBlock": destination,
            "networkEntityId": target, "description": description, "routeType": "STATIC"}


async def test_list_and_get_show_every_vcn_table_in_the_sdk_shape(api: Api) -> None:
    status, tables, headers = await api.request("GET", f"{BASE}/routeTables?compartmentId={COMPARTMENT}")
    assert status == 200 and "opc-next-page" not in headers
    assert [t["id"] for t in tables] == [oid("routetable", n) for n in (
        "vcn-hub.default", "vcn-hub.rt-hub-ingress", "vcn-hub.rt-fw", "vcn-spoke1.default", "vcn-spoke1.rt-sp1",
        "vcn-spoke2.default", "vcn-spoke2.rt-sp2")]
    ingress = tables[1]
    assert {k: v for k, v in ingress.items() if k != "timeCreated"} == {
        "id": INGRESS, "compartmentId": oid("compartment", "drg1"), "vcnId": oid("vcn", "vcn-hub"),
        "displayName": "rt-hub-ingress", "lifecycleState": "AVAILABLE", "definedTags": {}, "freeformTags": {},
        "routeRules": [rule(d, FW1) for d in ("10.10.0.0/16", "10.11.0.0/16", "172.20.10.0/24")]}
    assert tables[2]["routeRules"][0] == rule("10.10.0.0/16", DRG_ID)
    assert (tables[0]["displayName"], tables[0]["routeRules"]) == ("Default Route Table for vcn-hub", [])

    # Filters, sorting and pages, as for the DRG's own lists.
    status, spoke, _ = await api.request(
        "GET", f"{BASE}/routeTables?compartmentId=x&vcnId={oid('vcn', 'vcn-spoke1')}&sortBy=DISPLAYNAME&sortOrder=DESC")
    assert status == 200 and [t["displayName"] for t in spoke] == ["rt-sp1", "Default Route Table for vcn-spoke1"]
    ids: list[str] = []
    query = "compartmentId=x&limit=3"
    while True:
        status, page, headers = await api.request("GET", f"{BASE}/routeTables?{query}")
        assert status == 200 and 0 < len(page) <= 3
        ids.extend(t["id"] for t in page)
        if "opc-next-page" not in headers:
            break
        query = f"compartmentId=x&limit=3&page={headers['opc-next-page']}"
    assert ids == [t["id"] for t in tables]
    status, body, _ = await api.request("GET", f"{BASE}/routeTables")
    assert (status, body["code"]) == (400, "MissingParameter")

    status, got, headers = await api.request("GET", f"{BASE}/routeTables/{INGRESS}")
    assert status == 200 and got == ingress and headers["etag"]
    status, body, _ = await api.request("GET", f"{BASE}/routeTables/{oid('routetable', 'vcn-hub.nope')}")
    assert (status, body["code"]) == (404, "NotAuthorizedOrNotFound")

    # The hub attachment's ingress table; a spoke has none (R74), nor has a VC.
    for name, expected in (("att-hub", INGRESS), ("att-spoke1", None), ("att-vc1", None)):
        status, att, _ = await api.request("GET", f"{BASE}/drgAttachments/{oid('drgattachment', name)}")
        assert status == 200 and att["routeTableId"] == expected, name
        assert att["networkDetails"].get("routeTableId") == expected, name
    status, atts, _ = await api.request("GET", f"{BASE}/drgAttachments?compartmentId=x")
    assert [(a["displayName"], a["networkDetails"]["routeTableId"]) for a in atts] == [
        ("att-hub", INGRESS), ("att-spoke1", None), ("att-spoke2", None)]


async def test_update_is_checked_applied_and_written_into_the_file(api: Api) -> None:
    assert api.path is not None
    original = api.path.read_text()
    status, before, headers = await api.request("GET", f"{BASE}/routeTables/{INGRESS}")
    rules = [{"destination": r["destination"], "networkEntityId": r["networkEntityId"]} for r in before["routeRules"]]
    wanted = [*rules, {"destination": "10.12.0.0/16", "networkEntityId": FW1, "description": "spoke 3"}]

    status, body, _ = await api.request("PUT", f"{BASE}/routeTables/{INGRESS}", {"routeRules": wanted},
                                        {"if-match": "stale"})
    assert (status, body["code"]) == (412, "PreconditionFailed")
    status, after, new_headers = await api.request("PUT", f"{BASE}/routeTables/{INGRESS}", {"routeRules": wanted},
                                                   {"if-match": headers["etag"]})
    assert status == 200 and after["routeRules"][-1] == rule("10.12.0.0/16", FW1, "spoke 3")
    assert new_headers["etag"] != headers["etag"]

    # R78: the hub now offers 10.12.0.0/16; the autogenerated VCN table imports it with att-hub as next hop.
    offered = {(r["destination"], r["nextHop"]) for r in api.drg.route_table("autogen-rt-vcn")["rules"]}
    assert ("10.12.0.0/16", "att-hub") in offered

    # The file: one line more, in the flow style of its neighbours; every other line as it was.
    text = api.path.read_text()
    assert api.path.with_name("hub-firewall.yaml.bak").read_text() == original
    new_lines = text.splitlines()
    added = [line for line in new_lines if line not in original.splitlines()]
    assert added == ["          - {destination: 10.12.0.0/16, target: {private_ip: fw1}, description: spoke 3}"]
    assert [line for line in new_lines if line not in added] == original.splitlines()
    assert next(t for t in parse_config(text).vcns[0].route_tables if t.name == "rt-hub-ingress").rules[-1] \
        .description == "spoke 3"

    # A DRG route rule added afterwards keeps the file just as well (every comment line included).
    status, _, _ = await api.request(
        "POST", f"{BASE}/drgRouteTables/{oid('drgroutetable', 'rt-ipsec')}/actions/addDrgRouteRules",
        {"routeRules": [{"destinationType": "CIDR_BLOCK", "destination": "10.12.0.0/16",
                         "nextHopDrgAttachmentId": oid("drgattachment", "att-hub")}]})
    assert status == 200
    final = api.path.read_text().splitlines()
    assert [line for line in final if line not in new_lines] == \
        ["      - {destination: 10.12.0.0/16, next_hop: att-hub}"]
    assert [line for line in final if line.lstrip().startswith("#")] == \
        [line for line in original.splitlines() if line.lstrip().startswith("#")]


async def test_the_implicit_default_table_becomes_a_table_of_the_file(api: Api) -> None:
    assert api.path is not None
    default = oid("routetable", "vcn-spoke1.default")
    status, got, _ = await api.request("PUT", f"{BASE}/routeTables/{default}", {
        "displayName": "spoke1 default", "routeRules": [{"cidrBlock": "0.0.0.0/0", "networkEntityId": DRG_ID}]})
    assert status == 200 and got["id"] == default and got["displayName"] == "spoke1 default"
    assert got["routeRules"] == [rule("0.0.0.0/0", DRG_ID)]
    spoke1 = parse_config(api.path.read_text()).vcns[1]
    assert [(t.name, t.display_name, [r.target.kind for r in t.rules]) for t in spoke1.route_tables] == [
        ("rt-sp1", None, ["drg"]), ("default", "spoke1 default", ["drg"])]
    status, again, _ = await api.request("GET", f"{BASE}/routeTables/{default}")
    assert again == got


@pytest.mark.parametrize(("table", "detail", "expected"), [
    (INGRESS, {"destination": "10.12.0.0/16", "networkEntityId": DRG_ID},
     "R73: rt-hub-ingress is the ingress route table of att-hub: its rule 10.12.0.0/16 may not target drg"),
    (oid("routetable", "vcn-spoke1.rt-sp1"), {"destination": "10.12.0.0/16", "networkEntityId": FW1},
     "R72: routeRules[0].networkEntityId is private IP fw1 of VCN vcn-hub"),
    (INGRESS, {"destination": "10.12.0.0/16", "networkEntityId": "ocid1.drg.oc1..other"},
     "R71: routeRules[0].networkEntityId ocid1.drg.oc1..other is not the DRG attached to VCN vcn-hub"),
    (INGRESS, {"destination": "10.12.0.0/33", "networkEntityId": FW1}, "routeRules[0]"),
    (INGRESS, {"destination": "all-iad-services", "destinationType": "SERVICE_CIDR_BLOCK", "networkEntityId": FW1},
     "CIDR_BLOCK destinations only"),
    (INGRESS, {"destination": "10.12.0.0/16", "networkEntityId": "ocid1.instance.oc1..x"},
     "is not a target in VCN vcn-hub"),
])
async def test_updates_oci_would_refuse_change_nothing(api: Api, table: str, detail: dict[str, Any],
                                                       expected: str) -> None:
    assert api.path is not None
    before_file, before_config = api.path.read_text(), api.drg.daemon.config
    status, body, _ = await api.request("PUT", f"{BASE}/routeTables/{table}", {"routeRules": [detail]})
    assert (status, body["code"]) == (400, "InvalidParameter") and expected in body["message"], body
    if body["message"].startswith("R"):
        assert ". Fix: " in body["message"]
    assert api.path.read_text() == before_file and api.drg.daemon.config is before_config


async def test_oci_cli_lists_gets_and_updates_vcn_route_tables(api: Api, tmp_path: Path) -> None:
    oci = OciCli(tmp_path, api.drg.daemon.config.api.listen)
    hub = oid("vcn", "vcn-hub")
    listed = await oci.ok("network", "route-table", "list", "--compartment-id", COMPARTMENT, "--vcn-id", hub, "--all")
    assert [(t["display-name"], t["vcn-id"], len(t["route-rules"])) for t in listed] == [
        ("Default Route Table for vcn-hub", hub, 0), ("rt-hub-ingress", hub, 3), ("rt-fw", hub, 3)]
    got = await oci("network", "route-table", "get", "--rt-id", INGRESS)
    assert got.returncode == 0 and got.doc["etag"]
    assert [(r["destination"], r["destination-type"], r["network-entity-id"], r["route-type"])
            for r in got.data["route-rules"]] == [(d, "CIDR_BLOCK", FW1, "STATIC")
                                                  for d in ("10.10.0.0/16", "10.11.0.0/16", "172.20.10.0/24")]
    att = await oci.ok("network", "drg-attachment", "get", "--drg-attachment-id", oid("drgattachment", "att-hub"))
    assert att["network-details"]["route-table-id"] == INGRESS and att["route-table-id"] == INGRESS

    rules = json.dumps([{"destination": "10.10.0.0/16", "networkEntityId": FW1}])
    updated = await oci.ok("network", "route-table", "update", "--rt-id", INGRESS, "--route-rules", rules,
                           "--if-match", got.doc["etag"], "--force")
    assert [r["destination"] for r in updated["route-rules"]] == ["10.10.0.0/16"]
    refused = await oci("network", "route-table", "update", "--rt-id", INGRESS, "--force", "--route-rules",
                        json.dumps([{"destination": "10.10.0.0/16", "networkEntityId": DRG_ID}]))
    assert refused.returncode == 1 and '"status": 400' in refused.stderr and "R73" in refused.stderr
