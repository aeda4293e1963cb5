"""The BGP speaker against real ExaBGP 5.0.15 processes on loopback (issue: the BGP speaker).

Each test starts its ExaBGP peers with ``peers.exabgp`` and a :class:`Speaker` on a free port of
127.0.0.1, bounds every wait, and stops every process by PID in a fixture finaliser.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import (
    EndOfRib,
    Event,
    NotificationReceived,
    NotificationSent,
    RouteRefreshReceived,
    State,
    StateChanged,
)
from controlplane.bgp.session import PeerConfig
from controlplane.prefix import AFI_IPV4, AFI_IPV6, format_prefix, parse_prefix
from controlplane.router.router import (
    OCI_HOLD_RANGE,
    OCI_HOLD_RANGE_LABEL,
    OCI_PREFIX_LIMIT_LABEL,
    OCI_PREFIX_LIMIT_RESTART,
)
from controlplane.transport import Speaker
from peers.exabgp import ExaBGPPeer, PeerSpec, Route, pid_running
from tests.support.ports import free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]


class Harness:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.events: list[Event] = []
        self.speaker = Speaker("127.0.0.1", free_port(), self.events.append)
        self.exabgp: list[ExaBGPPeer] = []

    async def peer(self, spec: PeerSpec) -> ExaBGPPeer:
        p = ExaBGPPeer(spec)
        self.exabgp.append(p)
        await p.start(self.workdir)
        return p

    async def until(self, predicate: Callable[[], bool], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            if time.monotonic() > deadline:
                seen = [e for e in self.events if not isinstance(e, EndOfRib)][-15:]
                raise TimeoutError(f"{what} not within {limit} s; last events: {seen}")
            await asyncio.sleep(0.02)

    def state(self, name: str) -> State:
        return self.speaker.neighbors[name].peer.state


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    await harness.speaker.start()
    try:
        yield harness
    finally:
        await harness.speaker.close()
        for p in harness.exabgp:
            await p.stop()
        for p in harness.exabgp:
            for pid in p.pids():
                assert not pid_running(pid), f"process {pid} left behind"


def vc_config(name: str = "vc1", peer_as: int = 65001, *, connect: str = "passive", hold_time: int = 30) -> PeerConfig:
    """The DRG side of an OCI session, as router.peer_config builds it (R55, R58; OCI offers 30 s)."""
    return PeerConfig(
        name=name, local_as=31898, peer_as=peer_as, router_id="127.0.0.1", connect=connect, hold_time=hold_time,
        next_hop_ipv4="192.168.100.1", next_hop_ipv6="::ffff:192.168.100.1", idle_hold_time=0.5,
        connect_retry_time=1.0, hold_range=OCI_HOLD_RANGE, hold_range_label=OCI_HOLD_RANGE_LABEL,
        prefix_limit_restart=OCI_PREFIX_LIMIT_RESTART, prefix_limit_label=OCI_PREFIX_LIMIT_LABEL,
    )


FULL_ROUTES = [
    Route("192.0.2.0/24", next_hop="192.168.100.2", as_path=[65001, 64512], med=100,
          communities=["65001:100", "31898:200"], extended_communities=["target:65001:1"],
          large_communities=["65001:1:2"], origin="egp"),
    Route("198.51.100.0/24", next_hop="192.168.100.2", as_path=[65001], atomic_aggregate=True,
          aggregator="65001:192.0.2.1"),
    Route("2001:db8:1::/48", next_hop="::ffff:192.168.100.2", as_path=[65001], med=50),
]


def k(prefix: str) -> int:
    return parse_prefix(prefix)[1]


async def test_exabgp_connects_in_and_routes_arrive_exactly(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port,
                                 announce=FULL_ROUTES))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    rib = h.speaker.neighbors["vc1"].peer.rib_in.routes
    await h.until(lambda: len(rib[AFI_IPV4]) == 2 and len(rib[AFI_IPV6]) == 1, 10, "3 routes")
    a = rib[AFI_IPV4][k("192.0.2.0/24")]
    assert a.flat_as_path() == [65001, 64512]
    assert a.next_hop == "192.168.100.2" and a.med == 100 and a.origin == 1
    assert sorted(a.communities) == sorted([(65001 << 16) | 100, (31898 << 16) | 200])
    assert a.extended_communities == (bytes.fromhex("0002fde900000001"),)
    assert a.large_communities == ((65001, 1, 2),)
    b = rib[AFI_IPV4][k("198.51.100.0/24")]
    assert b.atomic_aggregate and b.aggregator == (65001, "192.0.2.1") and b.med is None
    c = rib[AFI_IPV6][k("2001:db8:1::/48")]
    assert c.flat_as_path() == [65001] and c.med == 50
    await h.until(lambda: {(e.afi, e.safi) for e in h.events if isinstance(e, EndOfRib)} == {(1, 1), (2, 1)},
                  10, "End-of-RIB for both families")
    # The DRG advertises; ExaBGP reads exactly that (AS path, next hop), then End-of-RIB.
    peer = h.speaker.neighbors["vc1"].peer
    attrs = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    peer.advertise(AFI_IPV4, [k("172.16.255.1/32"), k("172.16.255.2/32")], attrs)
    peer.advertise(AFI_IPV6, [k("2001:db8:ff::/64")], attrs)
    h.speaker.flush("vc1")
    await edge.wait_for(lambda p: {"172.16.255.1/32", "172.16.255.2/32", "2001:db8:ff::/64"} <= set(p.received()), 10)
    got = edge.received()["172.16.255.1/32"]
    assert got["as-path"] == [31898] and got["next-hop"] == "192.168.100.1"
    assert got["origin"] == "igp"
    assert edge.eor_received() >= {"ipv4 unicast", "ipv6 unicast"}
    # Withdrawals both ways.
    peer.withdraw(AFI_IPV4, [k("172.16.255.2/32")])
    h.speaker.flush("vc1")
    await edge.wait_for(lambda p: "172.16.255.2/32" not in p.received(), 10)
    assert "172.16.255.1/32" in edge.received()
    await edge.withdraw("198.51.100.0/24")
    await h.until(lambda: k("198.51.100.0/24") not in rib[AFI_IPV4], 10, "withdrawal from ExaBGP")
    # Run-time announcement from ExaBGP.
    await edge.announce(Route("10.1.0.0/16", next_hop="192.168.100.2", as_path=[65001, 65010]))
    await h.until(lambda: k("10.1.0.0/16") in rib[AFI_IPV4], 10, "run-time announcement")
    assert rib[AFI_IPV4][k("10.1.0.0/16")].flat_as_path() == [65001, 65010]


async def test_speaker_connects_out_to_a_passive_exabgp(h: Harness) -> None:
    port = free_port("127.0.0.3")
    h.speaker.add_neighbor(vc_config("tun1", 65002, connect="active"), "127.0.0.3", port)
    await h.peer(PeerSpec("fw", "127.0.0.3", 65002, 31898, listen_port=port,
                          announce=[Route("172.20.10.0/24", next_hop="169.254.20.2", as_path=[65002])]))
    await h.until(lambda: h.state("tun1") == State.ESTABLISHED, 20, "Established (outgoing)")
    rib = h.speaker.neighbors["tun1"].peer.rib_in.routes
    await h.until(lambda: k("172.20.10.0/24") in rib[AFI_IPV4], 10, "route")
    assert [format_prefix(AFI_IPV4, x) for x in rib[AFI_IPV4]] == ["172.20.10.0/24"]


async def test_wrong_peer_as_gets_bad_peer_as(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(peer_as=65001), "127.0.0.2", 179)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65077, 31898, connect_port=h.speaker.bound_port))
    await edge.wait_for(lambda p: any(n.get("code") == 2 and n.get("subcode") == 2 for n in p.notifications()), 20)
    assert any(isinstance(e, NotificationSent) and (e.code, e.subcode) == (2, 2) for e in h.events)
    assert h.state("vc1") != State.ESTABLISHED


async def test_hold_timer_drops_a_peer_that_stops_sending(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(hold_time=3), "127.0.0.2", 179)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port,
                                 hold_time=3))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    exabgp_pid = edge.pids()[0]
    os.kill(exabgp_pid, signal.SIGSTOP)  # the peer freezes: no more KEEPALIVEs
    try:
        t0 = time.monotonic()
        await h.until(lambda: any(isinstance(e, NotificationSent) and e.code == 4 for e in h.events), 10,
                      "Hold Timer Expired")
        assert time.monotonic() - t0 <= 4.5
        assert h.state("vc1") != State.ESTABLISHED
        assert h.speaker.neighbors["vc1"].peer.last_error == "hold timer expired"
    finally:
        os.kill(exabgp_pid, signal.SIGCONT)


async def test_md5_right_key_establishes(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179, md5_key="s3cret-key")
    await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port, md5="s3cret-key"))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established with MD5")


async def test_md5_wrong_or_missing_key_never_establishes(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179, md5_key="s3cret-key")
    h.speaker.add_neighbor(vc_config("vc2"), "127.0.0.4", 179, md5_key="other-key")
    await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port, md5="wrong-key"))
    await h.peer(PeerSpec("edge2", "127.0.0.4", 65001, 31898, connect_port=h.speaker.bound_port))
    await asyncio.sleep(5)
    assert h.state("vc1") != State.ESTABLISHED and h.state("vc2") != State.ESTABLISHED
    # The kernel dropped the unsigned/mis-signed SYNs: no OPEN ever reached the session.
    assert not any(isinstance(e, StateChanged) and e.new == State.OPEN_SENT for e in h.events)


async def test_unknown_source_is_refused_and_the_session_stays_up(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179)
    await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", h.speaker.bound_port, local_addr=("127.0.0.9", 0)), 5)
    data = await asyncio.wait_for(reader.read(100), 5)
    writer.close()
    assert data[18] == 3 and data[19:21] == b"\x06\x05"  # NOTIFICATION Cease/Connection Rejected
    await asyncio.sleep(0.5)
    assert h.state("vc1") == State.ESTABLISHED


async def test_route_refresh_resends_the_table(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    peer = h.speaker.neighbors["vc1"].peer
    peer.advertise(AFI_IPV4, [k("10.10.1.0/24")], PathAttributes.make(as_path=[31898], next_hop="192.168.100.1"))
    h.speaker.flush("vc1")
    await edge.wait_for(lambda p: "10.10.1.0/24" in p.received(), 10)

    def updates() -> int:
        return sum(1 for e in edge.events() if e.get("type") == "update"
                   and "10.10.1.0/24" in str(e.get("neighbor", {}).get("message", {})))

    before = updates()
    await edge.send("neighbor 127.0.0.1 announce route-refresh ipv4 unicast")
    await h.until(lambda: any(isinstance(e, RouteRefreshReceived) for e in h.events), 10, "ROUTE-REFRESH")
    await edge.wait_for(lambda p: updates() > before, 10)


async def test_shutdown_sends_cease_with_communication(h: Harness) -> None:
    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    h.speaker.stop_peer("vc1", 2, "lab over")
    await edge.wait_for(lambda p: any(n.get("code") == 6 and n.get("subcode") == 2 for n in p.notifications()), 10)
    assert not any(isinstance(e, NotificationReceived) for e in h.events)


async def test_malformed_update_resets_only_that_session(h: Harness) -> None:
    """RFC 4271 s.6 / RFC 7606: a broken UPDATE from one neighbor gets its NOTIFICATION and closes that
    session only; the ExaBGP session next to it stays Established and the process keeps running."""
    from controlplane.bgp.messages import FourOctetAsCapability, Negotiated, Open, encode

    h.speaker.add_neighbor(vc_config(), "127.0.0.2", 179)
    h.speaker.add_neighbor(vc_config("raw", 65009), "127.0.0.5", 179)
    await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", h.speaker.bound_port, local_addr=("127.0.0.5", 0)), 5)
    try:
        open_msg = Open(version=4, my_as=65009, hold_time=30, bgp_identifier="127.0.0.5",
                        capabilities=(FourOctetAsCapability(65009),))
        writer.write(encode(open_msg, Negotiated()) + b"\xff" * 16 + b"\x00\x13\x04")
        await h.until(lambda: h.state("raw") == State.ESTABLISHED, 10, "raw session Established")
        # UPDATE whose Total Path Attribute Length runs past the message: 3/1 Malformed Attribute List.
        body = b"\x00\x00" + b"\x00\x50" + b"\x40\x01\x01\x00"
        writer.write(b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body)
        data = await asyncio.wait_for(reader.read(), 5)  # until the speaker closes the connection
        notifications = [i for i in range(len(data) - 20) if data[i:i + 16] == b"\xff" * 16 and data[i + 18] == 3]
        assert notifications and data[notifications[0] + 19:notifications[0] + 21] == b"\x03\x01"
    finally:
        writer.close()
    await h.until(lambda: h.state("raw") != State.ESTABLISHED, 5, "raw session reset")
    await asyncio.sleep(0.5)
    assert h.state("vc1") == State.ESTABLISHED


async def test_both_sides_dial_and_one_session_survives(h: Harness) -> None:
    """`connect: both` against an ExaBGP that also listens and dials: whatever the race, one session is
    Established and stays up, and any second connection is closed with Cease 6/7 (RFC 4271 s.6.8)."""
    port = free_port("127.0.0.2")
    h.speaker.add_neighbor(vc_config(connect="both"), "127.0.0.2", port)
    edge = await h.peer(PeerSpec("edge", "127.0.0.2", 65001, 31898, connect_port=h.speaker.bound_port,
                                 listen_port=port))
    await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 20, "Established")
    await edge.wait_state("up", 10)
    await asyncio.sleep(3)
    assert h.state("vc1") == State.ESTABLISHED and edge.state() == "up"
    ups = [e for e in h.events if isinstance(e, StateChanged) and e.new == State.ESTABLISHED]
    assert len(ups) == 1  # no flap
    cease = [e for e in h.events if isinstance(e, NotificationSent | NotificationReceived) and e.code == 6]
    assert all(e.subcode == 7 for e in cease)


async def test_connection_collision_over_real_sockets(h: Harness) -> None:
    """RFC 4271 s.6.8, deterministic: the peer (BGP Identifier 127.0.0.2, higher than the DRG's) dials
    in while the DRG's own dial to it is in OpenSent; both OPENs cross. The DRG must close the
    connection it initiated with Cease 6/7 and keep the one the peer initiated."""
    from controlplane.bgp.messages import FourOctetAsCapability, Negotiated, Open, encode

    port = free_port("127.0.0.2")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.2", port))
    server.listen(1)
    server.setblocking(False)
    loop = asyncio.get_running_loop()
    h.speaker.add_neighbor(vc_config(connect="both"), "127.0.0.2", port)
    dialled, _ = await asyncio.wait_for(loop.sock_accept(server), 10)  # the DRG dialled us
    server.close()
    d_reader, d_writer = await asyncio.open_connection(sock=dialled)
    i_reader, i_writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", h.speaker.bound_port, local_addr=("127.0.0.2", 0)), 5)
    open_msg = encode(Open(version=4, my_as=65001, hold_time=30, bgp_identifier="127.0.0.2",
                           capabilities=(FourOctetAsCapability(65001),)), Negotiated())
    keepalive = b"\xff" * 16 + b"\x00\x13\x04"
    try:
        d_writer.write(open_msg)  # the dialled connection reaches OpenConfirm first
        await h.until(lambda: h.state("vc1") == State.OPEN_CONFIRM, 5, "OpenConfirm")
        i_writer.write(open_msg)  # now the peer's own connection presents its OPEN: collision
        data = await asyncio.wait_for(d_reader.read(), 5)  # the DRG closes the connection it dialled
        assert data.endswith(b"\xff" * 16 + b"\x00\x15\x03\x06\x07")  # NOTIFICATION Cease/Collision Resolution
        i_writer.write(keepalive)
        await h.until(lambda: h.state("vc1") == State.ESTABLISHED, 5, "Established on the peer's connection")
        assert h.speaker.neighbors["vc1"].peer._established is not None
        assert not h.speaker.neighbors["vc1"].peer._established.outgoing
        first = await asyncio.wait_for(i_reader.readexactly(19), 5)
        assert first[18] == 1  # the surviving connection carried the DRG's OPEN
    finally:
        d_writer.close()
        i_writer.close()


async def test_attribute_overrunning_its_block_is_withdrawn_over_a_real_socket(h: Harness) -> None:
    """RFC 7606 s.4 on a raw TCP session (peer at 127.0.0.6): a COMMUNITIES attribute whose length runs
    past the attribute block, with the NLRI found from the Total Path Attribute Length, withdraws the
    route it carries and nothing else: no NOTIFICATION, the session stays Established, the reason is
    counted. The NEXT_HOP of the speaker's local socket address (127.0.0.1) is refused the same way."""
    from controlplane.bgp.messages import FourOctetAsCapability, Negotiated, Open, encode

    h.speaker.add_neighbor(vc_config("raw", 65009), "127.0.0.6", 179)
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", h.speaker.bound_port, local_addr=("127.0.0.6", 0)), 5)

    def update(attributes: bytes, nlri: bytes) -> bytes:
        body = b"\x00\x00" + len(attributes).to_bytes(2, "big") + attributes + nlri
        return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body

    good = b"\x40\x01\x01\x00" + b"\x40\x02\x06\x02\x01\x00\x00\xfd\xf1" + b"\x40\x03\x04\x7f\x00\x00\x06"
    try:
        open_msg = Open(version=4, my_as=65009, hold_time=30, bgp_identifier="127.0.0.6",
                        capabilities=(FourOctetAsCapability(65009),))
        writer.write(encode(open_msg, Negotiated()) + b"\xff" * 16 + b"\x00\x13\x04")
        await h.until(lambda: h.state("raw") == State.ESTABLISHED, 10, "raw session Established")
        peer = h.speaker.neighbors["raw"].peer
        writer.write(update(good, b"\x18\x0a\x01\x01" + b"\x18\x0a\x01\x02"))
        await h.until(lambda: peer.rib_in.count(AFI_IPV4) == 2, 5, "two routes installed")
        writer.write(update(good + b"\xc0\x08\x20\x00\x00\x00\x01", b"\x18\x0a\x01\x01"))  # 32 octets claimed, 4 sent
        local_hop = good[:-4] + b"\x7f\x00\x00\x01"  # the speaker's own socket address
        writer.write(update(local_hop, b"\x18\x0a\x01\x02"))
        await h.until(lambda: peer.rib_in.count(AFI_IPV4) == 0, 5, "both withdrawn")
        assert peer.rejected == {"asLoop": 0, "malformed": 1, "nextHop": 1}
        await asyncio.sleep(0.3)
        assert h.state("raw") == State.ESTABLISHED
        assert not [e for e in h.events if isinstance(e, NotificationSent) and e.peer == "raw"]
    finally:
        writer.close()
