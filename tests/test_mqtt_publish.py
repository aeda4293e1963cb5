"""The MQTT publisher against real brokers, with the daemon driven in-process (no ExaBGP).

Each test runs a :class:`~controlplane.daemon.Daemon` (``control=False``) on the example file with
free loopback ports and ``events.mqtt`` pointing at a real broker (the embedded amqtt one always,
Mosquitto when installed: see ``tests/support/mqtt.py``), feeds it the events the BGP layer would
(``StateChanged``, ``RoutesReceived`` through ``Daemon._on_bgp_event``, the same path as a real
UPDATE), and reads back what a fresh subscriber sees. Covered: URL and config errors, retained state
equal to the daemon's JSON documents (and cleared when a new configuration removes a table), change
messages, a broker restart, TLS, route processing with a dead broker (measured), a burst of 100,000
route changes with bounded memory, and ``drg events --mqtt`` through the real console script.
"""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import RoutesReceived, State, StateChanged
from controlplane.config.load import parse_config
from controlplane.config.problems import ConfigError
from controlplane.config.validate import parse_valid
from controlplane.daemon import Daemon
from controlplane.events.event import DrgEvent
from controlplane.events.mqtt import MqttPublisher, parse_mqtt_url
from controlplane.events.mqtt_backlog import MESSAGE_WEIGHT
from controlplane.prefix import AFI_IPV4, parse_prefix
from controlplane.prefix import format_prefix as format_key
from tests.support.mqtt import (
    Collector,
    RunningBroker,
    make_broker,
    retained,
    split_state,
    tables_of,
    until_retained,
    without_uptime,
)
from tests.support.paths import EXAMPLES, ROOT
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(180)

DRG = "drg1"
VC = "att-vc1"
LB_TABLE = "att-vc1-lb-rt"  # the loopback table imports the VC's routes (R45)
ATTRS = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")


def config_doc(mqtt: str | None, max_prefixes: int = 2000) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / "transport-mode.yaml").read_text())
    doc["speaker"]["listen"] = f"127.0.0.1:{free_port()}"
    doc["api"]["listen"] = f"127.0.0.1:{free_port()}"
    doc["events"] = {"mqtt": mqtt, "embedded_listen": f"127.0.0.1:{free_port()}"}
    vc = next(a for a in doc["attachments"] if a["name"] == VC)
    vc["bgp"]["max_prefixes"] = {"ipv4": max_prefixes, "ipv6": 500}
    return doc


def make_daemon(doc: dict[str, Any]) -> Daemon:
    config, _warnings = parse_valid(yaml.safe_dump(doc, sort_keys=False), "test.yaml")
    return Daemon(config, control=False)


@pytest.fixture
async def running(broker: RunningBroker) -> AsyncIterator[tuple[Daemon, RunningBroker]]:
    daemon = make_daemon(config_doc(broker.url))
    await daemon.start()
    try:
        yield daemon, broker
    finally:
        await daemon.stop()


def prefixes(n: int, start: int = 0) -> list[int]:
    """``n`` distinct /24 keys 10.x.y.0/24 (never the CPE address, so no tunnel comes up)."""
    return [parse_prefix(f"10.{100 + (i >> 8) % 150}.{i & 255}.0/24")[1] for i in range(start, start + n)]


def session_up(daemon: Daemon) -> None:
    daemon.bgp_event(StateChanged(VC, State.OPEN_CONFIRM, State.ESTABLISHED))


def announce(daemon: Daemon, keys: list[int]) -> None:
    daemon.bgp_event(RoutesReceived(VC, AFI_IPV4, tuple(keys), ATTRS, ()))


def withdraw(daemon: Daemon, keys: list[int]) -> None:
    daemon.bgp_event(RoutesReceived(VC, AFI_IPV4, (), None, tuple(keys)))


def publisher(daemon: Daemon) -> MqttPublisher:
    assert daemon.mqtt is not None
    return daemon.mqtt.publisher


def adverts(daemon: Daemon) -> dict[str, Any]:
    return {name: daemon.advertised_json(name) for name in daemon.session_names()}


# ---- URLs and configuration ---------------------------------------------------------------------------


def test_mqtt_urls() -> None:
    t = parse_mqtt_url("mqtt://alice:s%40cret@127.0.0.1:1883")
    assert (t.host, t.port, t.username, t.password, t.tls) == ("127.0.0.1", 1883, "alice", "s@cret", False)
    assert t.display() == "mqtt://alice@127.0.0.1:1883"  # never the password
    t = parse_mqtt_url("mqtts://broker.example:8883")
    assert (t.host, t.port, t.username, t.tls) == ("broker.example", 8883, None, True)
    for bad, why in [("http://h:1", "scheme"), ("mqtt://h", "no port"), ("mqtt://h:x", "port"),
                     ("mqtt://:1883", "no host"), ("mqtt://h:1883/topic", "nothing may follow")]:
        with pytest.raises(ValueError, match=why):
            parse_mqtt_url(bad)


