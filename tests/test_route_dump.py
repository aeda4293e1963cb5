"""The streamed route dump: exactly the old documents and text, in chunks, through the daemon and MQTT.

``engine/dump.py`` and ``render_dump.py`` must give byte for byte what ``json.dumps`` (each style the
product uses) and ``render.routes`` give of the whole document: checked on every example design
(VCN, VC, IPSec, loopbacks, IPv6, hub transit, RPC-learned rules with networkDistance and drgPath,
multi-DRG), on a synthetic table with static, blackhole, conflict, ECMP and AS_SET rules, with chunks
small enough that bulk and per-rule-set chunks mix. Then ``drg routes`` through a real control API
(the CLI as a process) and the retained MQTT table rendered in slices with paho's framing of big
payloads. No timings here: ``bench/dump_bench.py`` measures.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from controlplane import render
from controlplane.config.effective import build_effective
from controlplane.config.validate import parse_valid
from controlplane.daemon import Daemon
from controlplane.engine import dump
from controlplane.engine.drgs import Drgs, drgs_from_files
from controlplane.engine.dump import COMPACT, DEFAULT, INDENTED, iter_json, iter_table_json
from controlplane.engine.engine import RouteEngine
from controlplane.events import mqtt_client
from controlplane.prefix import AFI_IPV4, AFI_IPV6, format_prefix, format_prefixes, make_key
from controlplane.render_dump import iter_text
from tests.support.factory import config, engine, keys
from tests.support.mqtt import RunningBroker, tables_of, until_retained
from tests.support.paths import EXAMPLES, ROOT
from tests.test_mqtt_publish import DRG, announce, config_doc, make_daemon, prefixes, session_up
from tests.test_routing_rules import hub, up

EXAMPLE_FILES = [("transport-mode.yaml", "learned-transport-mode.yaml"),
                 ("all-traffic.yaml", "learned-all-traffic.yaml"),
                 ("dual-stack.yaml", "learned-dual-stack.yaml"),
                 ("hub-firewall.yaml", "learned-hub-firewall.yaml"),
                 ("two-regions.yaml", "learned-two-regions.yaml")]
STYLES = [DEFAULT, COMPACT, INDENTED]


@pytest.fixture(params=[None, 3], ids=["chunk-default", "chunk-3"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.param is not None:
        monkeypatch.setattr(dump, "CHUNK", request.param)
    yield


def assert_same(drgs: Drgs, table: str | None = None, attachment: str | None = None, drg: str | None = None) -> None:
    plan = drgs.route_plan(table, attachment, drg)
    doc = plan.document()
    assert doc == drgs.routes(table, attachment, drg)
    for style in STYLES:
        assert "".join(iter_json(plan, style)) == style.dumps(doc)
    assert "".join(iter_text(plan)) == render.routes(doc)


@pytest.mark.parametrize(("config", "learned"), EXAMPLE_FILES)
def test_examples_dump_exactly_as_before(config: str, learned: str, chunk: None) -> None:
    drgs = drgs_from_files(EXAMPLES / config, EXAMPLES / learned)
    assert_same(drgs)
    for name, eng in drgs.engines.items():
        for t in eng.config.route_tables:
            assert_same(drgs, t.name, drg=name)
            one = "".join(iter_table_json(eng, t.name, COMPACT))
            assert one == COMPACT.dumps(eng.route_table(t.name))
    if "two-regions" in config:  # RPC-learned rules: networkDistance and drgPath, and their text columns
        text = "".join(iter_text(drgs.route_plan()))
        assert "DRG PATH" in text and '"drgPath"' in "".join(iter_json(drgs.route_plan(), DEFAULT))


def synthetic() -> RouteEngine:
    """rt-hub with ECMP: static and blackhole rules, conflicts, ECMP sets, AS_SETs, IPv6, many keys."""
    raw = hub(ecmp=True)
    raw["route_tables"][0]["static_routes"] = [{"destination": "172.20.0.0/16", "next_hop": "v1"},
                                               {"destination": "10.77.0.0/24", "next_hop": "v-gone"},
                                               {"destination": "64.0.5.0/24", "next_hop": "v1"}]
    e = engine(raw)
    up(e)
    for name in ("t1", "t2"):
        e.announce(name, AFI_IPV4, keys("172.21.0.0/16", "172.20.0.0/16"), [65002])
    e.announce("vc2", AFI_IPV4, keys("172.22.0.0/16", "10.77.0.0/24"), [65001, [65010, 65011]])
    bulk = [make_key(AFI_IPV4, (64 << 24) + (i << 8), 24) for i in range(2000)]
    e.announce("vc1", AFI_IPV4, bulk[:1500], [65001])
    e.announce("vc2", AFI_IPV4, bulk[1000:], [65001, 65003])  # conflicts over 1000..1499
    e.announce("vc1", AFI_IPV4, bulk[1700:1800], [65001, 65009, [1, 2]])
    six = [make_key(AFI_IPV6, (0x2001_0db8 << 96) + (i << 64), 64) for i in range(50)]
    e.announce("vc1", AFI_IPV6, six, [65001])
    return e


def test_every_rule_shape_dumps_exactly_as_before(chunk: None) -> None:
    e = synthetic()
    drgs = Drgs({"drg1": e}, False)
    statuses = render.routes(drgs.routes("rt-hub"))
    assert all(s in statuses for s in ("BLACKHOLE", "conflict", "active (ECMP)", "{1,2}", "2001:db8::/64"))
    assert_same(drgs)
    assert_same(drgs, "rt-hub")
    assert_same(drgs, attachment="vc1")


def test_a_dump_follows_changes_and_a_new_configuration_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a snapshot: a destination withdrawn mid-dump has no rules, a new configuration's names and
    flags show from the next chunk on, and the JSON stays whole."""
    monkeypatch.setattr(dump, "CHUNK", 100)
    e = synthetic()
    pieces = iter_json(Drgs({"drg1": e}, False).route_plan("rt-hub"), DEFAULT)
    head = next(pieces) + next(pieces) + next(pieces)  # the skeleton, "[", the first chunk
    gone = [make_key(AFI_IPV4, (64 << 24) + (i << 8), 24) for i in range(1500, 1900)]
    e.withdraw("vc2", AFI_IPV4, gone)
    e.withdraw("vc1", AFI_IPV4, gone)
    raw = hub(ecmp=False)
    raw["route_tables"][0]["static_routes"] = [{"destination": "172.20.0.0/16", "next_hop": "v1"}]
    e.apply_config(build_effective(config(raw)))
    rules = json.loads(head + "".join(pieces))["routeTables"][0]["rules"]
    gone_text = set(format_prefixes(AFI_IPV4, gone))
    assert not [r for r in rules if r["destination"] in gone_text]
    assert not [r for r in rules[100:] if r["isEcmp"] or r["isBlackhole"]]  # ECMP off, no blackhole now


