"""The MQTT publisher's backlog of change messages: merging a table's changes while they wait, the bound.

Pure bookkeeping (``events/mqtt_backlog.py``), driven with hand-made route-table-change events; the
publisher and real brokers are tested in test_mqtt_publish.py.
"""

from __future__ import annotations

from typing import Any, cast

from controlplane.events.event import SAMPLE, DrgEvent, EventType
from controlplane.events.mqtt_backlog import MESSAGE_WEIGHT, Backlog, Daemon, PublisherStats


def change(table: str, ops: list[tuple[str, str]], at: float, total: int | None = None) -> DrgEvent:
    """A route-table-change event of ``total`` rule changes whose sample is ``ops`` (op, destination)."""
    changes = [{"op": op, "rule": {"destination": dest, "nextHop": "att-vc1"}} for op, dest in ops]
    count = len(ops) if total is None else total
    counts = {"add": 0, "remove": 0, "change": 0}
    for op, _ in ops:
        counts[op] += 1
    counts[ops[0][0]] += count - len(ops)
    words = [f"{op} {dest} via att-vc1" for op, dest in ops]
    return DrgEvent(EventType.ROUTE_TABLE_CHANGE, table, {
        "changes": changes, "count": count, "counts": counts, "complete": count == len(ops),
        "summary": ", ".join(words), "first": words[0], "last": words[-1]}, at)


def backlog(max_pending_changes: int = 10_000) -> tuple[Backlog, list[int]]:
    drops: list[int] = []
    stats = PublisherStats()
    log = Backlog(cast(Daemon, None), stats, max_pending_changes=max_pending_changes, max_pending_events=10,
                  on_drop=lambda: drops.append(stats.changes_dropped))
    return log, drops


def queued(log: Backlog) -> list[dict[str, Any]]:
    return [m.to_json() for m in log.changes]


def test_a_tables_waiting_changes_merge_into_one_message() -> None:
    log, _ = backlog()
    log.take(change("rt-a", [("add", "10.0.0.0/24")], 1.0))
    log.take(change("rt-b", [("add", "10.9.0.0/24")], 1.5))
    log.take(change("rt-a", [("add", "10.0.1.0/24"), ("remove", "10.0.0.0/24")], 2.0))
    a, b = queued(log)
    assert (a["table"], b["table"]) == ("rt-a", "rt-b")  # order of first appearance kept
    assert (a["count"], a["counts"], a["merged"], a["time"]) == (3, {"add": 2, "remove": 1, "change": 0}, 2, 2.0)
    assert (a["first"], a["last"]) == ("add 10.0.0.0/24 via att-vc1", "remove 10.0.0.0/24 via att-vc1")
    assert [(c["op"], c["rule"]["destination"]) for c in a["changes"]] == [
        ("add", "10.0.0.0/24"), ("add", "10.0.1.0/24"), ("remove", "10.0.0.0/24")]
    assert a["complete"] and (b["count"], b["merged"]) == (1, 1)
    assert log.pending_rules == 2 * MESSAGE_WEIGHT  # a merge adds no weight


def test_the_sample_stays_the_first_changes_and_bounded() -> None:
    log, _ = backlog()
    log.take(change("rt-a", [("add", f"10.0.{i}.0/24") for i in range(3)], 1.0, total=100))  # a partial sample
    log.take(change("rt-a", [("remove", "10.1.0.0/24")], 2.0))
    (a,) = queued(log)
    assert (a["count"], a["complete"]) == (101, False)
    assert len(a["changes"]) == 3  # nothing appended after a gap: the sample is the first changes, in order
    log2, _ = backlog()
    for i in range(SAMPLE + 3):
        log2.take(change("rt-a", [("add", f"10.2.{i}.0/24")], float(i)))
    (b,) = queued(log2)
    assert (b["count"], len(b["changes"]), b["complete"], b["merged"]) == (SAMPLE + 3, SAMPLE, False, SAMPLE + 3)
    assert b["last"] == f"add 10.2.{SAMPLE + 2}.0/24 via att-vc1"


def test_a_message_being_sent_takes_no_more_changes() -> None:
    log, _ = backlog()
    log.take(change("rt-a", [("add", "10.0.0.0/24")], 1.0))
    head = log.next_change()  # the sender took it: later changes start a new message
    log.take(change("rt-a", [("add", "10.0.1.0/24")], 2.0))
    assert head.count == 1 and [m["count"] for m in queued(log)] == [1, 1]
    log.sent()
    assert [m["first"] for m in queued(log)] == ["add 10.0.1.0/24 via att-vc1"]
    assert log.pending_rules == MESSAGE_WEIGHT


def test_beyond_the_bound_a_message_is_dropped_and_reported_with_the_next() -> None:
    log, drops = backlog(max_pending_changes=2 * MESSAGE_WEIGHT)
    log.take(change("rt-a", [("add", "10.0.0.0/24")], 1.0))
    log.take(change("rt-b", [("add", "10.1.0.0/24")], 1.0))
    log.take(change("rt-c", [("add", "10.2.0.0/24")], 1.0, total=7))  # a third table: no room
    log.take(change("rt-a", [("add", "10.0.1.0/24")], 2.0))  # merges: no room needed
    assert drops == [1] and (log.stats.changes_dropped, log.stats.rules_dropped) == (1, 7)
    assert [m["table"] for m in queued(log)] == ["rt-a", "rt-b"] and queued(log)[0]["count"] == 2
    log.next_change()
    log.sent()
    log.take(change("rt-c", [("remove", "10.2.0.0/24")], 3.0))
    assert queued(log)[-1]["table"] == "rt-c" and queued(log)[-1]["missed"] == 7
    assert log.pending_rules <= log.max_pending_changes