@pytest.mark.parametrize(("events", "field"), [
    ({"mqtt": "mqtt://127.0.0.1"}, "mqtt"),
    ({"mqtt": "tcp://127.0.0.1:1883"}, "mqtt"),
    ({"mqtt": "mqtt://127.0.0.1:1883", "tls_ca": "/etc/ssl/ca.pem"}, "tls_ca"),
    ({"mqtt": "embedded", "tls_insecure": True}, "tls_insecure"),
])
def test_bad_events_config_is_a_clear_error(events: dict[str, Any], field: str) -> None:
    doc = config_doc(None)
    doc["events"] = events
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(doc), "lab.yaml")
    [problem] = info.value.problems
    assert (problem.object, problem.field, problem.rule) == ("events", field, "schema")
    assert "mqtt" in problem.fix


def test_good_events_config() -> None:
    doc = config_doc(None)
    doc["events"] = {"mqtt": "mqtts://u:p@127.0.0.1:8883", "tls_ca": "ca.pem", "tls_insecure": False}
    assert parse_config(yaml.safe_dump(doc), "lab.yaml").events.tls_ca == "ca.pem"


# ---- retained state, changes, restart --------------------------------------------------------------------


async def test_retained_state_equals_the_daemons(running: tuple[Daemon, RunningBroker]) -> None:
    daemon, server = running
    session_up(daemon)
    announce(daemon, prefixes(300))
    state = await until_retained(server.url, DRG, lambda: tables_of(daemon.routes_json()), 10)
    assert len(state["tables"][LB_TABLE]["rules"]) >= 300
    assert without_uptime(state["sessions"]) == without_uptime(daemon.sessions_json()["sessions"])
    assert state["advertised"] == adverts(daemon)
    # No socket session is Established here (the events are injected): the retained Adj-RIB-Out is empty,
    # with what would be sent beside it.
    vc_advert = state["advertised"][VC]
    assert vc_advert["state"] == "Active" and vc_advert["routes"] == []  # passive: waiting for the peer
    assert [r["prefix"] for r in vc_advert["wouldAdvertise"]] == ["172.16.255.1/32", "172.16.255.2/32"]
    # A new configuration with one more table: its topic appears; back to the old one: it is cleared.
    doc = config_doc(server.url)
    doc["speaker"], doc["api"] = daemon.config.speaker.model_dump(), daemon.config.api.model_dump()
    doc["route_tables"].append({"name": "rt-extra", "import_distribution": "rd-vc"})
    config, _ = parse_valid(yaml.safe_dump(doc), "extra.yaml")
    old = daemon.config
    await daemon.apply(config)
    state = await until_retained(server.url, DRG, lambda: tables_of(daemon.routes_json()), 10)
    assert "rt-extra" in state["tables"]
    await daemon.apply(old)
    state = await until_retained(server.url, DRG, lambda: tables_of(daemon.routes_json()), 10)
    assert "rt-extra" not in state["tables"]


async def test_changes_and_events_topics(running: tuple[Daemon, RunningBroker]) -> None:
    daemon, server = running
    async with Collector(server.url, f"drg/{DRG}/#") as seen:
        session_up(daemon)
        keys = prefixes(3)
        sent = time.monotonic()
        announce(daemon, keys)
        arrived = await seen.wait_for(
            lambda t, d: t == f"drg/{DRG}/route-tables/{LB_TABLE}/changes" and d["count"] == 3, 5, after=sent)
        withdraw(daemon, keys[:1])
        await seen.wait_for(lambda t, d: t.endswith(f"{LB_TABLE}/changes") and d["changes"][0]["op"] == "remove", 5)
        await seen.wait_for(lambda t, d: t == f"drg/{DRG}/events" and d["type"] == "session-state"
                            and d["data"]["new"] == "Established", 5)
    changes = [d for _w, t, d, _r in seen.seen if t.endswith(f"{LB_TABLE}/changes")]
    added = changes[0]
    assert (added["complete"], added["missed"], added["table"]) == (True, 0, LB_TABLE)
    assert added["counts"] == {"add": added["count"], "remove": 0, "change": 0}
    assert added["first"] == f"add {added['changes'][0]['rule']['destination']} via {VC}"
    assert {c["op"] for c in added["changes"]} == {"add"}
    assert {c["rule"]["destination"] for c in added["changes"]} == {"10.100.0.0/24", "10.100.1.0/24",
                                                                       "10.100.2.0/24"}
    assert added["changes"][0]["rule"]["nextHop"] == VC and added["changes"][0]["rule"]["asPath"] == [65001]
    assert changes[1]["changes"] == [{"op": "remove", "rule": added["changes"][0]["rule"]}]
    # route-table and advertisement changes have topics of their own; the rest goes to events.
    kinds = {d["type"] for _w, t, d, _r in seen.seen if t == f"drg/{DRG}/events"}
    assert "session-state" in kinds and not kinds & {"route-table-change", "advertisement-change"}
    print(f"\nchange latency in process ({server.kind}): {(arrived - sent) * 1000:.1f} ms")
    assert arrived - sent < 1.0


