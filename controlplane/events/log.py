"""The daemon's log of events: one line per event, but one line per table and burst for route changes.

A million-route import arrives as a thousand UPDATEs, each a route-table change per importing table
and an advertisement change per session: one log line each would be thousands of lines. At INFO (the
default) :class:`EventLog` sums ``route-table-change`` and ``advertisement-change`` events per DRG,
type and subject over a *burst* - everything the daemon handles in one turn of the event loop (the
UPDATEs of one socket read, a configuration change) - and writes one line per subject at the end of
the turn: how many changes in how many events, the first and the last. A burst of one event keeps
the event's own line. At DEBUG every event gets its own line, with its sample of rules. The events
themselves (bus, ``drg events``, MQTT) are never summed: only the log is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from controlplane.events.event import DrgEvent, EventType

BULK = (EventType.ROUTE_TABLE_CHANGE, EventType.ADVERTISEMENT_CHANGE)


def _count(event: DrgEvent) -> int:
    """How many changes one event carries (exact, cheap: the router counted them without rendering)."""
    data = event.data
    if event.type == EventType.ROUTE_TABLE_CHANGE:
        return int(data.get("count", 0))
    return int(data.get("announceCount", 0)) + int(data.get("withdrawCount", 0))


def _word(event: DrgEvent, last: bool) -> str | None:
    """The first (or last) change of an event, as words."""
    word = event.data.get("last" if last else "first")
    return str(word) if word else None


@dataclass
class _Burst:
    first: DrgEvent
    last: DrgEvent
    events: int = 0
    count: int = 0

    def add(self, event: DrgEvent) -> None:
        self.events += 1
        self.count += _count(event)
        self.last = event

    def line(self) -> str:
        if self.events == 1:
            return self.first.line()
        where = f" {self.first.drg}/{self.first.subject}" if self.first.drg else f" {self.first.subject}"
        count = f"{self.count:,}"
        first_word = _word(self.first, last=False)
        last_word = _word(self.last, last=True)
        first = f": first {first_word}" if first_word else ""
        last = f", last {last_word}" if last_word else ""
        return f"{self.first.type.value}{where}: {count} changes in {self.events} events{first}{last}"


class EventLog:
    """Writes events to ``logger``; route changes summed per subject and burst at INFO (see above)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._bursts: dict[tuple[str | None, EventType, str | None], _Burst] = {}
        self._scheduled = False

    def write(self, event: DrgEvent) -> None:
        if not self._log.isEnabledFor(logging.INFO):
            return
        if event.type not in BULK or self._log.isEnabledFor(logging.DEBUG):
            self._log.info("%s", event.line())
            return
        key = (event.drg, event.type, event.subject)
        burst = self._bursts.get(key)
        if burst is None:
            burst = self._bursts[key] = _Burst(event, event)
        burst.add(event)
        if not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
                self._scheduled = True
            except RuntimeError:  # no event loop (a test driving the daemon by hand): no burst to wait for
                self.flush()

    def flush(self) -> None:
        """Write the summed lines of the burst so far, in the order their subjects first appeared."""
        bursts, self._bursts, self._scheduled = self._bursts, {}, False
        for burst in bursts.values():
            self._log.info("%s", burst.line())
