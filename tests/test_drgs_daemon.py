"""One daemon, several DRGs, in process (no BGP peer): the RPC routes of examples/two-regions.yaml at
start, new files applied live (the same file changes nothing, a DRG joins and leaves, R94 R97 R109),
events naming their DRG, and one MQTT publisher per DRG. The same files with real ExaBGP peers:
tests/test_e2e_two_regions.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import Drg
from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import RoutesReceived, State, StateChanged
from controlplane.config.drgs import Design, parse_valid_design
from controlplane.config.problems import ConfigError
from controlplane.daemon import Daemon
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import example
from tests.support.lab import lab_file
from tests.support.mqtt import retained
from tests.support.oci import Api
from tests.support.ports import free_port
from tests.support.two_regions import rows

pytestmark = pytest.mark.timeout(60)


def regions_doc(mqtt: str | None = None) -> dict[str, Any]:
    doc = example("two-regions")
    doc["speaker"]["listen"] = f"127.0.0.1:{free_port()}"
    doc["api"]["listen"] = f"127.0.0.1:{free_port()}"
    doc["events"] = {"mqtt": mqtt, "embedded_listen": f"127.0.0.1:{free_port()}"}
    return doc


def design(doc: dict[str, Any]) -> Design:
    return parse_valid_design(yaml.safe_dump(doc, sort_keys=False), "t.yaml")[0]


@pytest.fixture
async def daemon() -> AsyncIterator[tuple[Daemon, dict[str, Any]]]:
    doc = regions_doc()
    running = Daemon(design(doc), control=False)
    await running.start()
    try:
        yield running, doc
    finally:
        await running.stop()


def with_drg_c(doc: dict[str, Any]) -> dict[str, Any]:
    """A third region: drg-c peers with drg-a over a second RPC of drg-a (default tables, R96)."""
    new: dict[str, Any] = yaml.safe_load(yaml.safe_dump(doc))
    new["drgs"][0]["attachments"].append({"name": "att-a-rpc2", "type": "REMOTE_PEERING_CONNECTION",
                                          "peer": {"drg": "drg-c", "attachment": "att-c-rpc"}})
    new["drgs"].append({"drg": {"name": "drg-c"},
                        "vcns": [{"name": "vcn-c", "cidrs": ["10.30.0.0/16"], "subnets": ["10.30.1.0/24"]}],
                        "attachments": [{"name": "att-c-vcn", "type": "VCN", "vcn": "vcn-c"},
                                        {"name": "att-c-rpc", "type": "REMOTE_PEERING_CONNECTION",
                                         "peer": {"drg": "drg-a", "attachment": "att-a-rpc2"}}]})
    return new


async def test_vcn_routes_cross_the_rpc_at_start(daemon: tuple[Daemon, dict[str, Any]]) -> None:
    """No BGP session is up: only the VCN routes are offered, and they cross the RPC (R96, R97)."""
    running, _ = daemon
    tables = rows(running.routes_json())
    assert tables["drg-b"]["autogen-rt-vcn"] == [("10.10.1.0/24", "att-b-rpc", "VCN", [], 1, False),
                                                 ("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False)]
    assert tables["drg-a"]["rt-a-vc"] == [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                                          ("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False)]
    assert running.status()["drgs"] == ["drg-a", "drg-b"]


async def test_the_same_file_again_changes_nothing(daemon: tuple[Daemon, dict[str, Any]]) -> None:
    """RPC routes are carried over a new configuration, so nothing is withdrawn and re-learned."""
    running, doc = daemon
    sub = running.subscribe()
    result = await running.apply(design(doc), "same.yaml")
    assert result["changes"] == []
    assert [d["drg"] for d in result["summary"]["drgs"]] == ["drg-a", "drg-b"]
    seen = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    sub.close()
    assert [(e.type.value, e.drg) for e in seen] == [("config-applied", None)]


async def test_a_drg_joins_and_leaves(daemon: tuple[Daemon, dict[str, Any]]) -> None:
    running, doc = daemon
    sub = running.subscribe()
    result = await running.apply(design(with_drg_c(doc)), "three.yaml")
    assert "drg-c: DRG drg-c added" in result["changes"]
    tables = rows(running.routes_json())
    # drg-a exports its autogen-rt-other (VCN routes only, R96) to drg-c; rt-a-vcn imports RPC routes.
    assert tables["drg-c"]["autogen-rt-vcn"] == [("10.10.1.0/24", "att-c-rpc", "VCN", [], 1, False),
                                                 ("10.30.1.0/24", "att-c-vcn", "VCN", [], 0, False)]
    assert ("10.30.1.0/24", "att-a-rpc2", "VCN", [], 1, False) in tables["drg-a"]["rt-a-vcn"]
    assert "drg-a: route table rt-a-vcn: +1 -0 ~0" in result["changes"]
    events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert {(e.drg, e.subject) for e in events if e.type == "route-table-change"} >= {
        ("drg-c", "autogen-rt-vcn"), ("drg-a", "rt-a-vcn")}
    assert all(e.to_json()["drg"] == e.drg for e in events if e.drg is not None)
    result = await running.apply(design(doc), "two.yaml")
    assert "drg-c: DRG drg-c removed" in result["changes"]
    assert list(running.routers) == ["drg-a", "drg-b"]
    assert "10.30.1.0/24" not in [r[0] for r in rows(running.routes_json())["drg-a"]["rt-a-vcn"]]
    sub.close()


async def test_a_running_multi_drg_daemon_keeps_its_form(daemon: tuple[Daemon, dict[str, Any]]) -> None:
    running, doc = daemon
    region_b = yaml.safe_load(yaml.safe_dump(doc["drgs"][1]))
    region_b["attachments"][2]["peer"] = "external"
    single = design({**region_b, "speaker": doc["speaker"], "api": doc["api"]})
    with pytest.raises(ConfigError) as caught:
        await running.apply(single)
    assert [(p.object, p.rule) for p in caught.value.problems] == [("<file>", "daemon")]
    ok, answer = await running.apply_text(yaml.safe_dump(with_drg_c(doc) | {"drgs": with_drg_c(doc)["drgs"][:2]}),
                                          "broken.yaml")
    assert not ok  # att-a-rpc2's peer drg-c is not in the file (R94): nothing changed
    assert [(e["drg"], e["object"], e["rule"]) for e in answer["errors"]] == [("drg-a", "att-a-rpc2", "R94")]
    assert list(running.routers) == ["drg-a", "drg-b"]


async def test_one_mqtt_publisher_per_drg() -> None:
    doc = regions_doc("embedded")
    running = Daemon(design(doc), control=False)
    await running.start()
    try:
        assert running.mqtt is not None and len(running.mqtt.publishers) == 2
        url = f"mqtt://{doc['events']['embedded_listen']}"
        for publisher in running.mqtt.publishers:
            assert await publisher.wait_idle(10)
        state = await retained(url, "drg/+/route-tables/+")
        assert sorted(state) == ["drg/drg-a/route-tables/autogen-rt-other", "drg/drg-a/route-tables/autogen-rt-vcn",
                                 "drg/drg-a/route-tables/rt-a-rpc", "drg/drg-a/route-tables/rt-a-vc",
                                 "drg/drg-a/route-tables/rt-a-vcn", "drg/drg-b/route-tables/autogen-rt-other",
                                 "drg/drg-b/route-tables/autogen-rt-vcn"]
        want = running.routes_json("autogen-rt-vcn", drg="drg-b")["drgs"][0]["routeTables"][0]
        assert state["drg/drg-b/route-tables/autogen-rt-vcn"] == want
        # a DRG added by a new configuration gets its publisher; a removed one loses it
        await running.apply(design(with_drg_c(doc)), "three.yaml")
        assert [p.prefix for p in running.mqtt.publishers] == ["drg/drg-a/", "drg/drg-b/", "drg/drg-c/"]
        assert await running.mqtt.publishers[2].wait_idle(10)
        state = await retained(url, "drg/drg-c/route-tables/+")
        want = running.routes_json("autogen-rt-vcn", drg="drg-c")["drgs"][0]["routeTables"][0]
        assert state["drg/drg-c/route-tables/autogen-rt-vcn"] == want
        await running.apply(design(doc), "two.yaml")
        assert [p.prefix for p in running.mqtt.publishers] == ["drg/drg-a/", "drg/drg-b/"]
    finally:
        await running.stop()


async def test_the_oci_api_of_a_multi_drg_daemon_changes_its_drgs(tmp_path: Path) -> None:
    """A change through OCI's API replaces drg-a in the running set and is written back into the drgs:
    file (more: tests/test_oci_multi.py)."""
    path = lab_file("two-regions", tmp_path)
    before = path.read_text()
    drg = Drg(path)
    await drg.start()
    client = Api(drg, path)
    try:
        table = "/20160918/drgRouteTables/ocid1.drgroutetable.emu.drg-a.rt-a-vcn"
        status, body, _ = await client.request("GET", table)
        assert status == 200 and body["displayName"] == "rt-a-vcn"
        status, body, _ = await client.request("POST", table + "/actions/addDrgRouteRules", {"routeRules": [
            {"destinationType": "CIDR_BLOCK", "destination": "10.99.0.0/16",
             "nextHopDrgAttachmentId": "ocid1.drgattachment.emu.drg-a.att-a-vcn"}]})
        assert status == 200, body
        rules = drg.route_table("rt-a-vcn", drg="drg-a")["rules"]
        assert ("10.99.0.0/16", "STATIC") in [(r["destination"], r["routeType"]) for r in rules]
        assert path.read_text() != before and "10.99.0.0/16" in path.read_text()  # OCI API write-back
        assert [d["drg"] for d in drg.route_tables()["drgs"]] == ["drg-a", "drg-b"]
    finally:
        await client.session.close()
        await drg.stop()


def region_b_alone(doc: dict[str, Any]) -> dict[str, Any]:
    """drg-b as a single-DRG file (its RPC peer not emulated: external, R109)."""
    alone: dict[str, Any] = yaml.safe_load(yaml.safe_dump(doc["drgs"][1]))
    alone["attachments"][2]["peer"] = "external"
    return {**alone, "speaker": doc["speaker"], "api": doc["api"], "events": doc["events"]}


@pytest.mark.parametrize("form", ["drgs", "single"])
async def test_a_session_added_by_apply_reaches_its_router(form: str) -> None:
    """The daemon finds a BGP event's router by its session: a session a new file adds is found too."""
    doc = regions_doc() if form == "drgs" else region_b_alone(regions_doc())
    running = Daemon(design(doc), control=False)
    await running.start()
    try:
        new = yaml.safe_load(yaml.safe_dump(doc))
        (new["drgs"][1] if form == "drgs" else new)["attachments"].append({
            "name": "att-b-vc2", "type": "VIRTUAL_CIRCUIT", "bgp": {
                "oracle_ip": "192.168.102.1/30", "customer_ip": "192.168.102.2/30", "customer_asn": 65003,
                "peer": "127.0.0.4", "connect": "passive"}})
        await running.apply(design(new))
        running.bgp_event(StateChanged("att-b-vc2", State.OPEN_CONFIRM, State.ESTABLISHED))
        running.bgp_event(RoutesReceived("att-b-vc2", AFI_IPV4, (parse_prefix("172.30.0.0/16")[1],),
                                         PathAttributes.make(as_path=[65003], next_hop="192.168.102.2"), ()))
        rules = running.routes_json("autogen-rt-vcn", drg="drg-b")
        table = rules["drgs"][0]["routeTables"][0] if form == "drgs" else rules["routeTables"][0]
        assert ("172.30.0.0/16", "att-b-vc2") in [(r["destination"], r["nextHop"]) for r in table["rules"]]
    finally:
        await running.stop()
