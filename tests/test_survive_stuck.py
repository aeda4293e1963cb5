"""A peer that stops reading (issue 14): backpressure, coalescing, and RFC 9687's Send Hold Timer.

The sans-IO tests drive ``send_blocked``/``send_resumed`` on a Peer over the in-memory link. The real
one runs a :class:`~controlplane.daemon.Daemon` on loopback with three raw-socket VCs: one that reads
(the observer), one whose receive buffer is tiny and never read (its TCP window closes) but which keeps
sending KEEPALIVEs and floods ROUTE-REFRESH requests (each would cost a full table of output), and a
route table whose static routes are replaced every few tens of milliseconds by ``Daemon.apply``.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import Update
from controlplane.bgp.outputs import State
from controlplane.bgp.session import Peer
from controlplane.prefix import AFI_IPV4, parse_prefix
from controlplane.transport import WRITE_HIGH
from tests.support.bgp import Link, config, decode_all
from tests.support.rawpeer import RawPeer, flipped, message, running, survive_doc

HOLD = 3


def _up() -> tuple[Link, int]:
    link = Link(Peer(config("vc1", 31898, 65001, "127.0.0.1", connect="passive", hold_time=HOLD)),
                Peer(config("drg", 65001, 31898, "127.0.0.2", connect="active", hold_time=HOLD)))
    link.a.peer.start(0.0)
    link.b.peer.start(0.0)
    link.run()
    conn = link.a.peer._established
    assert conn is not None and link.b.peer.state == State.ESTABLISHED
    return link, conn.id


def test_blocked_session_coalesces_its_updates_and_sends_them_on_resume() -> None:
    link, conn = _up()
    key = parse_prefix("10.1.0.0/16")[1]
    link.a.peer.send_blocked(conn, link.now)
    before = len(link.a.sent)
    for med in range(100):  # the route changes a hundred times while the peer does not read
        link.a.peer.advertise(AFI_IPV4, [key], PathAttributes.make(as_path=[31898], next_hop="192.0.2.1", med=med))
        link.a.peer.flush(link.now)
    link.run()
    assert len(link.a.sent) == before  # nothing queued
    link.a.peer.send_resumed(conn, link.now)
    link.run()
    updates = [m for m in decode_all(b"".join(link.a.sent[before:])) if isinstance(m, Update)]
    assert len(updates) == 1 and updates[0].nlri == (key,)
    assert updates[0].attributes is not None and updates[0].attributes.med == 99  # the last state only
    assert link.b.peer.rib_in.routes[AFI_IPV4][key].med == 99


def test_send_hold_timer_closes_a_session_that_keeps_receiving_keepalives() -> None:
    """The peer still sends KEEPALIVEs (our Hold Timer keeps restarting), but takes nothing: after the
    hold time the SendHoldTimer sends NOTIFICATION 8/0 and drops the connection (RFC 9687)."""
    link, conn = _up()
    link.a.peer.send_blocked(conn, link.now)
    link.advance(HOLD - 0.5)
    assert link.a.peer.state == State.ESTABLISHED
    link.advance(1.0)
    assert (8, 0) in link.notifications("a")
    assert link.a.peer.state != State.ESTABLISHED
    assert link.a.peer.last_error is not None and "send hold timer" in link.a.peer.last_error


def test_resume_stops_the_send_hold_timer() -> None:
    link, conn = _up()
    link.a.peer.send_blocked(conn, link.now)
    link.advance(HOLD - 1)
    link.a.peer.send_resumed(conn, link.now)
    link.advance(3 * HOLD)
    assert link.a.peer.state == State.ESTABLISHED and link.notifications("a") == []


@pytest.mark.timeout(60)
async def test_a_peer_that_stops_reading_costs_bounded_memory_and_ends_by_send_hold_timer() -> None:
    doc = survive_doc(3, HOLD, 0)
    designs = [flipped(doc, flip) for flip in (0, 1)]
    async with running(doc) as run:
        observer = RawPeer("127.0.1.1", run.port, 65001, HOLD)
        stuck = RawPeer("127.0.1.2", run.port, 65002, HOLD, read=False)
        try:
            await observer.establish()
            await stuck.establish()
            await run.until(lambda: run.state("att-vc2") == State.ESTABLISHED, 5, "stuck peer Established")
            await run.until(lambda: len(observer.routes) == 101, 5, "the observer's 101 routes")
            transport = next(iter(run.daemon.speaker.neighbors["att-vc2"].transports.values()))
            stats = {"refreshes": 0, "flips": 0, "buffer": 0, "observer_updates": 0}
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]

            async def flood() -> None:  # each ROUTE-REFRESH asks for the whole table again
                refresh = message(5, b"\x00\x01\x00\x01") * 100
                while run.state("att-vc2") == State.ESTABLISHED:
                    await stuck.send(refresh)
                    stats["refreshes"] += 100
                    await asyncio.sleep(0.002)

            async def churn() -> None:  # the exported table changes constantly
                while run.state("att-vc2") == State.ESTABLISHED:
                    await run.daemon.apply(designs[(stats["flips"] + 1) % 2])
                    stats["flips"] += 1
                    await asyncio.sleep(0.02)

            tasks = [asyncio.create_task(flood()), asyncio.create_task(churn())]
            t0 = time.monotonic()
            updates_before = sum(1 for _, kind in observer.log if kind == 2)
            while run.state("att-vc2") == State.ESTABLISHED and time.monotonic() - t0 < 6 * HOLD + 10:
                stats["buffer"] = max(stats["buffer"], transport.get_write_buffer_size())
                await asyncio.sleep(0.05)
            grown = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            await asyncio.gather(*tasks)
            stats["observer_updates"] = sum(1 for _, kind in observer.log if kind == 2) - updates_before
            print(f"stuck peer: {stats}, traced memory growth {grown / 1e6:.1f} MB")
            # The stuck session ended by RFC 9687's timer, with its NOTIFICATION attempted.
            assert run.state("att-vc2") != State.ESTABLISHED
            assert run.sent("att-vc2") == [(8, 0)]
            # Memory: what the daemon buffered for it stayed at the high-water mark plus one table (~0.5 KB
            # a copy), though the peer asked for a table per ROUTE-REFRESH, thousands of times.
            assert stats["buffer"] <= WRITE_HIGH + 64 * 1024
            assert stats["refreshes"] * 400 > 5 * WRITE_HIGH  # what the requests would have queued
            assert grown < 16 * 1024 * 1024
            # The observer: Established throughout, its updates kept coming, its keepalive cadence held.
            states = [t.new for t in run.transitions("att-vc1")]
            assert states[-1] == State.ESTABLISHED and states.count(State.ESTABLISHED) == 1
            assert stats["observer_updates"] >= stats["flips"] > 3
            gaps = observer.keepalive_gaps(t0)
            assert gaps and max(gaps) < HOLD, max(gaps)
            await run.until(lambda: len(observer.routes) == 101, 5, "the observer's table after the churn")
        finally:
            await observer.close()
            await stuck.close()
