"""Remote peering connections in OCI's API: RemotePeeringConnection list/get, RPC DRG attachments and
rules learned over an RPC (oci-drg-transit.md 2.4, 2.5, C1, R94-R110).

One DRG runs a small file with no on-prem peers: a VCN attachment on OCI's default tables, an RPC whose
peer is ``external`` and offers two routes from its file (R109; one of VCN provenance two DRGs away, one
an on-prem route of IPSEC_TUNNEL provenance), and an RPC to a DRG run by another daemon that is still
``PENDING`` (R110: it offers nothing). The reads must show the SDK's ``RemotePeeringConnection`` with the
file's peering status and the peer's id, the attachments' ``networkDetails`` of type
REMOTE_PEERING_CONNECTION on the RPC default table (R96), and the learned rules with their origin's
provenance (C1) and ``networkDistance``/``drgPath`` only inside ``attributes``. The last test drives the
real ``oci`` CLI and the SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

from controlplane.oci import rpc
from controlplane.oci import views as m
from tests.support.oci import COMPARTMENT, DRG, Api, OciCli, call, oid, running_api, sdk_client
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(120)

BASE = "/20160918"
RPC_EXT = oid("remotepeeringconnection", "att-rpc-ext")
RPC_B = oid("remotepeeringconnection", "att-rpc-b")
RT_VCN = oid("drgroutetable", "autogen-rt-vcn")
RT_OTHER = oid("drgroutetable", "autogen-rt-other")


def rpc_file(tmp: Path) -> Path:
    doc = {"drg": {"name": "drg1"}, "speaker": {"listen": f"127.0.0.1:{free_port()}"},
           "api": {"listen": f"127.0.0.1:{free_port()}"},
           "vcns": [{"name": "vcn-app", "cidrs": ["10.10.0.0/16"], "subnets": ["10.10.1.0/24"]}],
           "attachments": [
               {"name": "att-vcn", "type": "VCN", "vcn": "vcn-app"},
               {"name": "att-rpc-ext", "type": "REMOTE_PEERING_CONNECTION", "peer": "external",
                "display_name": "to region C", "offered_routes": [
                    {"prefix": "10.30.1.0/24", "provenance": "VCN", "as_path": [], "network_distance": 2},
                    {"prefix": "172.21.0.0/16", "provenance": "IPSEC_TUNNEL", "as_path": [64512, 65002]}]},
               {"name": "att-rpc-b", "type": "REMOTE_PEERING_CONNECTION", "peering_status": "PENDING",
                "peer": {"drg": "drg-b", "attachment": "att-b-rpc",
                         "remote": {"address": "127.0.0.1", "port": free_port(), "connect": "passive"}}}]}
    path = tmp / "rpc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(rpc_file(tmp_path)) as client:
        yield client


def expected_rpc(ident: str, name: str, status: str, peer: str | None) -> dict[str, Any]:
    return {"id": ident, "compartmentId": oid("compartment", "drg1"), "drgId": DRG, "displayName": name,
            "definedTags": {}, "freeformTags": {}, "isCrossTenancyPeering": False, "lifecycleState": "AVAILABLE",
            "peeringStatus": status, "peerId": peer, "peerRegionName": None,
            "peerTenancyId": rpc.TENANCY if peer else None}


async def test_list_and_get_remote_peering_connections(api: Api) -> None:
    status, items, headers = await api.request("GET", f"{BASE}/remotePeeringConnections?compartmentId={COMPARTMENT}")
    assert status == 200 and "opc-next-page" not in headers
    assert [{k: v for k, v in i.items() if k != "timeCreated"} for i in items] == [
        expected_rpc(RPC_EXT, "to region C", "PEERED", None),  # external: nothing known of the peer
        expected_rpc(RPC_B, "att-rpc-b", "PENDING", "ocid1.remotepeeringconnection.emu.drg-b.att-b-rpc")]
    status, got, headers = await api.request("GET", f"{BASE}/remotePeeringConnections/{RPC_B}")
    assert status == 200 and got == items[1] and headers["etag"] == m.etag(got)

    # drgId, sorting and pages as for the other lists; OCI's errors otherwise.
    status, same, _ = await api.request("GET", f"{BASE}/remotePeeringConnections?compartmentId=x&drgId={DRG}")
    assert (status, same) == (200, items)
    status, ordered, _ = await api.request(
        "GET", f"{BASE}/remotePeeringConnections?compartmentId=x&sortBy=DISPLAYNAME&sortOrder=DESC")
    assert [i["displayName"] for i in ordered] == ["to region C", "att-rpc-b"]
    status, page, headers = await api.request("GET", f"{BASE}/remotePeeringConnections?compartmentId=x&limit=1")
    assert [i["id"] for i in page] == [RPC_EXT]
    status, page, _ = await api.request(
        "GET", f"{BASE}/remotePeeringConnections?compartmentId=x&limit=1&page={headers['opc-next-page']}")
    assert [i["id"] for i in page] == [RPC_B]
    for path, code in ((f"remotePeeringConnections?compartmentId=x&drgId={DRG}x", "NotAuthorizedOrNotFound"),
                       ("remotePeeringConnections", "MissingParameter"),
                       (f"remotePeeringConnections/{RPC_EXT}x", "NotAuthorizedOrNotFound"),
                       (f"remotePeeringConnections/{oid('drgattachment', 'att-rpc-ext')}",
                        "NotAuthorizedOrNotFound")):
        status, body, _ = await api.request("GET", f"{BASE}/{path}")
        assert body["code"] == code and status in (400, 404), path


def test_the_peer_region_is_the_peer_drgs_region_when_the_file_gives_one() -> None:
    """A multi-DRG file (section 7) names each DRG's region; a single-DRG file or a remote peer does not."""
    config = SimpleNamespace(drg=SimpleNamespace(name="drg-a", region="us-ashburn-1"),
                             drgs=[SimpleNamespace(drg=SimpleNamespace(name="drg-a", region="us-ashburn-1")),
                                   SimpleNamespace(drg=SimpleNamespace(name="drg-b", region="us-phoenix-1")),
                                   SimpleNamespace(drg=SimpleNamespace(name="drg-c"))])
    view = cast(m.View, SimpleNamespace(config=config))
    assert [rpc.peer_region(view, d) for d in ("drg-b", "drg-a", "drg-c", "drg-z")] == [
        "us-phoenix-1", "us-ashburn-1", None, None]
    single = cast(m.View, SimpleNamespace(config=SimpleNamespace(drg=SimpleNamespace(name="drg1"))))
    assert rpc.peer_region(single, "drg-b") is None


