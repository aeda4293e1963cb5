"""The sans-IO Peer against the standards of issue 14, with hand-made bytes and an injected clock.

Route semantics checked once per UPDATE (RFC 4271 s6.3 leftmost AS and NEXT_HOP, RFC 7607, RFC 9774,
RFC 5065), their per-reason counters and rate-limited reports; RFC 7606 s.4 through a live session;
the OPEN's BGP Identifier (RFC 6286); enhanced route refresh (RFC 7313) both ways, malformed included.
"""

from __future__ import annotations

import struct

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import (
    EnhancedRouteRefreshCapability,
    FourOctetAsCapability,
    MultiprotocolCapability,
    Negotiated,
    Open,
    RouteRefresh,
    RouteRefreshCapability,
    encode,
)
from controlplane.bgp.outputs import (
    Event,
    NotificationSent,
    RoutesReceived,
    Send,
    State,
    UpdateErrors,
)
from controlplane.bgp.session import Peer
from controlplane.prefix import AFI_IPV4, AFI_IPV6, parse_prefix
from tests.support.bgp import Link, config, decode_all
from tests.test_session_fsm import drg, keys, onprem, up

KEEPALIVE = b"\xff" * 16 + b"\x00\x13\x04"
ORIGIN = b"\x40\x01\x01\x00"
NLRI = b"\x18\x0a\x00\x00"  # 10.0.0.0/24


def path(*asns: int) -> bytes:
    value = struct.pack(f">BB{len(asns)}I", 2, len(asns), *asns) if asns else b""
    return b"\x40\x02" + bytes([len(value)]) + value


def hop(address: str) -> bytes:
    return b"\x40\x03\x04" + bytes(int(part) for part in address.split("."))


def update(attributes: bytes, nlri: bytes = NLRI, withdrawn: bytes = b"") -> bytes:
    body = struct.pack(">H", len(withdrawn)) + withdrawn + struct.pack(">H", len(attributes)) + attributes + nlri
    return b"\xff" * 16 + struct.pack(">HB", 19 + len(body), 2) + body


def send_raw(link: Link, data: bytes) -> None:
    conn = next(c for (side, c) in link.pairs if side == "a")
    link.a.peer.receive_data(conn, data, link.now)
    link.run()


def reports(link: Link) -> list[UpdateErrors]:
    return [e for e in link.a.events if isinstance(e, UpdateErrors)]


def installed(link: Link) -> set[int]:
    return set(link.a.peer.rib_in.routes[AFI_IPV4])


TEN = parse_prefix("10.0.0.0/24")[1]


# ---- route semantics (RFC 4271 s6.3 with RFC 7606) -------------------------------------------------


def test_leftmost_as_not_the_peers_is_withdrawn_and_counted() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))
    assert installed(link) == {TEN}
    send_raw(link, update(ORIGIN + path(65099, 65001) + hop("192.168.100.2")))  # replaces, i.e. withdraws
    assert installed(link) == set() and link.a.peer.state == State.ESTABLISHED
    assert link.a.peer.rejected == {"asLoop": 0, "firstAs": 1}
    assert "leftmost AS 65099, not the peer's AS 65001" in reports(link)[-1].text


def test_empty_as_path_from_an_external_peer_is_withdrawn() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path() + hop("192.168.100.2")))
    assert installed(link) == set() and link.a.peer.rejected["firstAs"] == 1


def test_next_hop_of_the_drgs_oracle_address_is_withdrawn() -> None:
    link = up(a=drg(next_hop_ipv4="192.168.100.1", next_hop_ipv6="::ffff:192.168.100.1"))
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.1")))
    assert installed(link) == set() and link.a.peer.rejected == {"asLoop": 0, "nextHop": 1}
    send_raw(link, update(ORIGIN + path(65001) + hop("10.99.99.99")))  # off the peering subnet: fine
    assert installed(link) == {TEN}


def test_ipv6_next_hop_of_the_drgs_oracle_address_is_withdrawn() -> None:
    own = drg(next_hop_ipv4="192.168.100.1", next_hop_ipv6="::ffff:192.168.100.1")
    link = up(a=own, b=onprem(next_hop_ipv6="::ffff:192.168.100.1"))  # the on-prem side names the DRG's
    link.b.peer.advertise(AFI_IPV6, keys("2001:db8::/48"), PathAttributes.make(as_path=[65001]))
    link.b.peer.flush(link.now)
    link.run()
    assert link.a.peer.rib_in.count(AFI_IPV6) == 0 and link.a.peer.rejected["nextHop"] == 1


def _established_with(addresses: tuple[str, str]) -> tuple[Peer, int]:
    peer = drg()
    peer.start(0.0)
    conn = peer.incoming_connection(0.0, addresses)
    caps = (FourOctetAsCapability(65001), MultiprotocolCapability(1, 1))
    peer.receive_data(conn, encode(Open(4, 65001, 30, "127.0.0.2", caps), Negotiated()) + KEEPALIVE, 0.0)
    assert peer.state == State.ESTABLISHED
    peer.take_actions()
    peer.take_events()
    return peer, conn


