"""MQTT events: the daemon's state and events as JSON on a broker (the one module that uses aiomqtt).

Topics, under ``drg/<drg-name>/``:

* ``sessions/<attachment>/state`` (retained): the session's element of ``drg sessions --json``;
* ``route-tables/<name>`` (retained): the table as in ``drg routes --json`` (its ``routeTables`` element);
* ``route-tables/<name>/changes``: one message per change of the table, ``{"table", "time", "count",
  "complete", "missed", "changes": [{"op": "add"|"remove"|"change", "rule": {...}}]}`` (``complete`` is
  false when the event carried only the first rules of a large change; ``missed`` counts rule changes
  of this table dropped just before this message because the broker was too slow or away; a message
  with no changes and ``missed`` > 0 reports drops after the last queued change);
* ``advertised/<attachment>`` (retained): ``drg advertised <attachment> --json``;
* ``events``: every other :class:`~controlplane.events.bus.DrgEvent` (``DrgEvent.to_json()``).

How it works. The route engine never waits for the broker: :class:`MqttPublisher` reads the daemon's
:class:`~controlplane.events.bus.EventBus` through its bounded subscription, in a *drain* task that does only
cheap bookkeeping per event:

* retained state is never queued: an event marks its table, session or advertisement *dirty*, and the
  *sender* task re-renders a dirty item from the daemon (``routes_json``, ``sessions_json``,
  ``advertised_json``) when it publishes it. However many changes a table has while the broker is slow,
  it costs one retained message. Re-rendering is paced per item (after a render of cost *c* the item
  waits at least ``9 c``, so rendering a huge table takes at most a tenth of the event loop) and a
  payload equal to the last one published on this connection is not sent again;
* change messages wait in a queue bounded by ``max_pending_changes`` rules: beyond it a change message is
  dropped, counted (``stats.changes_dropped``, and ``missed`` in the table's next change message) and
  reported by a ``warning`` event (at most one per 5 s); other events wait in a deque of
  ``max_pending_events`` that drops its oldest;
* if the bus subscription itself overflowed (``Subscription.dropped``), every retained item is marked
  dirty, so the broker still ends with the truth.

The sender connects with exponential backoff (0.5 s doubling to 10 s; reset after a connection that
lasted 5 s), and on every (re)connect republishes *all* retained state, because a broker that restarted
without persistence has forgotten it; a watcher task notices a lost connection even while nothing is
being published. Topics of objects removed by a new configuration are cleared (empty retained
message). ``stop()`` gives the sender a bounded moment to publish the final state (sessions closed by
the shutdown) before it disconnects.

URLs: ``mqtt://[user[:password]@]HOST:PORT`` and ``mqtts://...`` (TLS with the system's CAs, or
``events.tls_ca``; ``events.tls_insecure`` skips certificate and host name checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import aiomqtt

from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import DrgConfig
from controlplane.errors import NotFound
from controlplane.events.bus import EventBus, Subscription
from controlplane.events.event import DrgEvent, EventType

if TYPE_CHECKING:
    from controlplane.events.broker import EmbeddedBroker


class Daemon(Protocol):
    """What the publisher reads of the running DRG (``daemon.Daemon``; a protocol keeps imports one-way)."""

    bus: EventBus

    @property
    def config(self) -> DrgConfig: ...
    @property
    def effective(self) -> EffectiveConfig: ...

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any]) -> None: ...
    def routes_json(self, table: str | None = None, attachment: str | None = None) -> dict[str, Any]: ...
    def advertised_json(self, name: str) -> dict[str, Any]: ...
    def sessions_json(self) -> dict[str, Any]: ...
    def session_names(self) -> list[str]: ...

log = logging.getLogger("controlplane.events.mqtt")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
STABLE_CONNECTION = 5.0  # a connection that lasted this long resets the backoff
WARN_EVERY = 5.0
SESSION_COUNTS_GAP = 1.0  # prefix counts alone republish a session at most once a second
MIN_GAP = 0.05  # any retained item, at most 20 times a second
RENDER_SHARE = 9.0  # after a render of cost c, that item waits >= RENDER_SHARE * c (<= 10 % of the loop)

# Events with a topic of their own: everything else goes to ``events``.
OWN_TOPIC = frozenset({"route-table-change", "advertisement-change"})
# Events that change what ``drg sessions`` shows for their subject.
SESSION_EVENTS = frozenset({"session-state", "tunnel-state", "prefix-limit", "notification-sent",
                            "notification-received"})


@dataclass(frozen=True)
class MqttTarget:
    """A parsed ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def display(self) -> str:
        """The URL without the password (for logs and events)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user[:password]@]HOST:PORT`` or ``mqtts://...`` -> MqttTarget; ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"{url!r}: the scheme must be mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if port is None or port == 0:
        raise ValueError(f"{url!r}: no port (write HOST:PORT, e.g. 127.0.0.1:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: nothing may follow HOST:PORT")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return MqttTarget(parts.hostname, port, username, password, parts.scheme == "mqtts")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails: paho-mqtt 2.2 drops such a socket unclosed (a
    ResourceWarning on every refused certificate, i.e. every retry)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def make_client(target: MqttTarget, *, tls_ca: str | None = None, tls_insecure: bool = False,
                identifier: str | None = None, keepalive: int = 15, timeout: float = 5.0) -> aiomqtt.Client:
    """An aiomqtt client for ``target`` (TLS context built here; OSError if ``tls_ca`` is unreadable)."""
    context: ssl.SSLContext | None = None
    if target.tls:
        context = ssl.create_default_context(cafile=tls_ca)
        context.sslsocket_class = _ClosingSSLSocket
        if tls_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return aiomqtt.Client(
        target.host, target.port, username=target.username, password=target.password,
        # Never the empty identifier paho sends by default: amqtt 0.12 hands every such client the same
        # session, so a new reader would get the subscriptions of the previous one.
        identifier=identifier or f"drg-client-{secrets.token_hex(6)}", keepalive=keepalive, timeout=timeout,
        tls_context=context,
        tls_insecure=True if (target.tls and tls_insecure) else None,
    )


def _payload(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


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
class _Item:
    """One retained item waiting to be (re)published."""

    urgent: bool = False  # republish at once (a (re)connect, a new configuration, a session transition)


@dataclass
class _Dirty:
    tables: dict[str, _Item] = field(default_factory=dict)
    adverts: dict[str, _Item] = field(default_factory=dict)
    sessions: _Item | None = None
    prune: bool = False  # look for topics of objects that no longer exist

    def empty(self) -> bool:
        return not self.tables and not self.adverts and self.sessions is None and not self.prune


class MqttPublisher:
    """Publishes one daemon's state and events to the broker at ``url`` under ``drg/<drg_name>/``."""

    def __init__(self, daemon: Daemon, url: str, drg_name: str, *, tls_ca: str | None = None,
                 tls_insecure: bool = False, max_pending_changes: int = 10_000,
                 max_pending_events: int = 1_000) -> None:
        self.daemon = daemon
        self.target = parse_mqtt_url(url)
        self.prefix = f"drg/{drg_name}/"
        self.tls_ca = tls_ca
        self.tls_insecure = tls_insecure
        self.max_pending_changes = max_pending_changes
        self.stats = PublisherStats()
        self._identifier = f"drg-{drg_name}-{secrets.token_hex(4)}"
        self._changes: deque[tuple[str, DrgEvent, int, int]] = deque()  # table, event, rules, missed before
        self._pending_rules = 0
        self._missed: dict[str, int] = {}
        self._events: deque[DrgEvent] = deque(maxlen=max_pending_events)
        self._dirty = _Dirty()
        self._next_ok: dict[str, float] = {}  # item key -> earliest next render
        self._digests: dict[str, bytes] = {}  # topic -> digest of what this connection published
        self._known: set[str] = set()  # retained topics published (to clear removed objects)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._connected = False
        self._flushing = False
        self._last_warning = float("-inf")
        self._warned_drops = 0
        self._sub: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending_rules(self) -> int:
        return self._pending_rules

    @property
    def pending_events(self) -> int:
        return len(self._events)

    async def start(self) -> None:
        """Subscribe to the bus (nothing published from now on is missed) and connect in the background."""
        self._sub = self.daemon.bus.subscribe()
        self._mark_all(urgent=True)
        self._tasks = [asyncio.create_task(self._drain(), name="mqtt-drain"),
                       asyncio.create_task(self._run(), name="mqtt-sender")]
        log.info("MQTT: publishing under %s to %s", self.prefix, self.target.display())

    async def stop(self, flush_timeout: float = 1.0) -> None:
        """Publish the final state if connected (bounded by ``flush_timeout``), then disconnect."""
        if self._sub is not None:
            self._take_queued()
            if self._connected:
                self._flushing = True
                self._dirty.sessions = _Item(urgent=True)
                self._idle.clear()
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), flush_timeout)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=3.0)
            for task in pending:  # a broker that hangs in the middle of a disconnect
                task.cancel()
        self._tasks = []
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self._connected = False

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True once connected with nothing left to publish (within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected and self._idle.is_set() and self._sub is not None and self._sub.queue.empty():
                return True
            await asyncio.sleep(0.02)
        return False

    # ---- bus -> dirty sets and queues (cheap, never waits for the broker) ------------------------

    async def _drain(self) -> None:
        assert self._sub is not None
        while True:
            event = await self._sub.queue.get()
            self._take(event)
            self._take_queued()
            self._idle.clear()
            self._wake.set()

    def _take_queued(self) -> None:
        sub = self._sub
        assert sub is not None
        while not sub.queue.empty():
            self._take(sub.queue.get_nowait())
        if sub.dropped > self.stats.bus_lost:
            # The bus lost events for us: the retained state is rendered again in full.
            self.stats.bus_lost = sub.dropped
            self._mark_all(urgent=False)

    def _take(self, event: DrgEvent) -> None:
        kind = event.type
        if kind == "route-table-change" and event.subject:
            self._mark_table(event.subject)
            self._mark_sessions(urgent=False)
            self._queue_change(event.subject, event)
            return
        if kind == "advertisement-change" and event.subject:
            self._mark_advert(event.subject)
            self._mark_sessions(urgent=False)
            return
        if kind in SESSION_EVENTS:
            self._mark_sessions(urgent=True)
            if kind == "session-state" and event.subject:  # what a session advertises follows its state
                self._mark_advert(event.subject, urgent=True)
        elif kind == "config-applied":
            self._mark_all(urgent=True)
        if len(self._events) == self._events.maxlen:
            self.stats.events_dropped += 1
        self._events.append(event)
        self.stats.max_pending_events = max(self.stats.max_pending_events, len(self._events))

    def _queue_change(self, table: str, event: DrgEvent) -> None:
        rules = len(event.data.get("changes", ()))
        if self._pending_rules + rules > self.max_pending_changes:
            self.stats.changes_dropped += 1
            count = int(event.data.get("count", rules))
            self.stats.rules_dropped += count
            self._missed[table] = self._missed.get(table, 0) + count
            self._warn_drops()
            return
        self._changes.append((table, event, rules, self._missed.pop(table, 0)))
        self._pending_rules += rules
        self.stats.max_pending_rules = max(self.stats.max_pending_rules, self._pending_rules)

    def _warn_drops(self) -> None:
        now = time.monotonic()
        if now - self._last_warning < WARN_EVERY:
            return
        self._last_warning = now
        new = self.stats.changes_dropped - self._warned_drops
        self._warned_drops = self.stats.changes_dropped
        state = "slow" if self._connected else f"unreachable ({self.stats.last_error})"
        self.daemon.publish(EventType.WARNING, None, {
            "source": "mqtt", "changesDropped": self.stats.changes_dropped, "rulesDropped": self.stats.rules_dropped,
            "summary": f"MQTT: {new} route-table change message(s) dropped (broker {self.target.display()} {state}; "
                       f"bound {self.max_pending_changes} pending rules); the retained route tables carry the "
                       "full state"})

    def _mark_table(self, name: str, urgent: bool = False) -> None:
        item = self._dirty.tables.setdefault(name, _Item())
        item.urgent = item.urgent or urgent

    def _mark_advert(self, name: str, urgent: bool = False) -> None:
        item = self._dirty.adverts.setdefault(name, _Item())
        item.urgent = item.urgent or urgent

    def _mark_sessions(self, urgent: bool) -> None:
        if self._dirty.sessions is None:
            self._dirty.sessions = _Item(urgent=urgent)
        else:
            self._dirty.sessions.urgent = self._dirty.sessions.urgent or urgent

    def _table_names(self) -> list[str]:
        return [t.name for t in self.daemon.effective.route_tables]

    def _mark_all(self, urgent: bool) -> None:
        for name in self._table_names():
            self._mark_table(name, urgent)
        for name in self.daemon.session_names():
            self._mark_advert(name, urgent)
        self._mark_sessions(urgent)
        self._dirty.prune = True

    # ---- the sender: connection with backoff ------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        outage_reported = False
        while True:
            started = time.monotonic()
            try:
                client = make_client(self.target, tls_ca=self.tls_ca, tls_insecure=self.tls_insecure,
                                     identifier=self._identifier)
                async with client:
                    self._connected = True
                    self.stats.connects += 1
                    outage_reported = False
                    log.info("MQTT: connected to %s; publishing the retained state", self.target.display())
                    await self._serve(client)
            except Exception as exc:
                if not isinstance(exc, aiomqtt.MqttError | OSError):
                    log.exception("MQTT: publisher error; reconnecting")
                self.stats.last_error = str(exc) or type(exc).__name__
                if not self._connected:
                    self.stats.connect_failures += 1
                if not outage_reported:
                    outage_reported = True
                    what = "lost" if self._connected else "unreachable"
                    self.daemon.publish(EventType.WARNING, None, {
                        "source": "mqtt", "broker": self.target.display(),
                        "summary": f"MQTT broker {self.target.display()} {what}: {self.stats.last_error}; "
                                   f"retrying with backoff up to {BACKOFF_MAX:g} s (routing is not affected)"})
            finally:
                self._connected = False
                self._idle.clear()
            if time.monotonic() - started >= STABLE_CONNECTION:
                delay = BACKOFF_FIRST
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Republish everything, then follow the dirty sets; returns (raising) when the connection drops."""
        self._digests.clear()
        self._mark_all(urgent=True)
        watcher = asyncio.create_task(self._watch(client), name="mqtt-watch")
        sender = asyncio.create_task(self._send_loop(client), name="mqtt-send")
        try:
            done, _pending = await asyncio.wait({watcher, sender}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the MqttError of a lost connection
            raise aiomqtt.MqttError("connection closed")
        finally:
            for task in (watcher, sender):
                task.cancel()
            await asyncio.gather(watcher, sender, return_exceptions=True)

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raises MqttError as soon as the broker goes away, even while nothing is published."""
        async for _message in client.messages:
            pass

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        while True:
            self._wake.clear()
            await self._send_stream(client)
            delay = await self._send_retained(client)
            if delay == 0.0:
                continue
            if not self._changes and not self._events and self._dirty.empty():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes, retain: bool) -> None:
        await client.publish(self.prefix + topic, payload, qos=1 if retain else 0, retain=retain)
        self.stats.messages += 1
        if retain:
            self.stats.retained += 1

    async def _send_stream(self, client: aiomqtt.Client) -> None:
        """Change messages, then other events, in order; what is queued now (later ones wait a turn)."""
        for _ in range(len(self._changes)):
            table, event, rules, missed = self._changes[0]
            changes = event.data.get("changes", [])
            count = int(event.data.get("count", len(changes)))
            doc = {"table": table, "time": round(event.time, 6), "count": count,
                   "complete": count == len(changes), "missed": missed, "changes": changes}
            await self._publish(client, f"route-tables/{table}/changes", _payload(doc), retain=False)
            self._changes.popleft()
            self._pending_rules -= rules
        if self._missed and not self._changes:
            # Drops after the last queued change: say so now rather than with the table's next change.
            for table in sorted(self._missed):
                doc = {"table": table, "time": round(time.time(), 6), "count": 0, "complete": False,
                       "missed": self._missed[table], "changes": []}
                await self._publish(client, f"route-tables/{table}/changes", _payload(doc), retain=False)
                del self._missed[table]
        for _ in range(len(self._events)):
            event = self._events[0]
            await self._publish(client, "events", _payload(event.to_json()), retain=False)
            self._events.popleft()

    async def _send_retained(self, client: aiomqtt.Client) -> float | None:
        """Publish every dirty item whose pacing allows it; the seconds until the next one (None: none)."""
        dirty = self._dirty
        now = time.monotonic()
        if dirty.prune:
            dirty.prune = False
            await self._prune(client)
        for name in list(dirty.tables):
            if self._ready(f"table:{name}", dirty.tables[name], now):
                del dirty.tables[name]
                await self._retained(client, f"table:{name}", partial(self._render_table, name))
        for name in list(dirty.adverts):
            if self._ready(f"advert:{name}", dirty.adverts[name], now):
                del dirty.adverts[name]
                await self._retained(client, f"advert:{name}", partial(self._render_advert, name))
        if dirty.sessions is not None and self._ready("sessions", dirty.sessions, now):
            dirty.sessions = None
            await self._retained(client, "sessions", self._render_sessions)
        waits = [self._next_ok.get(f"table:{n}", 0.0) for n in dirty.tables]
        waits += [self._next_ok.get(f"advert:{n}", 0.0) for n in dirty.adverts]
        if dirty.sessions is not None:
            waits.append(self._next_ok.get("sessions", 0.0))
        if not waits:
            return None
        return max(0.0, min(waits) - time.monotonic())

    def _ready(self, key: str, item: _Item, now: float) -> bool:
        if self._flushing or item.urgent:
            return True
        return now >= self._next_ok.get(key, 0.0)

    async def _retained(self, client: aiomqtt.Client, key: str, render: Callable[[], list[tuple[str, bytes]]]) -> None:
        started = time.perf_counter()
        try:
            messages = render()
        except NotFound:
            messages = []
        self.stats.renders += 1
        cost = time.perf_counter() - started
        gap = SESSION_COUNTS_GAP if key == "sessions" else MIN_GAP
        self._next_ok[key] = time.monotonic() + max(gap, RENDER_SHARE * cost)
        for topic, payload in messages:
            digest = hashlib.blake2b(payload, digest_size=16).digest()
            if self._digests.get(topic) == digest:
                continue
            try:
                await self._publish(client, topic, payload, retain=True)
            except BaseException:
                # Not (all) published: the item is dirty again for the next connection.
                if key == "sessions":
                    self._mark_sessions(urgent=True)
                elif key.startswith("table:"):
                    self._mark_table(key.removeprefix("table:"), urgent=True)
                else:
                    self._mark_advert(key.removeprefix("advert:"), urgent=True)
                raise
            self._digests[topic] = digest
            self._known.add(topic)

    def _render_table(self, name: str) -> list[tuple[str, bytes]]:
        table = self.daemon.routes_json(table=name)["routeTables"][0]
        return [(f"route-tables/{name}", _payload(table))]

    def _render_advert(self, name: str) -> list[tuple[str, bytes]]:
        if name not in self.daemon.session_names():
            return []
        return [(f"advertised/{name}", _payload(self.daemon.advertised_json(name)))]

    def _render_sessions(self) -> list[tuple[str, bytes]]:
        return [(f"sessions/{s['session']}/state", _payload(s)) for s in self.daemon.sessions_json()["sessions"]]

    def _current_topics(self) -> set[str]:
        topics = {f"route-tables/{name}" for name in self._table_names()}
        topics |= {f"advertised/{name}" for name in self.daemon.session_names()}
        topics |= {f"sessions/{s['session']}/state" for s in self.daemon.sessions_json()["sessions"]}
        return topics

    async def _prune(self, client: aiomqtt.Client) -> None:
        """Clear the retained topics of tables, sessions and peers that no longer exist."""
        for topic in sorted(self._known - self._current_topics()):
            await self._publish(client, topic, b"", retain=True)
            self._known.discard(topic)
            self._digests.pop(topic, None)