async def test_broker_restart_gets_the_full_retained_state_again(running: tuple[Daemon, RunningBroker]) -> None:
    daemon, server = running
    session_up(daemon)
    announce(daemon, prefixes(50))
    await until_retained(server.url, DRG, lambda: tables_of(daemon.routes_json()), 10)
    connects = publisher(daemon).stats.connects
    await server.stop()
    announce(daemon, prefixes(50, start=50))  # while the broker is away
    await asyncio.sleep(0.5)
    assert not publisher(daemon).connected
    await server.start()
    restarted = time.monotonic()
    # The restarted broker knew nothing (amqtt keeps nothing; Mosquitto runs without persistence):
    # everything a fresh subscriber reads now was published again after the reconnect.
    state = await until_retained(server.url, DRG, lambda: tables_of(daemon.routes_json()), 20)
    took = time.monotonic() - restarted
    assert len(state["tables"][LB_TABLE]["rules"]) >= 100
    assert state["advertised"] == adverts(daemon)
    await until_retained(server.url, DRG, lambda: without_uptime(daemon.sessions_json()["sessions"]), 10,
                         what="sessions")
    assert publisher(daemon).stats.connects == connects + 1
    print(f"\n{server.kind} restarted: full retained state again after {took:.2f} s")


async def test_stopping_the_daemon_publishes_the_final_session_state(broker: RunningBroker) -> None:
    daemon = make_daemon(config_doc(broker.url))
    await daemon.start()
    assert await publisher(daemon).wait_idle(10)
    state = split_state(await retained(broker.url, f"drg/{DRG}/#"), DRG)
    assert state["sessions"][VC]["state"] == "Active"  # listening for the on-prem router (passive)
    await daemon.stop()
    state = split_state(await retained(broker.url, f"drg/{DRG}/#"), DRG)
    assert state["sessions"][VC]["state"] == "Idle"


# ---- a broker that is down must not slow routing ---------------------------------------------------------


async def test_a_dead_broker_never_holds_routing() -> None:
    """40,000 route changes with nothing at the MQTT URL: every change is routed (the tables end as
    they should) while the publisher is still not connected, and its queue of change messages stays
    within its bound: one merged message per table, whose exact counts cover all 40,000 changes, the
    first and the last of them (nothing dropped). (What readers and MQTT cost in time is measured by
    ``python -m bench --only events``, not here.)"""
    daemon = make_daemon(config_doc(f"mqtt://127.0.0.1:{free_port()}", max_prefixes=50_000))
    await daemon.start()
    pub = publisher(daemon)
    try:
        session_up(daemon)
        keys = prefixes(20_000)
        for i in range(0, len(keys), 100):
            announce(daemon, keys[i:i + 100])
            assert pub.pending_rules <= pub.max_pending_changes
            await asyncio.sleep(0)
        routed = {r["destination"] for r in daemon.engine.route_table(LB_TABLE)["rules"]}
        assert len(routed & {format_key(AFI_IPV4, k) for k in keys}) == 20_000
        for i in range(0, len(keys), 100):
            withdraw(daemon, keys[i:i + 100])
            assert pub.pending_rules <= pub.max_pending_changes
            await asyncio.sleep(0)
        assert not pub.connected
        assert not {r["destination"] for r in daemon.engine.route_table(LB_TABLE)["rules"]} & routed - {
            "192.168.200.1/32"}
        assert (pub.stats.changes_dropped, pub.stats.rules_dropped) == (0, 0)
        queued = {m["table"]: m for m in pub.queued_changes()}
        assert len(queued) == len(pub.queued_changes())  # one message per table
        lb = queued[LB_TABLE]
        assert (lb["count"], lb["counts"], lb["merged"]) == (40_000, {"add": 20_000, "remove": 20_000, "change": 0},
                                                              400)
        first, last = format_key(AFI_IPV4, keys[0]), format_key(AFI_IPV4, keys[-1])
        assert (lb["first"], lb["last"]) == (f"add {first} via {VC}", f"remove {last} via {VC}")
        assert [c["op"] for c in lb["changes"]] == ["add"] * len(lb["changes"]) and not lb["complete"]
        assert lb["changes"][0]["rule"]["destination"] == first
    finally:
        await daemon.stop()