def test_next_hop_of_the_local_socket_address_is_withdrawn() -> None:
    peer, conn = _established_with(("127.0.0.1", "127.0.0.9"))
    peer.receive_data(conn, update(ORIGIN + path(65001) + hop("127.0.0.1")), 1.0)
    assert peer.rib_in.count(AFI_IPV4) == 0 and peer.rejected["nextHop"] == 1
    peer.receive_data(conn, update(ORIGIN + path(65001) + hop("127.0.0.9")), 1.0)  # the peer's own: fine
    assert peer.rib_in.count(AFI_IPV4) == 1


def test_local_socket_address_shared_with_the_peer_is_not_rejected() -> None:
    peer, conn = _established_with(("127.0.0.1", "127.0.0.1"))
    peer.receive_data(conn, update(ORIGIN + path(65001) + hop("127.0.0.1")), 1.0)
    assert peer.rib_in.count(AFI_IPV4) == 1 and peer.rejected == {"asLoop": 0}


def test_codec_reasons_are_counted_per_prefix() -> None:
    link = up()
    two = NLRI + b"\x18\x0a\x00\x01"
    send_raw(link, update(ORIGIN + path(65001, 0) + hop("192.168.100.2"), nlri=two))  # RFC 7607
    as_set = b"\x40\x02\x0c" + struct.pack(">BBIBBI", 2, 1, 65001, 1, 1, 7)  # RFC 9774
    send_raw(link, update(ORIGIN + as_set + hop("192.168.100.2")))
    confed = b"\x40\x02\x0c" + struct.pack(">BBIBBI", 3, 1, 64512, 2, 1, 65001)  # RFC 5065
    send_raw(link, update(ORIGIN + confed + hop("192.168.100.2")))
    send_raw(link, update(ORIGIN + path(65001) + hop("224.0.0.1")))
    send_raw(link, update(path(65001) + hop("192.168.100.2")))  # no ORIGIN
    assert link.a.peer.rejected == {"asLoop": 0, "asZero": 2, "asSet": 1, "confedSegment": 1, "nextHop": 1,
                                    "missingAttribute": 1}
    assert installed(link) == set() and link.a.peer.state == State.ESTABLISHED


def test_discarded_attributes_are_counted_and_the_route_installed() -> None:
    link = up()
    local_pref = b"\x40\x05\x04\x00\x00\x00\x64"
    originator = b"\x80\x09\x04\x0a\x00\x00\x01"
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2") + local_pref + originator))
    assert installed(link) == {TEN}
    assert link.a.peer.discarded == {"LOCAL_PREF": 1, "ORIGINATOR_ID": 1}


def test_reports_are_rate_limited_with_a_count_of_the_suppressed() -> None:
    link = up(a=drg(report_interval=10.0))
    for _ in range(5):
        send_raw(link, update(ORIGIN + path(65099) + hop("192.168.100.2")))
    assert len(reports(link)) == 1 and reports(link)[0].suppressed == 0
    link.now += 9.0
    send_raw(link, update(ORIGIN + path(65099) + hop("192.168.100.2")))
    assert len(reports(link)) == 1
    link.now += 1.0
    send_raw(link, update(ORIGIN + path(65001) + hop("0.0.0.0")))
    assert [r.suppressed for r in reports(link)] == [0, 5] and "nextHop" in reports(link)[-1].text
    assert link.a.peer.rejected == {"asLoop": 0, "firstAs": 6, "nextHop": 1}


def test_internal_session_accepts_its_own_next_hop_and_confederation_sequences() -> None:
    """The RPC sessions between daemons are iBGP: both ends may share a router ID, their next hop."""
    a = Peer(config("rpc", 31898, 31898, "10.0.0.1", connect="passive", next_hop_ipv4="10.0.0.1"))
    b = Peer(config("rpc", 31898, 31898, "10.0.0.2", connect="active"))
    link = up(a=a, b=b)
    confed = b"\x40\x02\x06" + struct.pack(">BBI", 3, 1, 64512)
    send_raw(link, update(ORIGIN + confed + hop("10.0.0.1") + b"\x40\x05\x04\x00\x00\x00\x64"))
    assert installed(link) == {TEN} and link.a.peer.rejected == {"asLoop": 0}


# ---- RFC 7606 s.4 through the session -------------------------------------------------------------


def test_attribute_overrunning_the_block_withdraws_and_the_session_stays_up() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))
    overrun = ORIGIN + path(65001) + hop("192.168.100.2") + b"\xc0\x08\x10\x00\x00\x00\x01"
    send_raw(link, update(overrun))
    assert link.a.peer.state == State.ESTABLISHED and installed(link) == set()
    assert link.a.peer.rejected == {"asLoop": 0, "malformed": 1}
    assert not link.notifications("a")


# ---- OPEN: the BGP Identifier (RFC 6286) -------------------------------------------------------------