class MqttEvents:
    """What ``events.mqtt`` starts in the daemon: the embedded broker (``embedded``) and the publisher."""

    def __init__(self, publisher: MqttPublisher, broker: EmbeddedBroker | None) -> None:
        self.publisher = publisher
        self.broker = broker

    async def stop(self) -> None:
        await self.publisher.stop()
        if self.broker is not None:
            await self.broker.stop()


async def start_mqtt(daemon: Daemon) -> MqttEvents:
    """Start the MQTT side of ``daemon`` from ``daemon.config.events`` (OSError if the embedded broker
    cannot listen)."""
    events = daemon.config.events
    assert events.mqtt is not None
    broker: EmbeddedBroker | None = None
    url = events.mqtt
    if url == "embedded":
        from controlplane.events.broker import EmbeddedBroker

        broker = EmbeddedBroker(events.embedded_listen)
        await broker.start()
        url = broker.url
    publisher = MqttPublisher(daemon, url, daemon.config.drg.name, tls_ca=events.tls_ca,
                              tls_insecure=events.tls_insecure)
    try:
        await publisher.start()
    except BaseException:
        if broker is not None:
            await broker.stop()
        raise
    if broker is not None:
        log.info("MQTT: embedded broker on %s; follow it with: drg events --mqtt %s", events.embedded_listen, url)
    return MqttEvents(publisher, broker)