async def test_rpc_attachments_have_rpc_network_details_and_the_rpc_default_table(api: Api) -> None:
    status, drg, _ = await api.request("GET", f"{BASE}/drgs/{DRG}")
    assert drg["defaultDrgRouteTables"]["remotePeeringConnection"] == RT_OTHER  # R96
    status, atts, _ = await api.request(
        "GET", f"{BASE}/drgAttachments?compartmentId=x&attachmentType=REMOTE_PEERING_CONNECTION")
    assert status == 200
    assert [(a["displayName"], a["networkDetails"], a["drgRouteTableId"], a["exportDrgRouteDistributionId"],
             a["vcnId"]) for a in atts] == [
        (name, {"type": "REMOTE_PEERING_CONNECTION", "id": ident}, RT_OTHER,
         oid("drgroutedistribution", "autogen-rd-export"), None)  # R96, R97: the default export distribution
        for name, ident in (("to region C", RPC_EXT), ("att-rpc-b", RPC_B))]
    status, by_network, _ = await api.request(
        "GET", f"{BASE}/drgAttachments?compartmentId=x&attachmentType=ALL&networkId={RPC_B}")
    assert [a["id"] for a in by_network] == [oid("drgattachment", "att-rpc-b")]
    status, vcn_only, _ = await api.request("GET", f"{BASE}/drgAttachments?compartmentId=x")
    assert [a["displayName"] for a in vcn_only] == ["att-vcn"]  # OCI lists VCN attachments by default
    status, got, _ = await api.request("GET", f"{BASE}/drgAttachments/{oid('drgattachment', 'att-rpc-ext')}")
    assert status == 200 and got == atts[0]


