"""What waits to be published to MQTT: the publisher's bounded, coalescing backlog (bookkeeping, no I/O).

How it works. The publisher's *drain* task hands every bus event to :meth:`Backlog.take`, which does
only cheap bookkeeping and never waits for the broker:

* retained state is never queued: an event marks its table, session list or advertisement *dirty*
  (:class:`Dirty`; an :class:`Item` is *urgent* after a (re)connect, a new configuration or a
  session transition). However many changes a table has while the broker is slow, the sender
  renders it from the daemon once when it publishes it;
* route-table change messages wait in ``changes``, bounded by ``max_pending_changes`` rules (a message
  counts for at least ``MESSAGE_WEIGHT``, so many small samples stay bounded too): beyond it
  a change message is dropped, counted (:class:`PublisherStats`, and ``missed`` per table for the
  table's next change message) and reported through ``on_drop``;
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
from controlplane.events.event import DrgEvent, EventType


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


class Backlog:
    """The dirty sets and the two bounded queues of one publisher; ``on_drop`` runs after each dropped
    change message."""

    def __init__(self, daemon: Daemon, stats: PublisherStats, *, max_pending_changes: int,
                 max_pending_events: int, on_drop: Callable[[], None]) -> None:
        self.daemon = daemon
        self.stats = stats
        self.max_pending_changes = max_pending_changes
        self.changes: deque[tuple[str, DrgEvent, int, int]] = deque()  # table, event, rules, missed before
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
        rules = max(len(event.data.get("changes", ())), MESSAGE_WEIGHT)  # a message costs at least this much
        if self.pending_rules + rules > self.max_pending_changes:
            self.stats.changes_dropped += 1
            count = int(event.data.get("count", rules))
            self.stats.rules_dropped += count
            self.missed[table] = self.missed.get(table, 0) + count
            self._on_drop()
            return
        self.changes.append((table, event, rules, self.missed.pop(table, 0)))
        self.pending_rules += rules
        self.stats.max_pending_rules = max(self.stats.max_pending_rules, self.pending_rules)

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


__all__ = ["OWN_TOPIC", "SESSION_EVENTS", "Backlog", "Daemon", "Dirty", "Item", "PublisherStats"]
