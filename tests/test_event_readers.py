"""What event readers get, and what they cost to serve: one encoding per event, shared data, batches.

``DrgEvent.json_text()`` is ``json.dumps(to_json())`` byte for byte, computed once; tables that share
a store get one ``data`` dict per change (derived and encoded once); ``Subscription.batch()`` hands a
streaming reader every queued event at once (``/v1/events``, which ``drg events --json`` reads through
the real daemon in test_daemon_process.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import RoutesReceived
from controlplane.config.effective import build_effective
from controlplane.config.validate import parse_valid
from controlplane.daemon import Daemon
from controlplane.engine.engine import RouteEngine
from controlplane.events.bus import EventBus
from controlplane.events.event import SAMPLE, DrgEvent, EventType, table_data
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, example
from tests.support.mqtt import Collector, RunningBroker, tables_of
from tests.test_mqtt_publish import ATTRS, DRG, VC, adverts, config_doc, make_daemon, prefixes, session_up


def shared_store_engine() -> RouteEngine:
    """Three VCN tables importing the VC alike (one store), and the VC's own table."""
    vcns = [{"name": f"vcn{i}", "cidrs": [f"10.{200 + i}.0.0/16"]} for i in range(3)]
    doc = {
        "drg": {"name": "drg1", "asn": 31898},
        "vcns": vcns,
        "attachments": [{"name": f"att-vcn{i}", "type": "VCN", "vcn": f"vcn{i}", "route_table": f"rt-{i}"}
                        for i in range(3)] + [{
            "name": "att-vc", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc",
            "bgp": {"oracle_ip": "192.168.100.1/30", "customer_ip": "192.168.100.2/30", "customer_asn": 65001,
                    "peer": "127.0.0.1"}}],
        "route_tables": [{"name": f"rt-{i}", "import_distribution": "rd-vc"} for i in range(3)]
        + [{"name": "rt-vc", "import_distribution": "rd-vcn"}],
        "distributions": [
            {"name": "rd-vc", "statements": [{"priority": 10, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}}]},
            {"name": "rd-vcn", "statements": [{"priority": 10, "match": {"attachment_type": "VCN"}}]}],
    }
    cfg, _ = parse_valid(json.dumps(doc), "shared.yaml")
    engine = RouteEngine(build_effective(cfg))
    engine.set_session_established("att-vc", True)
    return engine


def test_json_text_is_json_dumps_of_the_event() -> None:
    engine = RouteEngine(build_effective(config(example("transport-mode"))))
    engine.set_session_established("att-vc1", True)
    changes = engine.announce("att-vc1", AFI_IPV4, [parse_prefix("10.99.0.0/24")[1]], [65001])
    at = 1796605622.5213981
    events = [DrgEvent(EventType.ROUTE_TABLE_CHANGE, d.table, table_data(d), at) for d in changes.tables]
    events += [DrgEvent(EventType.SESSION_STATE, 'odd "name" \u00e9', {"summary": "Idle -> Connect", "n": 1.5}, 3.0,
                        drg="drg\\2"),
               DrgEvent(EventType.WARNING, None, {"summary": "x"}, 0.1 + 0.2, drg=None)]
    for event in events:
        assert event.json_text() == json.dumps(event.to_json())
        assert event.json_text() is event.json_text()  # encoded once
        assert json.loads(event.json_text()) == event.to_json()


def test_tables_sharing_a_store_share_the_event_data() -> None:
    """R7/R8: rt-0..rt-2 import the same attachments, so one change has one data dict for all three,
    derived once, and every reader sees the same rules for each."""
    engine = shared_store_engine()
    keys = [parse_prefix(f"10.1.{i}.0/24")[1] for i in range(10)]
    changes = engine.announce("att-vc", AFI_IPV4, keys, [65001])
    deltas = {d.table: d for d in changes.tables}
    assert {"rt-0", "rt-1", "rt-2"} <= set(deltas)
    datas = [table_data(deltas[f"rt-{i}"]) for i in range(3)]
    assert datas[0] is datas[1] is datas[2]
    first = "add 10.1.0.0/24 via att-vc"
    assert (datas[0]["count"], len(datas[0]["changes"]), datas[0]["first"]) == (10, SAMPLE, first)
    assert table_data(deltas["rt-0"], 0) is not datas[0]  # another cap: derived on its own
    events = [DrgEvent(EventType.ROUTE_TABLE_CHANGE, f"rt-{i}", datas[i], 5.0) for i in range(3)]
    texts = [e.json_text() for e in events]
    assert texts == [json.dumps(e.to_json()) for e in events]
    # a later change to the same tables: new data, not the memo of the last one
    later = engine.withdraw("att-vc", AFI_IPV4, keys[:1])
    after = table_data(next(d for d in later.tables if d.table == "rt-1"))
    assert (after["count"], after["counts"]["remove"], after["first"]) == (1, 1, "remove 10.1.0.0/24 via att-vc")


