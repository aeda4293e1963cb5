"""Route-dump benchmark: `drg routes TABLE --json` (and the text form) of a 1,000,000-rule table.

How it works: one process runs a :class:`~controlplane.daemon.Daemon` with its control API on free
loopback ports, for the whole-DRG bench's design (``bench.daemon_receiver.bench_config``: one VC whose
routes five tables import), and announces N /24s into its engine directly (no BGP: this measures the
dump, not the ingest). A probe task on the daemon's event loop wakes every millisecond and records
the longest gap beyond that (the longest event-loop step) and the process's peak RSS. Then:

* ``drg routes rt-0 --json > /dev/null`` and ``drg routes rt-0 > /dev/null`` run as subprocesses
  (the console script, ``python -m controlplane``), timed from process start to exit, each as a ratio
  to the anchor: ``birdc show route > /dev/null`` of a BIRD 2 holding as many /24s
  (``bench.bird.BirdTable``, best of 3, measured in the same run);
* the web console's route pages (``console/pages.py``, on the daemon's loop as its handler runs them):
  the first page (reading the table's keys), the page at offset 900,000, a CIDR filter and a text
  filter, then the first page again after one route changed (the keys read again);
* an MQTT publisher (the daemon's own ``MqttPublisher``) connects to an amqtt broker in a process of
  its own (``--broker-in-process``: in a thread of this one, as ``events.mqtt: embedded`` runs) and
  publishes the retained state, the 1M-rule table included, until it is idle.

For each, the seconds, the longest loop step and the RSS growth over the idle daemon are printed.
``python -m bench --only dump`` or ``python -m bench.dump_bench [--routes N]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import yaml

from bench.bird import BirdTable
from bench.daemon_receiver import bench_config
from bench.summary import SUMMARY
from controlplane.config.validate import parse_valid
from controlplane.console.pages import RulePages
from controlplane.daemon import Daemon
from controlplane.events.broker import EmbeddedBroker
from controlplane.events.mqtt import MqttPublisher
from controlplane.prefix import AFI_IPV4
from tests.support.ports import free_port

TABLE = "rt-0"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@dataclass
class Probe:
    """The longest event-loop step since reset - every callback the loop runs is timed (wall clock,
    and this thread's CPU time, which a busy shared machine does not inflate) - and the peak RSS."""

    wall: float = 0.0
    cpu: float = 0.0
    peak: int = 0

    def reset(self) -> None:
        self.wall, self.cpu, self.peak = 0.0, 0.0, rss()

    def install(self) -> None:
        run_step = asyncio.events.Handle._run
        probe = self

        def timed(handle: asyncio.events.Handle) -> None:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                run_step(handle)
            finally:
                probe.wall = max(probe.wall, time.perf_counter() - wall)
                probe.cpu = max(probe.cpu, time.thread_time() - cpu)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.peak = max(self.peak, rss())


async def measured(probe: Probe, what: str, action: Callable[[], Awaitable[Any]],
                   anchor: float | None) -> tuple[float, float]:
    """Run ``action``; print and return (seconds, the longest event-loop step meanwhile)."""
    base = rss()
    probe.reset()
    start = time.perf_counter()
    await action()
    seconds = time.perf_counter() - start
    ratio = f" ({seconds / anchor:4.2f}x BIRD)" if anchor else ""
    print(f"{what:<44} {seconds:7.2f} s{ratio}   longest loop step {probe.wall * 1000:6.1f} ms "
          f"({probe.cpu * 1000:5.1f} ms CPU)   "
          f"RSS growth {(probe.peak - base) / 2**20:7.1f} MiB", flush=True)
    return seconds, probe.wall


async def bird_dump(routes: int) -> float | None:
    """``birdc show route > /dev/null`` of BIRD holding ``routes`` /24s: the anchor (None without BIRD)."""
    try:
        async with BirdTable(routes) as bird:
            seconds = min([await bird.dump_seconds() for _ in range(3)])
    except (RuntimeError, OSError) as exc:
        print(f"BIRD anchor unavailable: {exc}", flush=True)
        return None
    print(f"{'birdc show route > /dev/null (BIRD 2)':<44} {seconds:7.2f} s   (anchor, best of 3)", flush=True)
    return seconds


async def cli(api: str, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "controlplane", "routes", TABLE, *args,
                                                "--api", api, stdout=subprocess.DEVNULL)
    if await proc.wait() != 0:
        raise RuntimeError(f"drg routes {TABLE} {' '.join(args)} failed")


async def console_pages(probe: Probe, daemon: Daemon, routes: int) -> None:
    """The console's pages of the table: each kind once, 100 rules, as ``/console/api/routes`` asks."""
    pages = RulePages(daemon)

    async def page(text: str, offset: int) -> None:
        doc = await pages.page(TABLE, None, text, offset, 100)
        if not doc["rules"] or not doc["fresh"]:
            raise RuntimeError(f"console page {text!r} at {offset}: {len(doc['rules'])} rules, fresh {doc['fresh']}")
        await asyncio.sleep(0)  # the step that computed the page ends here: the probe times it

    steps = []
    for what, text, offset in (("first page", "", 0), (f"page at offset {routes * 9 // 10:,}", "", routes * 9 // 10),
                               ("filter 64.1.0.0/16", "64.1.0.0/16", 0), ("filter 64.1 (text)", "64.1", 0)):
        steps.append((await measured(probe, f"console: {what}", partial(page, text, offset), None))[1])
    daemon.engine.announce("vc", AFI_IPV4, [(((65 << 24) + 256) << 8) | 24], [65001])
    await asyncio.sleep(1.0)  # past the duty window of the table's last reading (DUTY x its cost)
    steps.append((await measured(probe, "console: first page after a route change", partial(page, "", 0), None))[1])
    SUMMARY.add(f"console route pages of {routes:,} rules, longest event-loop step", f"{max(steps) * 1000:.0f} ms",
                goal="<= 50 ms", met=max(steps) <= 0.05)


async def publish(daemon: Daemon, url: str) -> None:
    publisher = MqttPublisher(daemon, url, daemon.config.drg.name)
    await publisher.start()
    try:
        if not await publisher.wait_idle(600):
            raise RuntimeError(f"the MQTT publisher did not finish: {publisher.stats}")
    finally:
        await publisher.stop(final_state=False)


async def broker_process(listen: str) -> asyncio.subprocess.Process:
    code = ("import asyncio, sys; from controlplane.events.broker import EmbeddedBroker\n"
            "async def main():\n    b = EmbeddedBroker(sys.argv[1]); await b.start(); print('up', flush=True)\n"
            "    await asyncio.Event().wait()\nasyncio.run(main())")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, listen, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    await proc.stdout.readline()
    return proc


async def run(routes: int, broker_in_process: bool) -> None:
    host, port = "127.0.0.1", free_port()
    doc = bench_config(host, port, 31898, "127.0.0.2", 65001)
    doc["api"]["listen"] = f"{host}:{free_port()}"
    # "vc", not "att-vc": a million rules of "att-vc" are 270 MB of JSON, over MQTT's 256 MiB (not sent)
    doc["attachments"][-1]["name"] = "vc"
    for table in doc["route_tables"][1:]:  # one table of the VC's routes: the one dumped and published
        table["import_distribution"] = "rd-vcn"
    config, _ = parse_valid(yaml.safe_dump(doc), "bench")
    daemon = Daemon(config, control=True)
    await daemon.start()
    probe = Probe()
    probe.install()
    task = asyncio.create_task(probe.run())
    try:
        keys = [(((64 << 24) + (i << 8)) << 8) | 24 for i in range(routes)]
        daemon.engine.announce("vc", AFI_IPV4, keys, [65001])
        del keys
        print(f"{routes:,} rules in {TABLE}; daemon RSS {rss() / 2**20:.0f} MiB", flush=True)
        api = daemon.config.api.listen
        anchor = await bird_dump(routes)
        for what, args in (("--json", ("--json",)), ("text", ())):
            seconds, step = await measured(probe, f"drg routes {TABLE} {' '.join(args)}".rstrip() + " > /dev/null",
                                           partial(cli, api, *args), anchor)
            SUMMARY.add(f"drg routes of {routes:,} rules, {what}, end to end", f"{seconds:.2f} s",
                        f"{seconds / anchor:.2f}x birdc show route" if anchor else "", "<= 2 s", seconds <= 2.0)
            SUMMARY.add("  longest event-loop step meanwhile", f"{step * 1000:.0f} ms", goal="<= 50 ms",
                        met=step <= 0.05)
        await console_pages(probe, daemon, routes)
        listen = f"{host}:{free_port()}"
        if broker_in_process:
            broker = EmbeddedBroker(listen)
            await broker.start()
            try:
                await measured(probe, "MQTT retained state (broker in-process)", lambda: publish(daemon, broker.url),
                               None)
            finally:
                await broker.stop()
        else:
            proc = await broker_process(listen)
            try:
                seconds, step = await measured(probe, "MQTT retained state (broker process)",
                                               lambda: publish(daemon, f"mqtt://{listen}"), None)
                SUMMARY.add(f"retained MQTT table of {routes:,} rules: longest loop step", f"{step * 1000:.0f} ms",
                            goal="<= 50 ms", met=step <= 0.05)
            finally:
                proc.kill()
                await proc.wait()
    finally:
        task.cancel()
        await daemon.stop()
    print(f"peak RSS of the bench process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dump_bench", description=__doc__.split("\n")[0])
    p.add_argument("--routes", type=int, default=1_000_000)
    p.add_argument("--broker-in-process", action="store_true", help="the amqtt broker in a thread of the daemon")
    args = p.parse_args(argv)
    asyncio.run(run(args.routes, args.broker_in_process))
    return 0


if __name__ == "__main__":
    sys.exit(main())
