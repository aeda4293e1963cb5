"""MQTT events of the running DRG with real ExaBGP on-prem peers, against real brokers.

Like tests/test_e2e_lab.py (with the same helpers of ``tests/support/lab.py``), each test runs the
daemon in-process on the TransportMode example with free loopback ports and one ExaBGP process per
``onprem`` entry, with ``events.mqtt`` pointing at a broker of ``tests/support/mqtt.py`` (the
embedded one always, Mosquitto when installed). A fresh subscriber must read retained route tables
equal to ``drg routes --json`` (through the real console script), sessions and advertisements equal
to the daemon's; a route an ExaBGP peer announces at run time must arrive on
``route-tables/<name>/changes`` within a second (measured); a broker restarted mid-run must get the
whole retained state again, and while it is down the announcements still reach the route tables at
once (measured). Last, ``drg lab`` itself, which uses the embedded broker when the file sets none.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from peers.exabgp import Route, pid_running
from tests.support.lab import SESSIONS, Running, all_up, drg_cli, golden, lab_file, start, stop
from tests.support.mqtt import (
    Collector,
    RunningBroker,
    retained,
    split_state,
    tables_of,
    until_retained,
    without_uptime,
)
from tests.support.paths import ROOT
from tests.support.ports import free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

DRG = "drg1"


def with_mqtt(url: str | None) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["events"] = {"mqtt": url, "embedded_listen": f"127.0.0.1:{free_port()}"}
    return edit


async def lab(broker_url: str, tmp: Path) -> Running:
    run = await start(lab_file("transport-mode", tmp, with_mqtt(broker_url)), tmp)
    try:
        await all_up(run)
        want = tables_of(golden("transport-mode")["routes"])
        await run.until(lambda: tables_of(run.drg.route_tables()) == want, 10, "golden tables")
    except BaseException:
        await stop(run)
        raise
    return run


def adverts(run: Running) -> dict[str, Any]:
    return {name: run.drg.advertised(name) for name in SESSIONS}


def sessions(run: Running) -> dict[str, Any]:
    return without_uptime(run.drg.sessions()["sessions"])


async def prefix_in_tables(run: Running, prefix: str, limit: float) -> float:
    """perf_counter() when ``prefix`` is in some route table of the daemon (polled every 2 ms)."""
    deadline = time.perf_counter() + limit
    while True:
        if any(r["destination"] == prefix for t in run.drg.route_tables()["routeTables"] for r in t["rules"]):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{prefix} not in the route tables within {limit} s")
        await asyncio.sleep(0.002)


async def test_retained_state_equals_drg_routes_and_changes_arrive_within_a_second(
        broker: RunningBroker, tmp_path: Path) -> None:
    run = await lab(broker.url, tmp_path)
    try:
        out = await asyncio.to_thread(drg_cli, "routes", "--json", "--api", run.api)
        assert out.returncode == 0, out.stderr
        cli_tables = tables_of(json.loads(out.stdout))
        state = await until_retained(broker.url, DRG, lambda: cli_tables, 10)
        assert state["tables"] == cli_tables
        await until_retained(broker.url, DRG, lambda: sessions(run), 10, what="sessions")
        state = split_state(await retained(broker.url, f"drg/{DRG}/#"), DRG)
        assert {name: s["state"] for name, s in state["sessions"].items()} == dict.fromkeys(SESSIONS, "Established")
        assert state["advertised"] == adverts(run)
        # Run-time announcements by the edge router: each must show up as a change within 1 s.
        latencies = []
        async with Collector(broker.url, f"drg/{DRG}/route-tables/+/changes") as seen:
            for i in range(5):
                prefix = f"192.168.{210 + i}.0/24"
                sent = time.monotonic()
                await run.lab["edge"].announce(Route(prefix, next_hop="192.168.100.2", as_path=[65001]))

                def added(_topic: str, doc: Any, prefix: str = prefix) -> bool:
                    return any(c["op"] == "add" and c["rule"]["destination"] == prefix for c in doc["changes"])

                arrived = await seen.wait_for(added, 5, after=sent)
                latencies.append(arrived - sent)
        print(f"\n{broker.kind}: ExaBGP announcement -> change message: "
              + ", ".join(f"{x * 1000:.0f}" for x in latencies) + f" ms (median "
              f"{statistics.median(latencies) * 1000:.0f} ms)")
        assert max(latencies) < 1.0, latencies
        # ... and the retained tables follow.
        await until_retained(broker.url, DRG, lambda: tables_of(run.drg.route_tables()), 10)
    finally:
        await stop(run)


async def test_broker_restarted_mid_run_gets_the_full_retained_state(
        broker: RunningBroker, tmp_path: Path) -> None:
    run = await lab(broker.url, tmp_path)
    try:
        await until_retained(broker.url, DRG, lambda: tables_of(run.drg.route_tables()), 10)
        await until_retained(broker.url, DRG, lambda: sessions(run), 10, what="sessions")
        publisher = run.drg.daemon.mqtt.publisher if run.drg.daemon.mqtt else None
        assert publisher is not None and publisher.stats.connects == 1
        edge = run.lab["edge"]
        # Route processing with the broker up, then with it stopped: ExaBGP announcement -> route table.
        sent = time.perf_counter()
        await edge.announce(Route("192.168.220.0/24", next_hop="192.168.100.2", as_path=[65001]))
        up = await prefix_in_tables(run, "192.168.220.0/24", 5) - sent
        await broker.stop()
        down = []
        for i in range(3):
            prefix = f"192.168.{221 + i}.0/24"
            sent = time.perf_counter()
            await edge.announce(Route(prefix, next_hop="192.168.100.2", as_path=[65001]))
            down.append(await prefix_in_tables(run, prefix, 5) - sent)
        print(f"\n{broker.kind}: ExaBGP announcement -> DRG route table: broker up {up * 1000:.0f} ms; "
              f"broker stopped " + ", ".join(f"{x * 1000:.0f}" for x in down) + " ms")
        assert max(down) < 1.0, down
        for _ in range(300):  # publishing to the stopped broker makes the publisher notice (bounded: 15 s)
            if not publisher.connected:
                break
            await asyncio.sleep(0.05)
        assert not publisher.connected
        await asyncio.sleep(1.0)
        await broker.start()
        restarted = time.monotonic()
        state = await until_retained(broker.url, DRG, lambda: tables_of(run.drg.route_tables()), 20)
        took = time.monotonic() - restarted
        assert all(any(r["destination"] == f"192.168.{n}.0/24" for t in state["tables"].values() for r in t["rules"])
                   for n in (220, 221, 222, 223))
        state = await until_retained(broker.url, DRG, lambda: sessions(run), 10, what="sessions")
        assert state["advertised"] == adverts(run)
        assert publisher.stats.connects == 2
        print(f"{broker.kind} restarted: full retained state again {took:.2f} s later")
    finally:
        await stop(run)


async def test_drg_lab_uses_the_embedded_broker(tmp_path: Path) -> None:
    """``drg lab FILE`` with ``events.mqtt: null``: a subscriber of the embedded broker reads the tables."""
    path = lab_file("transport-mode", tmp_path, with_mqtt(None))
    listen = yaml.safe_load(path.read_text())["events"]["embedded_listen"]
    url = f"mqtt://{listen}"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "controlplane", "lab", str(path),
                                                "--log-level", "warning", cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        banner = b""
        while b"lab is running" not in banner:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, f"drg lab ended: {banner.decode()}"
            banner += line
        want = tables_of(golden("transport-mode")["routes"])
        deadline = time.monotonic() + 30
        while True:
            state = split_state(await retained(url, f"drg/{DRG}/#"), DRG)
            if state["tables"] == want and {s["state"] for s in state["sessions"].values()} == {"Established"}:
                break
            assert time.monotonic() < deadline, f"retained state of drg lab: {sorted(state['tables'])}"
            await asyncio.sleep(0.5)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.communicate(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0
    assert not pid_running(proc.pid)