# ---- the reading side: ``drg events --mqtt`` ---------------------------------------------------------


async def follow(url: str, topic_filter: str, on_message: Callable[[str, bytes, bool], None], *,
                 tls_ca: str | None = None, tls_insecure: bool = False, reconnect: bool = True) -> None:
    """Subscribe to ``topic_filter`` and call ``on_message(topic, payload, retained)`` for each message
    until cancelled. The first connection must succeed (ConnectionError otherwise); a connection lost
    later is retried with backoff (the broker then replays its retained messages)."""
    target = parse_mqtt_url(url)
    delay = BACKOFF_FIRST
    first = True
    while True:
        try:
            async with make_client(target, tls_ca=tls_ca, tls_insecure=tls_insecure) as client:
                first = False
                delay = BACKOFF_FIRST
                await client.subscribe(topic_filter, qos=1)
                async for message in client.messages:
                    if not message.topic.matches(topic_filter):
                        # amqtt 0.12.1 sends a new connection the retained messages of *every* client's
                        # subscriptions, not only its own: drop what this filter does not ask for.
                        continue
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                    on_message(str(message.topic), data, bool(message.retain))
        except (aiomqtt.MqttError, OSError) as exc:
            if first or not reconnect:
                raise ConnectionError(f"{target.display()}: {exc}") from exc
            log.warning("MQTT: %s: %s; reconnecting in %.1f s", target.display(), exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX)


__all__ = ["MqttEvents", "MqttPublisher", "MqttTarget", "PublisherStats", "follow", "make_client",
           "parse_mqtt_url", "start_mqtt"]
