"""The in-process bus every reader of DRG events shares (the log, ``Drg.events()``, ``drg events``, MQTT).

The bus never blocks the producer: each subscriber has a bounded queue; when a slow subscriber's
queue is full its oldest event is dropped and a counter records the loss (the route engine must
never wait for a reader). Subscribing is an async iterator; leaving the ``async for`` unsubscribes.
The bus also keeps the last ``RECENT`` events (a bounded deque, one append per event): a new
subscription's ``backlog`` is that tail, for readers that show the latest events (the web console).
The events themselves are :class:`~controlplane.events.event.DrgEvent` (``events/event.py``).
"""

from __future__ import annotations

import asyncio
from collections import deque

from controlplane.events.event import DrgEvent

RECENT = 100  # events kept for a new subscription's backlog


class Subscription:
    """A registered reader: ``async for event in subscription`` (registration happens at creation,
    so nothing published after ``subscribe()`` returns is missed). ``close()`` unregisters."""

    def __init__(self, bus: EventBus, size: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[DrgEvent] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self.backlog: list[DrgEvent] = list(bus.recent)  # the events published before this subscription

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> DrgEvent:
        return await self.queue.get()

    async def batch(self) -> list[DrgEvent]:
        """The next event and every other one already queued: a streaming reader writes them at once
        (one write and one wake-up per burst of events, not per event)."""
        events = [await self.queue.get()]
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

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
        self.recent: deque[DrgEvent] = deque(maxlen=RECENT)

    def publish(self, event: DrgEvent) -> None:
        self.published += 1
        self.recent.append(event)
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