def _open_result(peer: Peer, bgp_id: str, my_as: int = 65001) -> list[Event]:
    peer.start(0.0)
    conn = peer.incoming_connection(0.0)
    peer.take_actions()
    peer.receive_data(conn, encode(Open(4, my_as, 30, bgp_id, (FourOctetAsCapability(my_as),)), Negotiated()), 0.0)
    return peer.take_events()


def test_identifier_all_ones_is_valid() -> None:
    events = _open_result(drg(), "255.255.255.255")
    assert not [e for e in events if isinstance(e, NotificationSent)]


def test_identifier_equal_to_ours_is_valid_from_an_external_peer() -> None:
    events = _open_result(drg(), "127.0.0.1")  # drg()'s own router ID
    assert not [e for e in events if isinstance(e, NotificationSent)]


def test_identifier_equal_to_ours_from_an_internal_peer_is_2_3() -> None:
    peer = Peer(config("rpc", 31898, 31898, "10.0.0.1", connect="passive"))
    events = _open_result(peer, "10.0.0.1", my_as=31898)
    assert [(e.code, e.subcode) for e in events if isinstance(e, NotificationSent)] == [(2, 3)]


def test_collision_between_equal_identifiers_keeps_the_larger_as_connection() -> None:
    """RFC 6286 s.2.3: the DRG (AS 31898) and a peer (AS 65001) with the same identifier both dial:
    the connection initiated by the peer, the larger AS, survives."""
    link = Link(drg(connect="both"), Peer(config("drg", 65001, 31898, "127.0.0.1", connect="both")))
    link.a.peer.start(link.now)
    link.b.peer.start(link.now)
    link.run()
    link.advance(5.0)
    assert link.a.peer.state == State.ESTABLISHED == link.b.peer.state
    established = link.a.peer._established
    assert established is not None and not established.outgoing
    assert set(link.notifications("a")) <= {(6, 7)}


# ---- enhanced route refresh (RFC 7313) -------------------------------------------------------------


def test_enhanced_route_refresh_is_offered() -> None:
    peer = drg()
    peer.start(0.0)
    peer.incoming_connection(0.0)
    sent = [a.data for a in peer.take_actions() if isinstance(a, Send)]
    first = decode_all(sent[0], Negotiated())[0]
    assert isinstance(first, Open) and EnhancedRouteRefreshCapability() in first.capabilities
    assert RouteRefreshCapability() in first.capabilities


def _refresh(link: Link, subtype: int, afi: int = AFI_IPV4) -> None:
    send_raw(link, encode(RouteRefresh(afi, 1, subtype), Negotiated()))


def test_borr_marks_routes_stale_and_eorr_removes_those_not_refreshed() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2"), nlri=NLRI + b"\x18\x0a\x00\x01"))
    assert len(installed(link)) == 2
    _refresh(link, 1)  # BoRR
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))  # 10.0.0.0/24 again
    before = len(link.a.events)
    _refresh(link, 2)  # EoRR
    assert installed(link) == {TEN}
    gone = [e for e in link.a.events[before:] if isinstance(e, RoutesReceived)]
    assert [(e.afi, e.announced, e.withdrawn) for e in gone] == [(AFI_IPV4, (), (parse_prefix("10.0.1.0/24")[1],))]


def test_eorr_without_borr_and_unknown_subtypes_change_nothing() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))
    _refresh(link, 2)
    _refresh(link, 7)
    _refresh(link, 255)
    assert installed(link) == {TEN} and link.a.peer.state == State.ESTABLISHED and not link.notifications("a")


def test_borr_without_the_capability_is_ignored() -> None:
    link = up(b=onprem(enhanced_route_refresh=False))
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))
    _refresh(link, 1)
    _refresh(link, 2)
    assert installed(link) == {TEN}


def test_plain_refresh_without_the_capability_has_no_markers() -> None:
    link = up(b=onprem(enhanced_route_refresh=False))
    link.a.peer.advertise(AFI_IPV4, keys("10.10.1.0/24"), PathAttributes.make(as_path=[31898]))
    link.a.peer.flush(link.now)
    link.run()
    n = len(link.a.sent)
    assert link.b.peer.request_refresh(AFI_IPV4, link.now)
    link.run()
    resent = [m for chunk in link.a.sent[n:] for m in decode_all(chunk)]
    assert not [m for m in resent if isinstance(m, RouteRefresh)] and len(resent) == 1


def test_borr_of_the_wrong_length_is_7_1_with_the_whole_message() -> None:
    link = up()
    bad = b"\xff" * 16 + struct.pack(">HB", 24, 5) + b"\x00\x01\x01\x01\x00"
    send_raw(link, bad)
    sent = [e for e in link.a.events if isinstance(e, NotificationSent)]
    assert [(e.code, e.subcode, e.data) for e in sent] == [(7, 1, bad)]
    assert link.a.peer.state != State.ESTABLISHED


def test_borr_for_a_family_not_negotiated_is_ignored() -> None:
    link = up()
    send_raw(link, update(ORIGIN + path(65001) + hop("192.168.100.2")))
    _refresh(link, 1, afi=AFI_IPV6 + 23)
    _refresh(link, 2, afi=AFI_IPV6 + 23)
    assert installed(link) == {TEN}