def test_bulk_prefix_formatting_is_format_prefix() -> None:
    rng = random.Random(13)
    v4 = [make_key(AFI_IPV4, rng.getrandbits(32), n) for n in range(33)] + [make_key(AFI_IPV4, 0xFFFFFFFF, 32)]
    v6 = [make_key(AFI_IPV6, rng.getrandbits(128), n) for n in (0, 1, 48, 64, 127, 128)]
    assert format_prefixes(AFI_IPV4, v4) == [format_prefix(AFI_IPV4, k) for k in v4]
    assert format_prefixes(AFI_IPV6, v6) == [format_prefix(AFI_IPV6, k) for k in v6]
    assert format_prefixes(AFI_IPV4, []) == []


# ---- through the daemon -------------------------------------------------------------------------------


@pytest.fixture
async def daemon_with_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    monkeypatch.setattr(dump, "CHUNK", 64)  # many chunks, each written and awaited on its own
    config, _warnings = parse_valid(yaml.safe_dump(config_doc(None), sort_keys=False), "test.yaml")
    daemon = Daemon(config, control=True)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "controlplane", *args], capture_output=True, timeout=60,
                          cwd=ROOT, check=False)


async def test_drg_routes_through_the_daemon_prints_exactly_as_before(daemon_with_api: Daemon) -> None:
    daemon = daemon_with_api
    session_up(daemon)
    announce(daemon, prefixes(1000))
    api = daemon.config.api.listen
    for table in (None, "att-vc1-lb-rt"):
        doc = daemon.routes_json(table)
        where = [table] if table else []
        out = await asyncio.to_thread(cli, "routes", *where, "--json", "--api", api)
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode() == json.dumps(doc, indent=2) + "\n"
        out = await asyncio.to_thread(cli, "routes", *where, "--api", api)
        assert out.stdout.decode() == render.routes(doc)
    out = await asyncio.to_thread(cli, "routes", "no-such-table", "--api", api)
    assert out.returncode == 1 and b"no-such-table" in out.stderr


