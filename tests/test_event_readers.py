"""What event readers get, and what they cost to serve: one encoding per event, shared data, batches.

``DrgEvent.json_text()`` is ``json.dumps(to_json())`` byte for byte, computed once; tables that share
a store get one ``data`` dict per change (derived and encoded once); ``Subscription.batch()`` hands a
streaming reader every queued event at once (``/v1/events``, which ``drg events --json`` reads through
the real daemon in test_daemon_process.py).
"""

from __future__ import annotations

import asyncio
import json

from controlplane.config.effective import build_effective
from controlplane.config.validate import parse_valid
from controlplane.engine.engine import RouteEngine
from controlplane.events.bus import EventBus
from controlplane.events.event import SAMPLE, DrgEvent, EventType, table_data
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, example


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

