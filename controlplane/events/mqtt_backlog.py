"""What waits to be published to MQTT: the publisher's bounded, coalescing backlog (bookkeeping, no I/O).

How it works. The publisher's *drain* task hands every bus event to :meth:`Backlog.take`, which does
only cheap bookkeeping and never waits for the broker:

* retained state is never queued: an event marks its table, session list or advertisement *dirty*
  (:class:`Dirty`; an :class:`Item` is *urgent* after a (re)connect, a new configuration or a
  session transition). However many changes a table has while the broker is slow, the sender
  renders it from the daemon once when it publishes it;
* route-table change messages wait in ``changes`` as :class:`ChangeMessage` objects. A table's change that
  finds the table's last message still queued (not yet being sent) is merged into it: exact counts
  summed, the first change of the first, the last of the last, the sample extended while it is
  complete and under ``SAMPLE``, ``merged`` counting the table changes it covers. So a broker that is
  slow or away costs one queued message per table, however many changes the tables have, and the
  sender publishes one message per table per turn instead of one per UPDATE. The queue is bounded by
  ``max_pending_changes`` rules (a message counts for at least ``MESSAGE_WEIGHT``, so many small
  samples stay bounded too): beyond it a change message is dropped, counted (:class:`PublisherStats`,
  and ``missed`` per table for the table's next change message) and reported through ``on_drop``;
* other events wait in ``events``, a deque of ``max_pending_events`` that drops its oldest.

The sender (``events/mqtt_publisher.py``) empties the queues and the dirty sets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import DrgConfig
from controlplane.events.bus import EventBus
from controlplane.events.event import SAMPLE, DrgEvent, EventType


class Daemon(Protocol):
    """What the publisher reads of the running DRG (``daemon.Daemon``; a protocol keeps imports one-way)."""

    bus: EventBus

    @property
    def config(self) -> DrgConfig: ...
    @property
    def effective(self) -> EffectiveConfig: ...

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any]) -> None: ...
    def routes_json(self, table: str | None = None, attachment: str | None = None) -> dict[str, Any]: ...
    def table_chunks(self, name: str) -> Iterator[str]: ...
    def advertised_json(self, name: str) -> dict[str, Any]: ...
    def sessions_json(self) -> dict[str, Any]: ...
    def session_names(self) -> list[str]: ...


# Events with a topic of their own: everything else goes to ``events``.
OWN_TOPIC = frozenset({"route-table-change", "advertisement-change"})
# Events that change what ``drg sessions`` shows for their subject.
SESSION_EVENTS = frozenset({"session-state", "tunnel-state", "prefix-limit", "notification-sent",
                            "notification-received"})


@dataclass
class PublisherStats:
    """Counters of one publisher (also what the tests read)."""

    connects: int = 0
    connect_failures: int = 0
    messages: int = 0  # every message published
    retained: int = 0  # retained messages published
    renders: int = 0  # retained items rendered from the daemon
    changes_dropped: int = 0  # change messages dropped at the bound
    rules_dropped: int = 0  # the rule changes those messages carried
    events_dropped: int = 0  # other events dropped (oldest first)
    bus_lost: int = 0  # events the bus subscription lost (each loss is followed by a full resync)
    max_pending_rules: int = 0
    max_pending_events: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Item:
    """One retained item waiting to be (re)published."""

    urgent: bool = False  # republish at once (a (re)connect, a new configuration, a session transition)


@dataclass
class Dirty:
    tables: dict[str, Item] = field(default_factory=dict)
    adverts: dict[str, Item] = field(default_factory=dict)
    sessions: Item | None = None
    prune: bool = False  # look for topics of objects that no longer exist

    def empty(self) -> bool:
        return not self.tables and not self.adverts and self.sessions is None and not self.prune


MESSAGE_WEIGHT = 32  # rules a queued change message counts for at least (its envelope, counts, words)


@dataclass
class ChangeMessage:
    """One queued ``route-tables/<name>/changes`` message: one route-table-change event, or several
    of one table merged while they waited (``merged``)."""

    table: str
    time: float  # of the latest change it covers
    count: int
    counts: dict[str, int]
    first: str | None
    last: str | None
    changes: list[dict[str, Any]]  # the first rule changes (complete when len == count)
    missed: int  # rule changes of this table dropped just before it
    weight: int  # what it counts for against max_pending_changes
    merged: int = 1

    @classmethod
    def of(cls, table: str, event: DrgEvent, missed: int) -> ChangeMessage:
        data = event.data
        changes = list(data.get("changes", ()))
        count = int(data.get("count", len(changes)))
        counts = dict(data.get("counts") or {"add": 0, "remove": 0, "change": 0})
        return cls(table, event.time, count, counts, data.get("first"), data.get("last"), changes, missed,
                   max(len(changes), MESSAGE_WEIGHT))

    def merge(self, event: DrgEvent) -> None:
        """Add a later change of the same table (the sample grows only while it is the whole story)."""
        data = event.data
        changes = data.get("changes", ())
        if len(self.changes) == self.count:
            self.changes.extend(changes[:max(0, SAMPLE - len(self.changes))])
        self.count += int(data.get("count", len(changes)))
        for op, n in (data.get("counts") or {}).items():
            self.counts[op] = self.counts.get(op, 0) + n
        self.first = self.first or data.get("first")
        self.last = data.get("last") or self.last
        self.time = event.time
        self.merged += 1

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "time": round(self.time, 6), "count": self.count, "counts": self.counts,
                "first": self.first, "last": self.last, "complete": self.count == len(self.changes),
                "missed": self.missed, "merged": self.merged, "changes": self.changes}


class Backlog:
    """The dirty sets and the two bounded queues of one publisher; ``on_drop`` runs after each dropped
    change message."""

    def __init__(self, daemon: Daemon, stats: PublisherStats, *, max_pending_changes: int,
                 max_pending_events: int, on_drop: Callable[[], None]) -> None:
        self.daemon = daemon
        self.stats = stats
        self.max_pending_changes = max_pending_changes
        self.changes: deque[ChangeMessage] = deque()
        self._open: dict[str, ChangeMessage] = {}  # per table: its last queued message, while not being sent
        self.pending_rules = 0
        self.missed: dict[str, int] = {}
        self.events: deque[DrgEvent] = deque(maxlen=max_pending_events)
        self.dirty = Dirty()
        self._on_drop = on_drop

    def empty(self) -> bool:
        """Nothing queued and nothing dirty."""
        return not self.changes and not self.events and self.dirty.empty()

    def take(self, event: DrgEvent) -> None:
        kind = event.type
        if kind == "route-table-change" and event.subject:
            self.mark_table(event.subject)
            self.mark_sessions(urgent=False)
            self._queue_change(event.subject, event)
            return
        if kind == "advertisement-change" and event.subject:
            self.mark_advert(event.subject)
            self.mark_sessions(urgent=False)
            return
        if kind in SESSION_EVENTS:
            self.mark_sessions(urgent=True)
            if kind == "session-state" and event.subject:  # what a session advertises follows its state
                self.mark_advert(event.subject, urgent=True)
        elif kind == "config-applied":
            self.mark_all(urgent=True)
        if len(self.events) == self.events.maxlen:
            self.stats.events_dropped += 1
        self.events.append(event)
        self.stats.max_pending_events = max(self.stats.max_pending_events, len(self.events))

    def _queue_change(self, table: str, event: DrgEvent) -> None:
        queued = self._open.get(table)
        if queued is not None:
            queued.merge(event)
            return
        message = ChangeMessage.of(table, event, missed=0)
        if self.pending_rules + message.weight > self.max_pending_changes:
            self.stats.changes_dropped += 1
            self.stats.rules_dropped += message.count
            self.missed[table] = self.missed.get(table, 0) + message.count
            self._on_drop()
            return
        message.missed = self.missed.pop(table, 0)
        self.changes.append(message)
        self._open[table] = message
        self.pending_rules += message.weight
        self.stats.max_pending_rules = max(self.stats.max_pending_rules, self.pending_rules)

    def next_change(self) -> ChangeMessage:
        """The message at the head of ``changes``, closed to merges from now on (it is being sent;
        ``sent()`` removes it once published)."""
        message = self.changes[0]
        if self._open.get(message.table) is message:
            del self._open[message.table]
        return message

    def sent(self) -> None:
        """The head change message was published."""
        self.pending_rules -= self.changes.popleft().weight

    def mark_table(self, name: str, urgent: bool = False) -> None:
        item = self.dirty.tables.setdefault(name, Item())
        item.urgent = item.urgent or urgent

    def mark_advert(self, name: str, urgent: bool = False) -> None:
        item = self.dirty.adverts.setdefault(name, Item())
        item.urgent = item.urgent or urgent

    def mark_sessions(self, urgent: bool) -> None:
        if self.dirty.sessions is None:
            self.dirty.sessions = Item(urgent=urgent)
        else:
            self.dirty.sessions.urgent = self.dirty.sessions.urgent or urgent

    def table_names(self) -> list[str]:
        return [t.name for t in self.daemon.effective.route_tables]

    def mark_all(self, urgent: bool) -> None:
        for name in self.table_names():
            self.mark_table(name, urgent)
        for name in self.daemon.session_names():
            self.mark_advert(name, urgent)
        self.mark_sessions(urgent)
        self.dirty.prune = True


__all__ = ["OWN_TOPIC", "SESSION_EVENTS", "Backlog", "ChangeMessage", "Daemon", "Dirty", "Item", "PublisherStats"]
