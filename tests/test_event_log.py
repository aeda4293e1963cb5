"""The daemon's log at INFO: route changes summed per table and burst, other events line by line."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controlplane.config.effective import build_effective
from controlplane.engine.changes import AdvertDelta
from controlplane.engine.engine import RouteEngine
from controlplane.events.event import DrgEvent, EventType, advert_data, table_data
from controlplane.events.log import EventLog
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, example

LOGGER = "test.eventlog"


def advert(announce: list[str], withdraw: list[str]) -> AdvertDelta:
    return AdvertDelta("att-vc1", "192.168.100.2", "192.168.100.1", (31898,),
                       {AFI_IPV4: [parse_prefix(p)[1] for p in announce]} if announce else {},
                       {AFI_IPV4: [parse_prefix(p)[1] for p in withdraw]} if withdraw else {})


def table_events(n: int) -> list[DrgEvent]:
    """``n`` real route-table-change events of autogen-rt-vcn, one /24 each (the engine's own data)."""
    engine = RouteEngine(build_effective(config(example("transport-mode"))))
    engine.set_session_established("att-vc1", True)
    events = []
    for i in range(n):
        changes = engine.announce("att-vc1", AFI_IPV4, [parse_prefix(f"10.99.{i}.0/24")[1]], [65001])
        delta = next(d for d in changes.tables if d.table == "autogen-rt-vcn")
        events.append(DrgEvent(EventType.ROUTE_TABLE_CHANGE, delta.table, table_data(delta), 0.0))
    return events


async def test_a_burst_of_route_changes_is_one_line_per_table(caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog(logging.getLogger(LOGGER))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for event in table_events(3):
            log.write(event)
        log.write(DrgEvent(EventType.ADVERTISEMENT_CHANGE, "att-vc1", advert_data(advert(["10.1.0.0/16"], [])), 0.0))
        log.write(DrgEvent(EventType.ADVERTISEMENT_CHANGE, "att-vc1", advert_data(advert([], ["10.2.0.0/16"])), 0.0))
        log.write(DrgEvent(EventType.SESSION_STATE, "att-vc1", {"summary": "Idle -> Connect"}, 0.0))
        assert caplog.messages == ["session-state att-vc1: Idle -> Connect"]  # not a route change: at once
        await asyncio.sleep(0)  # the end of the event loop's turn ends the burst
    assert caplog.messages[1:] == [
        "route-table-change autogen-rt-vcn: 3 changes in 3 events: first add 10.99.0.0/24 via att-vc1, "
        "last add 10.99.2.0/24 via att-vc1",
        "advertisement-change att-vc1: 2 changes in 2 events: first +10.1.0.0/16, last -10.2.0.0/16"]


async def test_a_burst_of_one_event_keeps_its_line_and_debug_keeps_them_all(
        caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog(logging.getLogger(LOGGER))
    one = table_events(1)[0]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log.write(one)
        await asyncio.sleep(0)
    assert caplog.messages == [one.line()] == ["route-table-change autogen-rt-vcn: add 10.99.0.0/24 via att-vc1"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for event in table_events(2):
            log.write(event)
    assert len(caplog.messages) == 2  # DEBUG: every event, with its sample of rules


def test_without_an_event_loop_nothing_waits() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger(LOGGER + ".noloop")
    logger.setLevel(logging.INFO)
    logger.addHandler(Keep())
    EventLog(logger).write(table_events(1)[0])
    assert records == ["route-table-change autogen-rt-vcn: add 10.99.0.0/24 via att-vc1"]


def test_a_bulk_change_read_by_the_log_only_renders_no_rule() -> None:
    """cap 0 (the INFO log is the only reader): exact counts, the first and last change as words, and
    no rule rendered; the sample of a reader holds the same first change."""
    engine = RouteEngine(build_effective(config(example("transport-mode"))))
    engine.set_session_established("att-vc1", True)
    keys = [parse_prefix(f"10.{100 + i // 256}.{i % 256}.0/24")[1] for i in range(1000)]
    delta = next(d for d in engine.announce("att-vc1", AFI_IPV4, keys, [65001]).tables
                 if d.table == "autogen-rt-vcn")
    quiet, sampled = table_data(delta, 0), table_data(delta, 8)
    assert (quiet["changes"], quiet["count"], quiet["counts"], quiet["complete"]) == (
        [], 1000, {"add": 1000, "remove": 0, "change": 0}, False)
    assert (quiet["first"], quiet["last"]) == ("add 10.100.0.0/24 via att-vc1", "add 10.103.231.0/24 via att-vc1")
    assert quiet["summary"] == "add 10.100.0.0/24 via att-vc1 (+999 more)"
    assert len(sampled["changes"]) == 8 and sampled["count"] == 1000 and not sampled["complete"]
    assert sampled["changes"][0]["rule"]["destination"] == "10.100.0.0/24"
    data = advert_data(advert([f"10.{1 + i // 256}.{i % 256}.0/24" for i in range(300)], ["10.2.0.0/16"]), 0)
    assert (data["announce"], data["announceCount"], data["withdrawCount"]) == ([], 300, 1)
    assert (data["first"], data["last"]) == ("+10.1.0.0/24", "-10.2.0.0/16")
    assert data["summary"] == "+10.1.0.0/24, +10.1.1.0/24, +10.1.2.0/24, +10.1.3.0/24, -10.2.0.0/16 (+296 more)"