# ---- a burst of 100,000 route changes ------------------------------------------------------------------------


ROUNDS = 50  # x (1,000 announced + 1,000 withdrawn) = 100,000 route changes
PER_ROUND = 1_000
BATCH = 100


async def _burst(daemon: Daemon, warnings: list[DrgEvent]) -> tuple[int, int, int]:
    """Drive 100,000 route changes; returns (rule changes seen on the bus, memory growth between the
    5th and the last round, peak traced memory above the 5th round), checking the publisher's queues
    after every UPDATE and collecting the warning events."""
    pub = publisher(daemon)
    keys = prefixes(PER_ROUND)
    sub = daemon.bus.subscribe()
    rule_changes = 0
    base = peak = 0
    for round_ in range(ROUNDS):
        for keys_op in (announce, withdraw):
            for i in range(0, PER_ROUND, BATCH):
                keys_op(daemon, keys[i:i + BATCH])
                assert pub.pending_rules <= pub.max_pending_changes
                await asyncio.sleep(0)
        while not sub.queue.empty():
            event = sub.queue.get_nowait()
            if event.type == "route-table-change":
                rule_changes += int(event.data["count"])
            elif event.type == "warning":
                warnings.append(event)
        if round_ == 4:
            gc.collect()
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
        peak = max(peak, tracemalloc.get_traced_memory()[1])
    sub.close()
    gc.collect()
    return rule_changes, tracemalloc.get_traced_memory()[0] - base, peak - base


@pytest.mark.parametrize("broker_state", ["up", "down"])
async def test_burst_of_100k_route_changes_stays_bounded(broker: RunningBroker,
                                                         broker_state: str) -> None:
    daemon = make_daemon(config_doc(broker.url, max_prefixes=200_000))
    await daemon.start()
    warnings: list[DrgEvent] = []
    tracemalloc.start()
    try:
        session_up(daemon)
        assert await publisher(daemon).wait_idle(10)
        if broker_state == "down":
            await broker.stop()
        started = time.perf_counter()
        rule_changes, growth, peak = await _burst(daemon, warnings)
        took = time.perf_counter() - started
        announce(daemon, prefixes(PER_ROUND))  # the tables end with 1,000 of the VC's routes
        if broker_state == "down":
            await broker.start()
        tracemalloc.stop()
        pub = publisher(daemon)
        assert rule_changes >= 100_000
        assert pub.stats.max_pending_rules <= pub.max_pending_changes
        assert pub.stats.max_pending_events <= 1_000
        assert growth < 2 * 2**20, f"memory grew by {growth} bytes over 45 rounds"
        assert peak < 32 * 2**20, f"peak {peak} bytes above the 5th round"
        state = await until_retained(broker.url, DRG, lambda: tables_of(daemon.routes_json()), 30)
        assert len(state["tables"][LB_TABLE]["rules"]) == PER_ROUND
        if broker_state == "down":  # the changes waiting for the broker merged: one message per table
            assert pub.stats.changes_dropped == 0
            assert not [e for e in warnings if "dropped" in e.data["summary"]]
            assert pub.stats.max_pending_rules <= MESSAGE_WEIGHT * len(daemon.effective.route_tables)
        print(f"\nburst ({broker.kind}, broker {broker_state}): {rule_changes} rule changes in {took:.2f} s "
              f"(tracemalloc on); memory growth rounds 5-50: {growth / 1024:.0f} KiB, peak above round 5: "
              f"{peak / 2**20:.1f} MiB; change messages published {pub.stats.messages - pub.stats.retained}, "
              f"dropped {pub.stats.changes_dropped}; retained renders {pub.stats.renders}")
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        await daemon.stop()


# ---- TLS -------------------------------------------------------------------------------------------------


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An amqtt broker with a TLS listener and a self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: TLS test not run")
    from amqtt.broker import Broker

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    port = free_port()
    tls = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "ssl": True,
                                            "certfile": str(cert), "keyfile": str(key)}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}})
    await tls.start()
    try:
        yield f"mqtts://127.0.0.1:{port}", cert
    finally:
        await tls.shutdown()


