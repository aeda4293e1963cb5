"""The MQTT publisher: one daemon's state and events, coalesced, on a broker (the sending side).

How it works. The route engine never waits for the broker: :class:`MqttPublisher` reads the daemon's
:class:`~controlplane.events.bus.EventBus` through its bounded subscription in a *drain* task that only
files each event in the :class:`~controlplane.events.mqtt_backlog.Backlog` (dirty retained items, the
bounded queue of change messages, the deque of other events). If the bus subscription itself
overflowed (``Subscription.dropped``), every retained item is marked dirty, so the broker still ends
with the truth. A dropped change message is reported by a ``warning`` event (at most one per 5 s).

The *sender* task publishes change messages and other events in order, then every dirty retained item,
re-rendered from the daemon (``routes_json``, ``sessions_json``, ``advertised_json``) when it is sent.
Re-rendering is paced (after renders costing *c* in all, the next non-urgent render waits at least
``9 c``, so rendering retained state takes at most a tenth of the event loop, however many items),
and a payload equal to the last one published on this connection is not sent again. A table is
rendered in slices of ``SLICE`` seconds (``Daemon.table_chunks``: chunks of a few thousand rules,
``engine/dump.py``), the event loop running between them, into one growing buffer hashed as it grows;
``mqtt_client.frame_large_publishes`` keeps paho from copying a payload of hundreds of megabytes at once on sending.

The sender connects with exponential backoff (0.5 s doubling to 10 s; reset after a connection that
lasted 5 s), and on every (re)connect republishes *all* retained state, because a broker that restarted
without persistence has forgotten it; a watcher task notices a lost connection even while nothing is
being published. Topics of objects removed by a new configuration are cleared (empty retained
message). ``stop()`` gives the sender a bounded moment to publish the final state (sessions closed by
the shutdown) before it disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiomqtt

from controlplane.errors import NotFound
from controlplane.events.bus import Subscription
from controlplane.events.event import EventType
from controlplane.events.mqtt_backlog import Backlog, Daemon, Item, PublisherStats
from controlplane.events.mqtt_client import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    LARGE_PAYLOAD,
    MappedPayload,
    frame_large_publishes,
    make_client,
    parse_mqtt_url,
)

log = logging.getLogger("controlplane.events.mqtt")  # one logger for the whole MQTT side

STABLE_CONNECTION = 5.0  # a connection that lasted this long resets the backoff
WARN_EVERY = 5.0
SESSION_COUNTS_GAP = 1.0  # prefix counts alone republish a session at most once a second
MIN_GAP = 0.05  # any retained item, at most 20 times a second
MQTT_MAX_PAYLOAD = 268_435_455 - 1024  # the largest remaining length, less the topic and header
LINGER = 0.01  # after a wake-up, the sender waits this long for more of a burst (one message, not many)
SLICE = 0.01  # a big retained table is rendered in slices of this many seconds, the event loop between them
RENDER_SHARE = 9.0  # after a render of cost c, that item waits >= RENDER_SHARE * c (<= 10 % of the loop)


def _payload(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


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
        self._backlog = Backlog(daemon, self.stats, max_pending_changes=max_pending_changes,
                                max_pending_events=max_pending_events, on_drop=self._warn_drops)
        self._next_ok: dict[str, float] = {}  # item key -> earliest next render
        self._renders_ok = 0.0  # earliest next pass of non-urgent renders (all items together)
        self._framed = False  # the client sends large payloads framed (MappedPayload allowed)
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
        return self._backlog.pending_rules

    def queued_changes(self) -> list[dict[str, Any]]:
        """The change messages waiting to be published, as they would be (one per table and run of changes)."""
        return [message.to_json() for message in self._backlog.changes]

    @property
    def pending_events(self) -> int:
        return len(self._backlog.events)

    async def start(self) -> None:
        """Subscribe to the bus (nothing published from now on is missed) and connect in the background."""
        self._sub = self.daemon.bus.subscribe()
        self._backlog.mark_all(urgent=True)
        self._tasks = [asyncio.create_task(self._drain(), name="mqtt-drain"),
                       asyncio.create_task(self._run(), name="mqtt-sender")]
        log.info("MQTT: publishing under %s to %s", self.prefix, self.target.display())

    async def stop(self, flush_timeout: float = 1.0, final_state: bool = True) -> None:
        """Publish the final state if connected (bounded by ``flush_timeout``), then disconnect.
        ``final_state=False``: the DRG is gone (a new configuration removed it), nothing to publish."""
        if self._sub is not None and final_state:
            self._take_queued()
            if self._connected:
                self._flushing = True
                self._backlog.dirty.sessions = Item(urgent=True)
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
            self._backlog.take(event)
            self._take_queued()
            self._idle.clear()
            self._wake.set()

    def _take_queued(self) -> None:
        sub = self._sub
        assert sub is not None
        while not sub.queue.empty():
            self._backlog.take(sub.queue.get_nowait())
        if sub.dropped > self.stats.bus_lost:
            # The bus lost events for us: the retained state is rendered again in full.
            self.stats.bus_lost = sub.dropped
            self._backlog.mark_all(urgent=False)

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

    # ---- the sender: connection with backoff ------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        outage_reported = False
        while True:
            started = time.monotonic()
            try:
                client = make_client(self.target, tls_ca=self.tls_ca, tls_insecure=self.tls_insecure,
                                     identifier=self._identifier)
                self._framed = frame_large_publishes(client)
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
        self._backlog.mark_all(urgent=True)
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
            if self._backlog.empty():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if not self._flushing:
                await asyncio.sleep(LINGER)  # let a burst's changes merge (ChangeMessage) before sending

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes | bytearray, retain: bool) -> None:
        await client.publish(self.prefix + topic, payload, qos=1 if retain else 0, retain=retain)
        self.stats.messages += 1
        if retain:
            self.stats.retained += 1

    async def _send_stream(self, client: aiomqtt.Client) -> None:
        """Change messages, then other events, in order; what is queued now (later ones wait a turn)."""
        backlog = self._backlog
        for _ in range(len(backlog.changes)):
            message = backlog.next_change()
            await self._publish(client, f"route-tables/{message.table}/changes", _payload(message.to_json()),
                                retain=False)
            backlog.sent()
        if backlog.missed and not backlog.changes:
            # Drops after the last queued change: say so now rather than with the table's next change.
            for table in sorted(backlog.missed):
                doc = {"table": table, "time": round(time.time(), 6), "count": 0, "complete": False,
                       "missed": backlog.missed[table], "merged": 0, "changes": []}
                await self._publish(client, f"route-tables/{table}/changes", _payload(doc), retain=False)
                del backlog.missed[table]
        for _ in range(len(backlog.events)):
            event = backlog.events[0]
            await self._publish(client, "events", _payload(event.to_json()), retain=False)
            backlog.events.popleft()

    async def _send_retained(self, client: aiomqtt.Client) -> float | None:
        """Publish every dirty item whose pacing allows it; the seconds until the next one (None: none)."""
        dirty = self._backlog.dirty
        now = time.monotonic()
        if dirty.prune:
            dirty.prune = False
            await self._prune(client)
        cost = 0.0
        for name in list(dirty.tables):
            if self._ready(f"table:{name}", dirty.tables[name], now):
                del dirty.tables[name]
                cost += await self._retained(client, f"table:{name}", list, partial(self._render_table, name))
        for name in list(dirty.adverts):
            if self._ready(f"advert:{name}", dirty.adverts[name], now):
                del dirty.adverts[name]
                cost += await self._retained(client, f"advert:{name}", partial(self._render_advert, name))
        if dirty.sessions is not None and self._ready("sessions", dirty.sessions, now):
            dirty.sessions = None
            cost += await self._retained(client, "sessions", self._render_sessions)
        if cost:  # all items together take at most a tenth of the loop, not a tenth each
            self._renders_ok = max(self._renders_ok, time.monotonic() + RENDER_SHARE * cost)
        waits = [self._next_ok.get(f"table:{n}", 0.0) for n in dirty.tables]
        waits += [self._next_ok.get(f"advert:{n}", 0.0) for n in dirty.adverts]
        if dirty.sessions is not None:
            waits.append(self._next_ok.get("sessions", 0.0))
        if not waits:
            return None
        return max(0.0, max(min(waits), self._renders_ok) - time.monotonic())

    def _ready(self, key: str, item: Item, now: float) -> bool:
        if self._flushing or item.urgent:
            return True
        return now >= max(self._next_ok.get(key, 0.0), self._renders_ok)

    async def _retained(self, client: aiomqtt.Client, key: str, render: Callable[[], list[tuple[str, bytes]]],
                        sliced: Callable[[], Awaitable[tuple[str, bytearray, bytes, float]]] | None = None) -> float:
        """Render one retained item and publish what changed of it; returns what it cost: the rendering's
        busy seconds and the publishing's wall seconds (until the broker acknowledged: its own work, an
        embedded broker's on this process's CPU, counts too)."""
        started = time.perf_counter()
        try:
            if sliced is not None:  # a table: rendered in slices, its cost the sum of the slices
                topic, body, digest, cost = await sliced()
                messages: list[tuple[str, bytes | bytearray, bytes]] = [(topic, body, digest)]
            else:
                messages = [(topic, payload, hashlib.blake2b(payload, digest_size=16).digest())
                            for topic, payload in render()]
                cost = time.perf_counter() - started
        except NotFound:
            messages, cost = [], time.perf_counter() - started
        self.stats.renders += 1
        gap = SESSION_COUNTS_GAP if key == "sessions" else MIN_GAP
        self._next_ok[key] = time.monotonic() + max(gap, RENDER_SHARE * cost)
        for topic, payload, digest in messages:
            if self._digests.get(topic) == digest:
                continue
            if len(payload) > MQTT_MAX_PAYLOAD:
                self._too_large(topic, len(payload))
                payload = b""  # cleared rather than stale: MQTT cannot carry it (paho would refuse it)
            sending = time.perf_counter()
            try:
                await self._publish(client, topic, payload, retain=True)
            except BaseException:
                # Not (all) published: the item is dirty again for the next connection.
                if key == "sessions":
                    self._backlog.mark_sessions(urgent=True)
                elif key.startswith("table:"):
                    self._backlog.mark_table(key.removeprefix("table:"), urgent=True)
                else:
                    self._backlog.mark_advert(key.removeprefix("advert:"), urgent=True)
                raise
            self._digests[topic] = digest
            self._known.add(topic)
            cost += time.perf_counter() - sending
        for _topic, payload, _digest in messages:
            if isinstance(payload, MappedPayload):
                await payload.release()
        return cost

    def _too_large(self, topic: str, size: int) -> None:
        self.daemon.publish(EventType.WARNING, None, {
            "source": "mqtt", "topic": self.prefix + topic, "bytes": size,
            "summary": f"MQTT: {self.prefix}{topic} would be {size} bytes, over MQTT's limit of {MQTT_MAX_PAYLOAD}: "
                       "its retained message is cleared until it fits; read the table with drg routes"})

    async def _render_table(self, name: str) -> tuple[str, bytearray, bytes, float]:
        """The retained table (compact ``drg routes --json`` element), rendered chunk by chunk with the
        event loop running after every ``SLICE`` seconds of work: (topic, payload, digest, busy seconds)."""
        payload = bytearray()
        digest = hashlib.blake2b(digest_size=16)
        busy = 0.0
        start = time.perf_counter()
        for text in self.daemon.table_chunks(name):
            data = text.encode()
            if isinstance(payload, MappedPayload):
                payload.write(data)
            elif self._framed and len(payload) + len(data) >= LARGE_PAYLOAD:  # big: into a memory map
                mapped = MappedPayload(MQTT_MAX_PAYLOAD + 1)
                mapped.write(payload)
                mapped.write(data)
                payload = mapped
            else:
                payload += data
            digest.update(data)
            now = time.perf_counter()
            if now - start >= SLICE:
                busy += now - start
                await asyncio.sleep(0)
                start = time.perf_counter()
        return f"route-tables/{name}", payload, digest.digest(), busy + time.perf_counter() - start

    def _render_advert(self, name: str) -> list[tuple[str, bytes]]:
        if name not in self.daemon.session_names():
            return []
        return [(f"advertised/{name}", _payload(self.daemon.advertised_json(name)))]

    def _render_sessions(self) -> list[tuple[str, bytes]]:
        return [(f"sessions/{s['session']}/state", _payload(s)) for s in self.daemon.sessions_json()["sessions"]]

    def _current_topics(self) -> set[str]:
        topics = {f"route-tables/{name}" for name in self._backlog.table_names()}
        topics |= {f"advertised/{name}" for name in self.daemon.session_names()}
        topics |= {f"sessions/{s['session']}/state" for s in self.daemon.sessions_json()["sessions"]}
        return topics

    async def _prune(self, client: aiomqtt.Client) -> None:
        """Clear the retained topics of tables, sessions and peers that no longer exist."""
        for topic in sorted(self._known - self._current_topics()):
            await self._publish(client, topic, b"", retain=True)
            self._known.discard(topic)
            self._digests.pop(topic, None)


__all__ = ["MqttPublisher"]
