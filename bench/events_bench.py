"""What event readers cost the routing: 40,000 route changes with no reader, a log, readers and MQTT.

How it works: an in-process :class:`~controlplane.daemon.Daemon` (no control API) runs
examples/transport-mode.yaml, whose loopback table and VCN table import att-vc1's routes. The VC's
session is put Established and 20,000 /24s are announced then withdrawn, 100 per UPDATE, each fed to
``Daemon.bgp_event`` as the speaker would, with the event loop running between UPDATEs (as between
reads from a BGP socket): 40,000 table changes in each of two tables. The time is measured for each
way of reading the events:

* ``no reader, log warning``: nothing reads route events, so none are built;
* ``no reader, log info``: ``drg run``'s default: the log alone (exact counts, first and last change);
* ``reader drains``: a bus subscriber that takes every event and looks at nothing;
* ``reader encodes JSON``: a subscriber that encodes every event as ``drg events --json`` does
  (``/v1/events``: each burst of queued events as one block of JSON lines);
* ``MQTT, broker down``, ``MQTT, Mosquitto`` and ``MQTT, embedded broker``: the publisher, with
  nothing at its URL, with a Mosquitto process (when ``mosquitto`` is installed), or with the embedded
  amqtt broker, whose work runs in a thread of the daemon's own process and counts in its time.

The median of ``--repeat`` runs (at least 7, the ways taking turns) is printed, with each as a ratio to
the default (log info, no reader).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.mqtt import MOSQUITTO, Mosquitto

VC = "att-vc1"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "transport-mode.yaml"
CHANGES = 20_000
BATCH = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(mqtt: str | None, embedded_port: int) -> Any:
    from controlplane.config.validate import parse_valid

    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    doc["speaker"]["listen"] = f"127.0.0.1:{_free_port()}"
    doc["api"]["listen"] = f"127.0.0.1:{_free_port()}"
    doc["events"] = {"mqtt": mqtt, "embedded_listen": f"127.0.0.1:{embedded_port}"}
    vc = next(a for a in doc["attachments"] if a["name"] == VC)
    vc["bgp"]["max_prefixes"] = {"ipv4": 50_000, "ipv6": 500}
    config, _ = parse_valid(yaml.safe_dump(doc, sort_keys=False), "events-bench.yaml")
    return config


def _keys(n: int) -> list[int]:
    from controlplane.prefix import parse_prefix

    return [parse_prefix(f"10.{100 + (i >> 8) % 150}.{i & 255}.0/24")[1] for i in range(n)]


async def _route(daemon: Any, keys: list[int]) -> float:
    """Seconds to announce then withdraw ``keys``, BATCH per UPDATE, yielding to the loop in between."""
    from controlplane.bgp.attributes import PathAttributes
    from controlplane.bgp.outputs import RoutesReceived
    from controlplane.prefix import AFI_IPV4

    attrs = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(0, len(keys), BATCH):
        daemon.bgp_event(RoutesReceived(VC, AFI_IPV4, tuple(keys[i:i + BATCH]), attrs, ()))
        await asyncio.sleep(0)
    for i in range(0, len(keys), BATCH):
        daemon.bgp_event(RoutesReceived(VC, AFI_IPV4, (), None, tuple(keys[i:i + BATCH])))
        await asyncio.sleep(0)
    return loop.time() - started


async def _one(way: str, keys: list[int], urls: dict[str, str]) -> float:
    from controlplane.bgp.outputs import State, StateChanged
    from controlplane.daemon import Daemon

    logging.getLogger("controlplane").setLevel(logging.WARNING if way == "no reader, log warning" else logging.INFO)
    mqtt = {"MQTT, broker down": f"mqtt://127.0.0.1:{_free_port()}", **urls}.get(way)
    daemon = Daemon(_config(mqtt, _free_port()), control=False)
    await daemon.start()
    sub = daemon.bus.subscribe() if way.startswith("reader") else None

    async def read() -> None:  # as /v1/events reads the bus for `drg events --json` (controlplane/control.py)
        assert sub is not None
        while True:
            events = await sub.batch()
            if way == "reader encodes JSON":
                "".join([e.json_text() + "\n" for e in events]).encode()

    task = asyncio.create_task(read()) if sub is not None else None
    try:
        daemon.bgp_event(StateChanged(VC, State.OPEN_CONFIRM, State.ESTABLISHED))
        await asyncio.sleep(0.1)
        return await _route(daemon, keys)
    finally:
        if task is not None and sub is not None:
            task.cancel()
            sub.close()
        await daemon.stop()


WAYS = ("no reader, log warning", "no reader, log info", "reader drains", "reader encodes JSON",
        "MQTT, broker down", "MQTT, Mosquitto", "MQTT, embedded broker")
DEFAULT = "no reader, log info"


async def measure(repeat: int = 7, progress: Callable[[str], None] = lambda _: None) -> dict[str, float]:
    """Median seconds per way of reading the events (see the module docstring)."""
    from controlplane.daemon import LOG_FORMAT
    from controlplane.events.broker import EmbeddedBroker

    # The log as ``drg run`` writes it (daemon.startup_config: format, level), to /dev/null for stderr.
    sink = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - /dev/null; closed below
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    keys = _keys(CHANGES)
    port = _free_port()
    broker = EmbeddedBroker(f"127.0.0.1:{port}")
    await broker.start()
    urls = {"MQTT, embedded broker": f"mqtt://127.0.0.1:{port}"}
    workdir = tempfile.TemporaryDirectory(prefix="events-bench-")
    mosquitto = Mosquitto(_free_port(), Path(workdir.name)) if MOSQUITTO else None
    if mosquitto is not None:
        await mosquitto.start()
        urls["MQTT, Mosquitto"] = mosquitto.url
    ways = [way for way in WAYS if way in urls or not way.startswith("MQTT, ") or way == "MQTT, broker down"]
    runs: dict[str, list[float]] = {way: [] for way in ways}
    try:
        for round_ in range(repeat):
            for way in ways:
                progress(f"  events: {way} (run {round_ + 1}/{repeat})")
                runs[way].append(await _one(way, keys, urls))
    finally:
        await broker.stop()
        if mosquitto is not None:
            await mosquitto.stop()
        workdir.cleanup()
        logging.getLogger().removeHandler(handler)
        sink.close()
    return {way: statistics.median(values) for way, values in runs.items()}


def format_events(medians: dict[str, float]) -> str:
    base = medians[DEFAULT]
    lines = [f"{2 * CHANGES:,} route changes ({CHANGES:,} prefixes announced then withdrawn, {BATCH} per UPDATE), "
             "two importing tables; median:"]
    for way, seconds in medians.items():
        lines.append(f"  {way:24s} {seconds * 1000:8.1f} ms  {seconds / base:5.2f}x")
    return "\n".join(lines)