async def test_the_api_body_is_json_dumps_of_the_document(daemon_with_api: Daemon) -> None:
    daemon = daemon_with_api
    session_up(daemon)
    announce(daemon, prefixes(500))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{daemon.config.api.listen}/v1/routes") as response:
            assert response.status == 200
            assert await response.text() == json.dumps(daemon.routes_json())
        async with http.get(f"http://{daemon.config.api.listen}/v1/routes?format=xml") as response:
            assert response.status == 400


async def test_offline_drg_routes_prints_exactly_as_before(tmp_path: Path) -> None:
    files = [str(EXAMPLES / "two-regions.yaml"), "--learned", str(EXAMPLES / "learned-two-regions.yaml")]
    doc = drgs_from_files(EXAMPLES / "two-regions.yaml", EXAMPLES / "learned-two-regions.yaml").routes()
    out = await asyncio.to_thread(cli, "routes", "--json", "--config", *files)
    assert out.stdout.decode() == json.dumps(doc, indent=2) + "\n"
    out = await asyncio.to_thread(cli, "routes", "--config", *files)
    assert out.stdout.decode() == render.routes(doc)


# ---- the retained MQTT table ------------------------------------------------------------------------------


async def test_the_retained_table_rendered_in_slices_is_drg_routes(broker: RunningBroker,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of one chunk each, and every payload over 1 KB rendered into a memory map and framed for
    paho instead of copied (then given back to the system)."""
    monkeypatch.setattr(dump, "CHUNK", 50)
    monkeypatch.setattr("controlplane.events.mqtt_publisher.SLICE", 0.0)
    monkeypatch.setattr(mqtt_client, "LARGE_PAYLOAD", 1000)
    monkeypatch.setattr("controlplane.events.mqtt_publisher.LARGE_PAYLOAD", 1000)
    released: list[int] = []
    release = mqtt_client.MappedPayload.release

    async def counted(self: mqtt_client.MappedPayload, step: int = mqtt_client.RELEASE_STEP) -> None:
        released.append(len(self))
        await release(self, 4096)

    monkeypatch.setattr(mqtt_client.MappedPayload, "release", counted)
    daemon = make_daemon(config_doc(broker.url))
    await daemon.start()
    try:
        session_up(daemon)
        announce(daemon, prefixes(1500))
        state = await until_retained(broker.url, DRG, lambda: tables_of(daemon.routes_json()), 20)
        assert len(state["tables"]["att-vc1-lb-rt"]["rules"]) >= 1500
        assert released and max(released) > 1500 * 200  # the tables went through maps, each released
    finally:
        await daemon.stop()


def test_a_mapped_payload_keeps_what_fits_and_counts_the_rest() -> None:
    payload = mqtt_client.MappedPayload(10)
    payload.write(b"abcd")
    payload.write(bytearray(b"efg"))
    assert (len(payload), bytes(payload.view()), bytes(payload)) == (7, b"abcdefg", b"")  # paho sees its length
    payload.write(b"hijk")
    assert len(payload) == 11
    with pytest.raises(ValueError, match="11 bytes written, 10 kept"):
        payload.view()
    asyncio.run(payload.release(4))
    assert len(payload) == 0


async def test_a_table_over_mqtts_size_limit_is_cleared_with_a_warning(broker: RunningBroker,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """paho refuses a payload over 256 MiB; the publisher clears the topic and says why, and goes on
    (the big table rendered into a memory map that keeps no more than the limit)."""
    monkeypatch.setattr("controlplane.events.mqtt_publisher.MQTT_MAX_PAYLOAD", 20_000)
    monkeypatch.setattr("controlplane.events.mqtt_publisher.LARGE_PAYLOAD", 1000)
    daemon = make_daemon(config_doc(broker.url))
    warnings = daemon.subscribe()
    await daemon.start()
    try:
        session_up(daemon)
        announce(daemon, prefixes(300))
        small = {n: t for n, t in tables_of(daemon.routes_json()).items() if len(json.dumps(t)) < 19_000}
        state = await until_retained(broker.url, DRG, lambda: small, 20)
        assert "att-vc1-lb-rt" not in state["tables"]
        async with asyncio.timeout(10):
            async for event in warnings:
                if event.type == "warning" and "att-vc1-lb-rt" in str(event.data.get("topic")):
                    break
    finally:
        warnings.close()
        await daemon.stop()