async def _tls_tables(url: str, cert: Path) -> dict[str, Any]:
    from controlplane.events.mqtt import make_client

    out: dict[str, Any] = {}
    async with make_client(parse_mqtt_url(url), tls_ca=str(cert)) as client:
        await client.subscribe(f"drg/{DRG}/route-tables/+", qos=1)
        messages = aiter(client.messages)
        while True:
            try:
                message = await asyncio.wait_for(anext(messages), 1.0)
            except TimeoutError:
                return out
            assert isinstance(message.payload, bytes)
            if message.topic.matches(f"drg/{DRG}/route-tables/+"):  # amqtt: see publish.follow
                out[str(message.topic).rsplit("/", 1)[1]] = json.loads(message.payload)


@pytest.mark.parametrize("trust", ["tls_ca", "tls_insecure", "system CAs only"])
async def test_mqtts(tls_broker: tuple[str, Path], trust: str) -> None:
    url, cert = tls_broker
    doc = config_doc(url)
    if trust == "tls_ca":
        doc["events"]["tls_ca"] = str(cert)
    elif trust == "tls_insecure":
        doc["events"]["tls_insecure"] = True
    daemon = make_daemon(doc)
    await daemon.start()
    sub = daemon.bus.subscribe()
    try:
        if trust == "system CAs only":  # a self-signed certificate: refused, reported, retried
            await asyncio.sleep(1.0)
            assert publisher(daemon).stats.connects == 0 and publisher(daemon).stats.connect_failures >= 1
            events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
            assert any(e.type == "warning" and "unreachable" in e.data["summary"] for e in events)
            assert "certificate" in (publisher(daemon).stats.last_error or "").lower()
            return
        assert await publisher(daemon).wait_idle(10)
        assert await _tls_tables(url, cert) == tables_of(daemon.routes_json())
    finally:
        sub.close()
        await daemon.stop()


# ---- drg events --mqtt -------------------------------------------------------------------------------------


async def _console(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "controlplane", *args, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    return proc.returncode


async def test_drg_events_mqtt_console_script(running: tuple[Daemon, RunningBroker]) -> None:
    daemon, server = running
    assert await publisher(daemon).wait_idle(10)
    proc = await _console("events", "--mqtt", server.url, "--topic", f"drg/{DRG}/route-tables/#", "--json")
    try:
        assert proc.stdout is not None
        lines: dict[str, Any] = {}
        want = tables_of(daemon.routes_json())
        while set(lines) != {f"drg/{DRG}/route-tables/{name}" for name in want}:
            doc = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
            assert set(doc) == {"topic", "payload", "retained"} and doc["retained"] is True
            lines[doc["topic"]] = doc["payload"]
        assert {t.rsplit("/", 1)[1]: p for t, p in lines.items()} == want
        session_up(daemon)
        announce(daemon, prefixes(1, start=7))
        while True:  # a live change, not retained
            doc = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
            if doc["topic"].endswith("/changes"):
                break
        assert not doc["retained"] and doc["payload"]["changes"][0]["rule"]["destination"] == "10.100.7.0/24"
    finally:
        assert await _stop(proc) == 0
    # Without --json: "TOPIC PAYLOAD" lines, every topic under drg/ by default.
    assert await publisher(daemon).wait_idle(10)
    proc = await _console("events", "--mqtt", server.url)
    try:
        assert proc.stdout is not None
        want = tables_of(daemon.routes_json())  # now with 10.100.7.0/24
        printed: dict[str, Any] = {}
        while set(printed) != set(want):
            line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
            topic, _, payload = line.partition(" ")
            assert topic.startswith(f"drg/{DRG}/"), line
            if topic.startswith(f"drg/{DRG}/route-tables/") and topic.count("/") == 3:
                printed[topic.rsplit("/", 1)[1]] = json.loads(payload)
        assert printed == want
    finally:
        assert await _stop(proc) == 0


async def test_drg_events_mqtt_errors() -> None:
    proc = await _console("events", "--mqtt", "mqtt://127.0.0.1")
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"HOST:PORT" in err
    proc = await _console("events", "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3 and b"no MQTT broker answers" in err


async def test_embedded_broker_port_in_use_is_reported(tmp_path: Path) -> None:
    taken = make_broker("embedded", tmp_path)
    await taken.start()
    try:
        doc = config_doc("embedded")
        doc["events"]["embedded_listen"] = f"127.0.0.1:{taken.port}"
        daemon = make_daemon(doc)
        with pytest.raises(OSError, match="embedded MQTT broker"):
            await daemon.start()
        await daemon.stop()
    finally:
        await taken.stop()
