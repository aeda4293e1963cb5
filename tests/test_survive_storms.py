"""What the daemon must survive (issue 14): connection storms, a peer killed mid-burst, a peer sending garbage.

Each test runs a real :class:`~controlplane.daemon.Daemon` in this process on loopback with raw-socket
peers (``tests/support/rawpeer.py``); the sender killed with SIGKILL is a process of its own
(``tests/support/burst.py``), stopped by PID. Observations are of the daemon (its sessions, Adj-RIB-In
and route tables, tasks, file descriptors, traced memory) and of what a healthy peer receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import socket
import subprocess
import sys
import time
import tracemalloc

import pytest

from bench.blaster import keepalive, open_message
from bench.fuzz import mutate, random_ops, seeds
from controlplane.bgp.outputs import State
from tests.support.paths import ROOT
from tests.support.rawpeer import RawPeer, running, survive_doc, update

HOLD = 3
OBSERVER_ROUTES = [(172, 16, i, 0) for i in range(10)]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _knock(port: int, local: str, hello: bytes = b"", hold: float = 0.0) -> None:
    """One TCP connection from ``local``: connect, optionally write ``hello``, wait ``hold`` s, close."""
    sock = socket.socket()
    sock.setblocking(False)
    try:
        sock.bind((local, 0))
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        if hello:
            await asyncio.get_running_loop().sock_sendall(sock, hello)
        await asyncio.sleep(hold)
    except OSError:
        pass
    finally:
        sock.close()


async def _settled() -> tuple[int, int, int]:
    """Tasks, file descriptors and traced memory once lingering closes are over (LINGER is 2 s)."""
    await asyncio.sleep(2.5)
    gc.collect()
    return len(asyncio.all_tasks()), fds(), tracemalloc.get_traced_memory()[0]


@pytest.mark.timeout(120)
async def test_connection_storms_leave_nothing_behind_and_the_real_session_comes_up() -> None:
    async with running(survive_doc(2, HOLD)) as run:
        observer = RawPeer("127.0.1.1", run.port, 65001, HOLD)
        real = RawPeer("127.0.1.2", run.port, 65002, HOLD)
        try:
            await observer.establish()
            tracemalloc.start()
            tasks0, fds0, mem0 = await _settled()
            for i in range(1000):  # a known peer connects and disconnects, every other time after its OPEN
                await _knock(run.port, "127.0.1.2", open_message(65002, "127.0.1.2", HOLD) if i % 2 else b"")
            await asyncio.gather(*[_knock(run.port, "127.0.0.99", b"\xff" * 19, 0.3) for _ in range(100)])
            await asyncio.gather(*[_knock(run.port, "127.0.1.2", b"\xff" * 19, 0.3) for _ in range(100)])
            tasks1, fds1, mem1 = await _settled()
            tracemalloc.stop()
            print(f"storms: tasks {tasks0} -> {tasks1}, fds {fds0} -> {fds1}, traced memory "
                  f"{mem0 / 1e6:.2f} -> {mem1 / 1e6:.2f} MB")
            assert tasks1 <= tasks0 and fds1 <= fds0
            assert mem1 - mem0 < 2 * 1024 * 1024  # 2,200 connections: no per-connection residue
            assert run.state("att-vc1") == State.ESTABLISHED
            assert [t.new for t in run.transitions("att-vc1")].count(State.ESTABLISHED) == 1
            for _ in range(50):  # the real peer: refused only while the DRG holds its session down
                with contextlib.suppress(TimeoutError):
                    await real.establish(2.0)
                    break
                await real.close()
                await asyncio.sleep(0.2)
            await run.until(lambda: run.state("att-vc2") == State.ESTABLISHED, 10, "the real session")
            await run.until(lambda: len(real.routes) == 1, 5, "the real session's table")
        finally:
            await observer.close()
            await real.close()


@pytest.mark.timeout(90)
async def test_a_peer_killed_mid_burst_takes_only_its_routes() -> None:
    async with running(survive_doc(2, HOLD)) as run:
        observer = RawPeer("127.0.1.1", run.port, 65001, HOLD)
        proc: subprocess.Popen[bytes] | None = None
        try:
            await observer.establish()
            await observer.send(update(OBSERVER_ROUTES, 65001))
            engine = run.daemon.engine
            await run.until(lambda: engine.received_count("att-vc1") == 10, 5, "the observer's routes")
            table0 = engine.route_table("rt-all")
            log0 = len(observer.log)
            proc = subprocess.Popen([sys.executable, "-m", "tests.support.burst", str(run.port), "127.0.1.2",
                                     "65002", "90000"], cwd=ROOT, stdout=subprocess.DEVNULL)
            await run.until(lambda: engine.received_count("att-vc2") >= 5000, 20, "the burst under way")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            got = engine.received_count("att-vc2")
            await run.until(lambda: run.state("att-vc2") != State.ESTABLISHED, 10, "the killed session down")
            print(f"killed after {got} of 90000 routes")
            assert got < 90000  # it was cut mid-burst
            await run.until(lambda: engine.received_count("att-vc2") == 0, 5, "its routes gone")
            assert engine.route_table("rt-all") == table0  # every other rule as it was
            assert engine.received_count("att-vc1") == 10 and run.state("att-vc1") == State.ESTABLISHED
            assert [t.new for t in run.transitions("att-vc1")].count(State.ESTABLISHED) == 1
            assert {kind for _, kind in observer.log[log0:]} <= {4}  # it was sent KEEPALIVEs only
        finally:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            await observer.close()


async def _garbage(port: int, until: float, rng: random.Random) -> int:
    """Reconnect as the VC at 127.0.1.2 (and knock from an unknown address), writing random bytes and
    mutated messages; the number of messages written."""
    sent = 0
    while time.monotonic() < until:
        junk = [mutate(rng.choice(seeds(sent)), random_ops(rng)) if rng.random() < 0.8 else
                rng.randbytes(rng.randint(1, 200)) for _ in range(20)]
        hello = open_message(65002, "127.0.1.2", HOLD) + keepalive()
        await _knock(port, "127.0.1.2", hello + b"".join(junk), 0.05)
        await _knock(port, "127.0.0.77", b"".join(junk))
        sent += 40
    return sent


@pytest.mark.timeout(60)
async def test_garbage_from_one_peer_moves_nothing_of_another() -> None:
    async with running(survive_doc(2, HOLD)) as run:
        observer = RawPeer("127.0.1.1", run.port, 65001, HOLD)
        try:
            await observer.establish()
            await observer.send(update(OBSERVER_ROUTES, 65001))
            engine = run.daemon.engine
            await run.until(lambda: engine.received_count("att-vc1") == 10, 5, "the observer's routes")
            routes0, table0 = set(observer.routes), engine.route_table("rt-all")
            t0 = time.monotonic()
            storm = asyncio.create_task(_garbage(run.port, t0 + 3 * HOLD, random.Random(14)))
            counts = set()
            while not storm.done():
                counts.add(engine.received_count("att-vc1"))
                await asyncio.sleep(0.02)
            sent = storm.result()
            gaps = observer.keepalive_gaps(t0)
            print(f"garbage: {sent} messages, observer gaps {min(gaps):.2f}-{max(gaps):.2f} s, "
                  f"resets of the garbage session: {len(run.sent('att-vc2'))}")
            assert counts == {10} and engine.route_table("rt-all") == table0 and observer.routes == routes0
            assert run.state("att-vc1") == State.ESTABLISHED and run.sent("att-vc1") == []
            assert [t.new for t in run.transitions("att-vc1")].count(State.ESTABLISHED) == 1
            # Its KEEPALIVEs kept the cadence: one every hold/3 s, never near the hold time.
            assert len(gaps) >= 3 * HOLD - 2 and max(gaps) < HOLD / 3 + 1.0 < HOLD
            assert run.sent("att-vc2")  # the garbage was answered with NOTIFICATIONs
        finally:
            await observer.close()