async def test_rules_learned_over_an_rpc_keep_their_provenance_and_carry_distance_in_attributes(api: Api) -> None:
    status, rules, _ = await api.request("GET", f"{BASE}/drgRouteTables/{RT_VCN}/drgRouteRules")
    assert status == 200
    learned = [r for r in rules if r["nextHopDrgAttachmentId"] == oid("drgattachment", "att-rpc-ext")]
    assert [(r["destination"], r["routeType"], r["routeProvenance"], r["attributes"]) for r in learned] == [
        ("10.30.1.0/24", "DYNAMIC", "VCN",  # C1: the origin's provenance, never an RPC one
         {"nextHop": "att-rpc-ext", "asPath": "", "isEcmp": "false", "networkDistance": "2", "drgPath": ""}),
        ("172.21.0.0/16", "DYNAMIC", "IPSEC_TUNNEL",
         {"nextHop": "att-rpc-ext", "asPath": "64512 65002", "isEcmp": "false", "networkDistance": "1",
          "drgPath": ""})]
    assert all(set(r) == {"id", "destination", "destinationType", "nextHopDrgAttachmentId", "routeType",
                          "routeProvenance", "isConflict", "isBlackhole", "attributes"} for r in rules)
    assert not any(r["nextHopDrgAttachmentId"] == oid("drgattachment", "att-rpc-b") for r in rules)  # R110
    status, local, _ = await api.request("GET", f"{BASE}/drgRouteTables/{RT_VCN}/drgRouteRules?routeType=STATIC")
    assert (status, local) == (200, [])


async def test_oci_cli_shows_rpcs_and_an_rpc_learned_rule(api: Api, tmp_path: Path) -> None:
    listen = api.drg.daemon.config.api.listen
    oci = OciCli(tmp_path, listen)
    listed = await oci.ok("network", "remote-peering-connection", "list", "--compartment-id", COMPARTMENT,
                          "--drg-id", DRG, "--all")
    assert [(r["id"], r["peering-status"], r["peer-id"], r["lifecycle-state"]) for r in listed] == [
        (RPC_EXT, "PEERED", None, "AVAILABLE"),
        (RPC_B, "PENDING", "ocid1.remotepeeringconnection.emu.drg-b.att-b-rpc", "AVAILABLE")]
    got = await oci("network", "remote-peering-connection", "get", "--remote-peering-connection-id", RPC_EXT)
    assert got.returncode == 0 and got.doc["etag"] and got.data["drg-id"] == DRG
    assert got.data["is-cross-tenancy-peering"] is False and got.data["display-name"] == "to region C"

    atts = await oci.ok("network", "drg-attachment", "list", "--compartment-id", COMPARTMENT, "--drg-id", DRG,
                        "--attachment-type", "REMOTE_PEERING_CONNECTION")
    assert [a["network-details"] for a in atts] == [{"type": "REMOTE_PEERING_CONNECTION", "id": RPC_EXT},
                                                    {"type": "REMOTE_PEERING_CONNECTION", "id": RPC_B}]
    rules = await oci.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_VCN, "--all")
    learned = next(r for r in rules if r["destination"] == "10.30.1.0/24")
    assert (learned["route-provenance"], learned["route-type"], learned["next-hop-drg-attachment-id"]) == (
        "VCN", "DYNAMIC", oid("drgattachment", "att-rpc-ext"))
    assert learned["attributes"]["networkDistance"] == "2"

    # The SDK picks its RPC network details model and reads the RPC with its peer.
    client = sdk_client(tmp_path, listen)
    att = (await call(client.get_drg_attachment, oid("drgattachment", "att-rpc-b"))).data
    assert type(att.network_details).__name__ == "RemotePeeringConnectionDrgAttachmentNetworkDetails"
    assert att.network_details.id == RPC_B
    peer = (await call(client.get_remote_peering_connection, RPC_B)).data
    assert (peer.peering_status, peer.peer_id, peer.peer_tenancy_id) == (
        "PENDING", "ocid1.remotepeeringconnection.emu.drg-b.att-b-rpc", rpc.TENANCY)