async def test_a_subscription_batch_takes_every_queued_event_in_order() -> None:
    bus = EventBus(queue_size=5)
    sub = bus.subscribe()
    for i in range(3):
        bus.publish(DrgEvent(EventType.WARNING, None, {"summary": str(i)}, float(i)))
    assert [e.data["summary"] for e in await sub.batch()] == ["0", "1", "2"]
    waiting = asyncio.create_task(sub.batch())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing queued: it waits for the next event
    bus.publish(DrgEvent(EventType.WARNING, None, {"summary": "3"}, 3.0))
    assert [e.data["summary"] for e in await asyncio.wait_for(waiting, 1)] == ["3"]
    sub.close()



# ---- readers never change routing, and every change is counted ------------------------------------------

IMPORTING = ("autogen-rt-vcn", "att-vc1-lb-rt")  # the tables that import att-vc1's routes (R45, R21)
EXPECTED = {"add": 2000, "remove": 2000, "change": 1000}  # per importing table, for the drive() below


async def drive(daemon: Daemon) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """2,000 /24s announced, 1,000 of them given a longer AS path, all withdrawn: 100 per UPDATE, the
    event loop turning between UPDATEs; the tables and advertisements after each phase."""
    keys = prefixes(2000)
    longer = PathAttributes.make(as_path=[65001, 65002], next_hop="192.168.100.2")
    states = []
    session_up(daemon)
    for phase in ("announce", "change", "withdraw"):
        for i in range(0, 1000 if phase == "change" else 2000, 100):
            batch = tuple(keys[i:i + 100])
            daemon.bgp_event(RoutesReceived(VC, AFI_IPV4, batch if phase != "withdraw" else (),
                                            None if phase == "withdraw" else (longer if phase == "change" else ATTRS),
                                            batch if phase == "withdraw" else ()))
            await asyncio.sleep(0)
        states.append((tables_of(daemon.routes_json()), adverts(daemon)))
    return states


def summed(counts: list[dict[str, int]]) -> dict[str, int]:
    total = {"add": 0, "remove": 0, "change": 0}
    for c in counts:
        for op, n in c.items():
            total[op] += n
    return total


async def test_readers_never_change_routing_and_count_every_change(broker: RunningBroker) -> None:
    """The same UPDATEs through a daemon with no reader, one with a bus reader that encodes every event
    as `drg events --json` does, and one publishing to a real broker: the same tables and advertisements
    after every phase; the reader's events and the broker's (merged) change messages count exactly
    2,000 adds, 1,000 changes and 2,000 removes in each importing table."""
    quiet = make_daemon(config_doc(None, max_prefixes=5000))
    await quiet.start()
    try:
        expected_states = await drive(quiet)
    finally:
        await quiet.stop()

    reading = make_daemon(config_doc(None, max_prefixes=5000))
    await reading.start()
    sub = reading.subscribe()
    try:
        assert await drive(reading) == expected_states
        counts: dict[str, list[dict[str, int]]] = {}
        while not sub.queue.empty():
            for event in await sub.batch():
                line = json.loads(event.json_text())
                if line["type"] == "route-table-change":
                    counts.setdefault(line["subject"], []).append(line["data"]["counts"])
        assert {t: summed(counts[t]) for t in IMPORTING} == {t: EXPECTED for t in IMPORTING}
        assert sub.dropped == 0
    finally:
        sub.close()
        await reading.stop()

    publishing = make_daemon(config_doc(broker.url, max_prefixes=5000))
    await publishing.start()
    try:
        assert publishing.mqtt is not None and await publishing.mqtt.publisher.wait_idle(10)  # startup's own, sent
        async with Collector(broker.url, f"drg/{DRG}/route-tables/+/changes") as seen:
            assert await drive(publishing) == expected_states

            def messages(table: str) -> dict[str, int]:
                topic = f"drg/{DRG}/route-tables/{table}/changes"
                return summed([d["counts"] for _w, t, d, _r in seen.seen if t == topic and d.get("counts")])

            deadline = asyncio.get_running_loop().time() + 20
            while any(messages(t) != EXPECTED for t in IMPORTING):
                assert asyncio.get_running_loop().time() < deadline, {t: messages(t) for t in IMPORTING}
                await asyncio.sleep(0.05)
        assert publishing.mqtt is not None and publishing.mqtt.publisher.stats.changes_dropped == 0
    finally:
        await publishing.stop()
