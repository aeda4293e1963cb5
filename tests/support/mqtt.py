"""Real MQTT brokers for the tests, and a subscriber that reads back what the daemon published.

The ``broker`` fixture (``tests/conftest.py``, parametrized by ``BROKER_KINDS``) yields a running
:class:`RunningBroker` for each kind: ``embedded`` (the daemon's own amqtt broker,
``controlplane.events.broker``) always, and ``mosquitto`` when the binary is installed (started in
the foreground with a config of its own: loopback listener, anonymous, no persistence; stopped by
PID). Without Mosquitto its tests are skipped with the reason "mosquitto not installed: Mosquitto
tests not run", which pytest prints. Every wait is bounded; every port is a free loopback port.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from controlplane.events.broker import EmbeddedBroker
from controlplane.events.mqtt import make_client, parse_mqtt_url
from tests.support.ports import free_port, port_open

MOSQUITTO = shutil.which("mosquitto")
MOSQUITTO_MISSING = "mosquitto not installed: Mosquitto tests not run"


class RunningBroker(abc.ABC):
    """A broker on 127.0.0.1:``port`` that a test can stop and start again on the same port."""

    kind = ""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def restart(self, down_for: float = 0.3) -> None:
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start()


class Embedded(RunningBroker):
    kind = "embedded"

    def __init__(self, port: int, workdir: Path) -> None:
        super().__init__(port, workdir)
        self._broker: EmbeddedBroker | None = None

    async def start(self) -> None:
        self._broker = EmbeddedBroker(f"127.0.0.1:{self.port}")
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.stop()
            self._broker = None


class Mosquitto(RunningBroker):
    kind = "mosquitto"

    def __init__(self, port: int, workdir: Path) -> None:
        super().__init__(port, workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / f"mosquitto-{port}.conf"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.log = workdir / f"mosquitto-{port}.log"

    async def start(self) -> None:
        assert MOSQUITTO is not None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log.read_text()[-2000:]}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)


BROKER_KINDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("mosquitto", id="mosquitto",
                 marks=pytest.mark.skipif(MOSQUITTO is None, reason=MOSQUITTO_MISSING)),
]


def make_broker(kind: str, workdir: Path, port: int | None = None) -> RunningBroker:
    port = port or free_port()
    return Embedded(port, workdir) if kind == "embedded" else Mosquitto(port, workdir)


# ---- reading back ---------------------------------------------------------------------------------------


def decode(payload: bytes) -> Any:
    return json.loads(payload) if payload else None


async def retained(url: str, topic_filter: str, quiet: float = 0.4, limit: float = 10.0) -> dict[str, Any]:
    """What a fresh subscriber gets as retained messages: {topic: JSON}, read until ``quiet`` s pass
    without a message (at most ``limit`` s)."""
    out: dict[str, Any] = {}
    async with make_client(parse_mqtt_url(url)) as client:
        await client.subscribe(topic_filter, qos=1)
        deadline = time.monotonic() + limit
        messages = aiter(client.messages)
        while time.monotonic() < deadline:
            try:
                message = await asyncio.wait_for(anext(messages), quiet)
            except TimeoutError:
                break
            if message.retain and message.topic.matches(topic_filter):  # amqtt: see publish.follow
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                out[str(message.topic)] = decode(bytes(payload))
    return out


def split_state(snapshot: dict[str, Any], drg: str) -> dict[str, dict[str, Any]]:
    """A retained snapshot -> {"tables": {name: table}, "sessions": {att: s}, "advertised": {att: doc}}."""
    prefix = f"drg/{drg}/"
    out: dict[str, dict[str, Any]] = {"tables": {}, "sessions": {}, "advertised": {}}
    for topic, doc in snapshot.items():
        parts = topic.removeprefix(prefix).split("/")
        if parts[0] == "route-tables" and len(parts) == 2:
            out["tables"][parts[1]] = doc
        elif parts[0] == "sessions" and len(parts) == 3:
            out["sessions"][parts[1]] = doc
        elif parts[0] == "advertised" and len(parts) == 2:
            out["advertised"][parts[1]] = doc
    return out


def tables_of(routes: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: t for t in routes["routeTables"]}


def without_uptime(sessions: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> dict[str, Any]:
    items = sessions.values() if isinstance(sessions, dict) else sessions
    return {s["attachment"]: {k: v for k, v in s.items() if k != "uptimeSeconds"} for s in items}


async def until_retained(url: str, drg: str, want: Callable[[], dict[str, Any]], limit: float,
                         what: str = "tables") -> dict[str, dict[str, Any]]:
    """Read the retained state again until its ``what`` part equals ``want()`` (bounded)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            state = split_state(await retained(url, f"drg/{drg}/#"), drg)
        except aiomqtt.MqttError:
            # amqtt 0.12.1's broker can drop a reader's SUBSCRIBE when another client disconnects at the
            # same moment ("dictionary changed size during iteration" in _handle_client_session): read
            # again, within the same bound, as a subscriber would after a timeout.
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
            continue
        got = without_uptime(state["sessions"]) if what == "sessions" else state[what]
        expected = want()
        if got == expected:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"retained {what} not equal within {limit} s:\n got {sorted(got)}\n"
                                 f"want {sorted(expected)}\n diff {_diff(got, expected)}")
        await asyncio.sleep(0.2)


def _diff(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)][:10]


@dataclass
class Collector:
    """Follows a topic filter in the background; ``seen`` holds (monotonic time, topic, JSON, retained)."""

    url: str
    topic_filter: str
    seen: list[tuple[float, str, Any, bool]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with make_client(parse_mqtt_url(self.url)) as client:
            await client.subscribe(self.topic_filter, qos=1)
            self._ready.set()
            async for message in client.messages:
                if not message.topic.matches(self.topic_filter):  # amqtt: see publish.follow
                    continue
                payload = message.payload
                assert isinstance(payload, bytes | bytearray)
                self.seen.append((time.monotonic(), str(message.topic), decode(bytes(payload)), message.retain))

    async def wait_for(self, predicate: Callable[[str, Any], bool], limit: float, after: float = 0.0) -> float:
        """The arrival time of the first message (after ``after``) matching ``predicate(topic, doc)``."""
        deadline = time.monotonic() + limit
        while True:
            for when, topic, doc, _retain in self.seen:
                if when >= after and predicate(topic, doc):
                    return when
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching message on {self.topic_filter} within {limit} s "
                                   f"({len(self.seen)} seen)")
            await asyncio.sleep(0.01)
