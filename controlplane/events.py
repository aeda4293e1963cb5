"""The DRG's event model and the in-process bus every reader shares.

One :class:`DrgEvent` shape serves the log, ``Drg.events()``, ``drg events`` (through the control
API) and the MQTT publisher: a ``type`` (see :data:`EVENT_TYPES`), a wall-clock ``time``, an
optional ``subject`` (the attachment or table it concerns) and a JSON-ready ``data`` dict.

The bus never blocks the producer: each subscriber has a bounded queue; when a slow subscriber's
queue is full its oldest event is dropped and a counter records the loss (the route engine must
never wait for a reader). Subscribing is an async iterator; leaving the ``async for`` unsubscribes.
The data of advertisement and table changes is a bounded sample (``advert_data``, ``table_data``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from controlplane.changes import TableDelta

EVENT_TYPES = (
    "session-state",  # a BGP session changed state (RFC 4271 names)
    "route-table-change",  # rules added/removed/changed in one DRG route table
    "advertisement-change",  # what the DRG advertises to one peer changed
    "config-applied",
    "config-rejected",
    "tunnel-state",  # IPSec over FastConnect tunnel up/down, with the reason (R47)
    "prefix-limit",  # a peer sent more prefixes than allowed (R58, R64)
    "notification-sent",
    "notification-received",
    "warning",
)


@dataclass(frozen=True, slots=True)
class DrgEvent:
    type: str
    subject: str | None
    data: dict[str, Any]
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "subject": self.subject, "time": round(self.time, 6), "data": self.data}

    def line(self) -> str:
        """One human-readable log line."""
        subject = f" {self.subject}" if self.subject else ""
        detail = self.data.get("summary")
        if detail is None:
            detail = " ".join(f"{k}={v}" for k, v in self.data.items())
        return f"{self.type}{subject}: {detail}"


class Subscription:
    """A registered reader: ``async for event in subscription`` (registration happens at creation,
    so nothing published after ``subscribe()`` returns is missed). ``close()`` unregisters."""

    def __init__(self, bus: EventBus, size: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[DrgEvent] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> DrgEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._bus._remove(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of DrgEvents to any number of bounded subscriber queues."""

    def __init__(self, queue_size: int = 10000) -> None:
        self._subscribers: list[Subscription] = []
        self._queue_size = queue_size
        self.published = 0

    def publish(self, event: DrgEvent) -> None:
        self.published += 1
        for sub in self._subscribers:
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._queue_size)
        self._subscribers.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


# ---- the data of route events: bounded samples, never one line per rule -------------------------


def advert_data(announced: list[str], withdrawn: list[str], cap: int = 256) -> dict[str, Any]:
    data: dict[str, Any] = {"announce": announced[:cap], "withdraw": withdrawn[:cap],
                            "announceCount": len(announced), "withdrawCount": len(withdrawn)}
    shown = ", ".join([f"+{p}" for p in announced[:4]] + [f"-{p}" for p in withdrawn[:4]])
    more = len(announced) + len(withdrawn) - min(len(announced), 4) - min(len(withdrawn), 4)
    data["summary"] = shown + (f" (+{more} more)" if more > 0 else "")
    return data


def table_data(delta: TableDelta, cap: int = 256) -> dict[str, Any]:
    """Event data of one table delta. JSON is built for at most ``cap`` rule changes, so a
    million-route import does not render a million rules for the log; when the sample is cut,
    ``complete`` is false and ``count`` is a lower bound (one change per changed destination)."""
    complete = len(delta) <= cap
    changes = delta.rule_changes(limit=None if complete else cap)
    count = len(changes) if complete else max(len(delta), len(changes) + 1)
    words = []
    for change in changes[:4]:
        rule = change["rule"]
        flag = " (conflict)" if rule["isConflict"] else ""
        words.append(f"{change['op']} {rule['destination']} via {rule['nextHop']}{flag}")
    more = count - len(words)
    summary = ", ".join(words) + (f" (+{more}{'' if complete else ' or more'} more)" if more > 0 else "")
    return {"changes": changes, "count": count, "complete": complete, "summary": summary}
