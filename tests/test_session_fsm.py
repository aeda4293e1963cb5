"""The sans-IO session (RFC 4271 s.8 FSM) driven by an injected clock: no sockets, no sleeping."""

from __future__ import annotations

from typing import Unpack

import pytest

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.capabilities import Capability
from controlplane.bgp.messages import Negotiated, Notification, Open, RouteRefresh, Update, encode
from controlplane.bgp.outputs import (
    Close,
    EndOfRib,
    Event,
    NotificationReceived,
    NotificationSent,
    PeerWarning,
    PrefixLimitExceeded,
    RouteRefreshReceived,
    RoutesReceived,
    Send,
    State,
    StateChanged,
    UpdateErrors,
)
from controlplane.bgp.session import Peer
from controlplane.prefix import AFI_IPV4, AFI_IPV6, parse_prefix
from controlplane.router.router import (
    OCI_HOLD_RANGE,
    OCI_HOLD_RANGE_LABEL,
    OCI_PREFIX_LIMIT_LABEL,
    OCI_PREFIX_LIMIT_RESTART,
)
from tests.support.bgp import Link, PeerOptions, config, decode_all, split_messages

KEEPALIVE = b"\xff" * 16 + b"\x00\x13\x04"

# The DRG side runs with what router.peer_config passes for an OCI session (R55, R58), offering
# OCI's default hold time of 30 s; the on-prem side offers 30 s as well.
OCI = PeerOptions(hold_time=30, hold_range=OCI_HOLD_RANGE, hold_range_label=OCI_HOLD_RANGE_LABEL,
                  prefix_limit_restart=OCI_PREFIX_LIMIT_RESTART, prefix_limit_label=OCI_PREFIX_LIMIT_LABEL)


def drg(**kw: Unpack[PeerOptions]) -> Peer:
    options = PeerOptions(connect="passive", **OCI)
    options.update(kw)
    return Peer(config("vc1", 31898, 65001, "127.0.0.1", **options))


def onprem(**kw: Unpack[PeerOptions]) -> Peer:
    kw.setdefault("connect", "active")
    kw.setdefault("hold_time", 30)
    return Peer(config("drg", 65001, 31898, "127.0.0.2", **kw))


def up(a: Peer | None = None, b: Peer | None = None) -> Link:
    link = Link(a or drg(), b or onprem())
    link.a.peer.start(link.now)
    link.b.peer.start(link.now)
    link.run()
    return link


def keys(*prefixes: str) -> list[int]:
    return [parse_prefix(p)[1] for p in prefixes]


def test_session_establishes_both_ways() -> None:
    link = up()
    assert link.a.peer.state == State.ESTABLISHED
    assert link.b.peer.state == State.ESTABLISHED
    assert link.states("a") == [State.ACTIVE, State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED]
    assert link.states("b") == [State.CONNECT, State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED]
    assert link.a.peer.negotiated == Negotiated(asn4=True, extended_message=True,
                                                families=frozenset({(1, 1), (2, 1)}), ibgp=False)
    assert link.b.peer.negotiated == link.a.peer.negotiated
    # End-of-RIB for both families right after the (empty) initial table (RFC 4724).
    eors = {(e.afi, e.safi) for e in link.b.events if isinstance(e, EndOfRib)}
    assert eors == {(1, 1), (2, 1)}


def test_open_carries_capabilities_and_oci_hold_time() -> None:
    link = up()
    first = decode_all(link.a.sent[0], Negotiated())[0]
    assert isinstance(first, Open)
    assert first.hold_time == 30 and first.my_as == 31898 and first.bgp_identifier == "127.0.0.1"
    names = {type(c).__name__ for c in first.capabilities}
    assert {"MultiprotocolCapability", "RouteRefreshCapability", "FourOctetAsCapability",
            "ExtendedMessageCapability", "GracefulRestartCapability"} <= names


def test_hold_time_is_the_lower_offer_and_keepalives_every_third() -> None:
    link = up(b=onprem(hold_time=9))
    sent_before = len(link.a.sent)
    link.advance(3.0)
    # hold 9 -> keepalive every 3 s from each side, and the session stays up
    assert link.a.sent[sent_before:].count(KEEPALIVE) == 1
    link.advance(30.0)
    assert link.a.peer.state == State.ESTABLISHED
    assert PeerWarning("vc1", "negotiated hold time 9 s is outside OCI's 18-180 s (R55)") in link.a.events


def test_hold_timer_expiry_drops_a_silent_peer() -> None:
    link = up()
    link.cut = True  # the on-prem side goes silent: nothing reaches the DRG any more
    link.advance(29.0)
    assert link.a.peer.state == State.ESTABLISHED
    link.advance(1.5)
    assert (4, 0) in link.notifications("a")
    assert link.a.peer.state in (State.IDLE, State.ACTIVE)
    assert link.a.peer.last_error == "hold timer expired"


def test_hold_time_zero_means_no_keepalives() -> None:
    link = up(a=drg(hold_time=0))
    n = len(link.a.sent)
    link.advance(600.0)
    assert link.a.peer.state == State.ESTABLISHED
    assert link.a.sent[n:] == []


def test_wrong_peer_as_gets_bad_peer_as() -> None:
    link = up(b=Peer(config("drg", 65099, 31898, "127.0.0.2", connect="active")))
    assert (2, 2) in link.notifications("a")
    assert link.a.peer.state != State.ESTABLISHED
    assert any(isinstance(e, NotificationReceived) and (e.code, e.subcode) == (2, 2) for e in link.b.events)


def _raw_open(my_as: int = 65001, hold: int = 30, bgp_id: str = "127.0.0.2", version: int = 4,
              caps: tuple[Capability, ...] = ()) -> bytes:
    return encode(Open(version=version, my_as=my_as, hold_time=hold, bgp_identifier=bgp_id,
                       capabilities=caps), Negotiated())


def _feed(peer: Peer, data: bytes) -> tuple[int, list[Event]]:
    conn = peer.incoming_connection(0.0)
    peer.take_actions()
    peer.receive_data(conn, data, 0.0)
    return conn, peer.take_events()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_raw_open(hold=1), (2, 6)),
        (_raw_open(hold=2), (2, 6)),
        (_raw_open(my_as=0), (2, 2)),
        (_raw_open(bgp_id="0.0.0.0"), (2, 3)),
        (_raw_open(version=3), (2, 1)),
        (KEEPALIVE, (5, 1)),  # RFC 6608: unexpected message in OpenSent
        (b"\x00" * 16 + b"\x00\x13\x04", (1, 1)),  # bad marker
        (b"\xff" * 16 + b"\x00\x12\x04", (1, 2)),  # length < 19
        (b"\xff" * 16 + b"\x00\x13\x09", (1, 3)),  # unknown type
        (b"\xff" * 16 + b"\x00\x14\x04\x00", (1, 2)),  # KEEPALIVE must be 19 bytes
    ],
)
def test_open_sent_errors_send_the_rfc_notification(data: bytes, expected: tuple[int, int]) -> None:
    peer = drg()
    peer.start(0.0)
    peer.take_actions()
    _, events = _feed(peer, data)
    sent = [(e.code, e.subcode) for e in events if isinstance(e, NotificationSent)]
    assert sent == [expected]
    assert peer.state != State.ESTABLISHED


def test_unsupported_version_carries_our_version() -> None:
    peer = drg()
    peer.start(0.0)
    peer.take_actions()
    conn = peer.incoming_connection(0.0)
    peer.take_actions()
    peer.receive_data(conn, _raw_open(version=5), 0.0)
    sends = [a for a in peer.take_actions() if isinstance(a, Send)]
    note = decode_all(sends[0].data, Negotiated())[0]
    assert note == Notification(2, 1, b"\x00\x04")


def test_as_trans_with_four_octet_capability_is_accepted() -> None:
    from controlplane.bgp.messages import FourOctetAsCapability

    peer = Peer(config("vc1", 31898, 4200000001, "127.0.0.1"))
    peer.start(0.0)
    _, events = _feed(peer, _raw_open(my_as=23456, caps=(FourOctetAsCapability(4200000001),)))
    assert not [e for e in events if isinstance(e, NotificationSent)]
    assert peer.state == State.OPEN_CONFIRM


def test_four_octet_as_zero_is_bad_peer_as() -> None:
    from controlplane.bgp.messages import FourOctetAsCapability

    peer = drg()
    peer.start(0.0)
    _, events = _feed(peer, _raw_open(my_as=23456, caps=(FourOctetAsCapability(0),)))
    assert [(e.code, e.subcode) for e in events if isinstance(e, NotificationSent)] == [(2, 2)]


def test_update_in_open_confirm_is_fsm_error() -> None:
    peer = drg()
    peer.start(0.0)
    conn, _ = _feed(peer, _raw_open())
    assert peer.state == State.OPEN_CONFIRM
    peer.receive_data(conn, encode(Update(), Negotiated()), 0.0)
    sent = [(e.code, e.subcode) for e in peer.take_events() if isinstance(e, NotificationSent)]
    assert sent == [(5, 2)]


def test_open_in_established_is_fsm_error() -> None:
    link = up()
    a_conns = [c for (s, c) in link.pairs if s == "a"]
    conn = a_conns[0]
    link.a.peer.receive_data(conn, _raw_open(), link.now)
    link.run()
    assert (5, 3) in link.notifications("a")


def test_notification_is_never_answered() -> None:
    link = up()
    a_conn = next(c for (s, c) in link.pairs if s == "a")
    before = len(link.a.sent)
    link.a.peer.receive_data(a_conn, encode(Notification(6, 2, b"\x03bye"), Negotiated()), link.now)
    link.run()
    assert link.a.sent[before:] == []  # nothing sent back
    received = [e for e in link.a.events if isinstance(e, NotificationReceived)]
    assert received[-1].text == "Cease/Administrative Shutdown: 'bye'"
    assert link.a.peer.state != State.ESTABLISHED


def test_administrative_shutdown_sends_rfc9003_communication() -> None:
    link = up()
    link.a.peer.stop(link.now, 2, "maintenance window")
    link.run()
    got = [e for e in link.b.events if isinstance(e, NotificationReceived)]
    assert (got[-1].code, got[-1].subcode) == (6, 2)
    assert got[-1].data == bytes([18]) + b"maintenance window"
    assert link.a.peer.state == State.IDLE


def test_incoming_connection_rejected_when_peer_only_dials() -> None:
    peer = Peer(config("tun1", 31898, 65002, "127.0.0.1", connect="active"))
    peer.start(0.0)
    peer.take_actions()
    peer.incoming_connection(0.0)
    actions = peer.take_actions()
    assert isinstance(actions[0], Send)
    note = decode_all(actions[0].data, Negotiated())[0]
    assert note == Notification(6, 5, b"")
    assert isinstance(actions[1], Close)


def test_connection_collision_keeps_the_higher_identifier_side() -> None:
    """RFC 4271 s.6.8: both sides dial; the connection opened by the higher BGP Identifier survives."""
    a = Peer(config("vc1", 31898, 65001, "127.0.0.1", connect="both"))
    b = Peer(config("drg", 65001, 31898, "127.0.0.2", connect="both"))
    link = Link(a, b)
    a.start(0.0)
    b.start(0.0)
    # Hold back: both dial before either OPEN is processed.
    link.run()
    assert a.state == State.ESTABLISHED and b.state == State.ESTABLISHED
    assert (6, 7) in link.notifications("a") + link.notifications("b")
    # b (127.0.0.2) has the higher identifier: the surviving connection is the one b dialled.
    survivors = [(s, c) for (s, c) in link.pairs]
    assert len(survivors) == 2  # one connection, seen from both sides
    b_conn = next(c for (s, c) in survivors if s == "b")
    assert b._connections[b_conn].outgoing


def test_routes_flow_with_end_of_rib_and_withdrawals() -> None:
    link = up()
    attrs = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    link.a.peer.advertise(AFI_IPV4, keys("172.16.255.1/32", "172.16.255.2/32"), attrs)
    link.a.peer.advertise(AFI_IPV6, keys("2001:db8::/48"), attrs)
    link.a.peer.flush(link.now)
    link.run()
    got = link.b.peer.rib_in.routes
    assert set(got[AFI_IPV4]) == set(keys("172.16.255.1/32", "172.16.255.2/32"))
    assert set(got[AFI_IPV6]) == set(keys("2001:db8::/48"))
    assert got[AFI_IPV4][keys("172.16.255.1/32")[0]].flat_as_path() == [31898]
    link.a.peer.withdraw(AFI_IPV4, keys("172.16.255.2/32"))
    link.a.peer.flush(link.now)
    link.run()
    assert set(got[AFI_IPV4]) == set(keys("172.16.255.1/32"))


def test_no_churn_for_unchanged_advertisements() -> None:
    link = up()
    attrs = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    link.a.peer.advertise(AFI_IPV4, keys("10.10.1.0/24"), attrs)
    link.a.peer.flush(link.now)
    link.run()
    n = len(link.a.sent)
    same = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    link.a.peer.advertise(AFI_IPV4, keys("10.10.1.0/24"), same)
    link.a.peer.withdraw(AFI_IPV4, keys("10.99.0.0/16"))  # never advertised
    link.a.peer.flush(link.now)
    link.run()
    assert link.a.sent[n:] == []


def test_initial_table_then_end_of_rib_on_establishment() -> None:
    a, b = drg(), onprem()
    attrs = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    a.advertise(AFI_IPV4, keys("10.10.1.0/24"), attrs)
    link = up(a, b)
    kinds = [type(e).__name__ for e in link.b.events if isinstance(e, RoutesReceived | EndOfRib)]
    assert kinds.index("RoutesReceived") < kinds.index("EndOfRib")


def test_route_refresh_resends_the_table() -> None:
    link = up()
    attrs = PathAttributes.make(as_path=[31898], next_hop="192.168.100.1")
    link.a.peer.advertise(AFI_IPV4, keys("10.10.1.0/24"), attrs)
    link.a.peer.flush(link.now)
    link.run()
    n, m = len(link.a.sent), len(link.b.sent)
    assert link.b.peer.request_refresh(AFI_IPV4, link.now) is True  # a announced the capability
    link.run()
    assert [msg for chunk in link.b.sent[m:] for msg in decode_all(chunk)] == [RouteRefresh(AFI_IPV4, 1, 0)]
    assert link.a.events[-1] == RouteRefreshReceived("vc1", AFI_IPV4, 1)
    # a sends its Adj-RIB-Out for the family again: exactly the one route, same attributes.
    resent = [msg for chunk in link.a.sent[n:] for msg in decode_all(chunk)]
    # RFC 7313: both offered enhanced route refresh, so the table comes between BoRR and EoRR.
    assert resent == [RouteRefresh(AFI_IPV4, 1, 1), Update(attributes=attrs, nlri=tuple(keys("10.10.1.0/24"))),
                      RouteRefresh(AFI_IPV4, 1, 2)]


def test_prefix_limit_sends_cease_1_and_holds_down_30s() -> None:
    """R58: first prefix over the limit -> Cease 6/1 with AFI/SAFI/limit, routes gone, back after 30 s."""
    link = up(a=drg(max_prefixes={AFI_IPV4: 2}))
    attrs = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"), attrs)
    link.b.peer.flush(link.now)
    link.run()
    assert any(isinstance(e, PrefixLimitExceeded) and e.limit == 2 for e in link.a.events)
    assert (6, 1) in link.notifications("a")
    got = [e for e in link.b.events if isinstance(e, NotificationReceived)][-1]
    assert got.data == b"\x00\x01\x01\x00\x00\x00\x02"
    assert link.a.peer.rib_in.count(AFI_IPV4) == 0
    assert link.a.peer.last_error == "prefix limit 2 exceeded (R58)"
    link.advance(29.0)
    assert link.a.peer.state != State.ESTABLISHED
    link.advance(40.0)
    # it came back up, and was cut again because the peer still sends too many
    assert link.notifications("a").count((6, 1)) >= 2


def test_treat_as_withdraw_removes_routes() -> None:
    """RFC 7606: an UPDATE with a malformed ORIGIN withdraws its prefixes instead of resetting."""
    link = up()
    attrs = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("10.0.0.0/24"), attrs)
    link.b.peer.flush(link.now)
    link.run()
    assert link.a.peer.rib_in.count(AFI_IPV4) == 1
    # Hand-made UPDATE: ORIGIN value 7 (invalid), AS_PATH [65001], NEXT_HOP, NLRI 10.0.0.0/24.
    attrs_raw = (
        b"\x40\x01\x01\x07"
        + b"\x40\x02\x06\x02\x01\x00\x00\xfd\xe9"
        + b"\x40\x03\x04\xc0\xa8\x64\x02"
    )
    body = b"\x00\x00" + len(attrs_raw).to_bytes(2, "big") + attrs_raw + b"\x18\x0a\x00\x00"
    msg = b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    a_conn = next(c for (s, c) in link.pairs if s == "a")
    link.a.peer.receive_data(a_conn, msg, link.now)
    link.run()
    assert link.a.peer.state == State.ESTABLISHED
    assert link.a.peer.rib_in.count(AFI_IPV4) == 0
    assert any(isinstance(e, UpdateErrors) and "ORIGIN: undefined value 7" in e.text for e in link.a.events)
    assert link.a.peer.rejected == {"asLoop": 0, "malformed": 1}


def test_own_as_in_path_is_not_installed_and_counted() -> None:
    """RFC 4271 s9.1.2: a real router echoes the DRG's routes back with path 65001 31898; the DRG
    drops them (an earlier route for the prefix is replaced, i.e. withdrawn) and counts them."""
    link = up()
    clean = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("192.168.200.1/32", "172.16.255.1/32"), clean)
    link.b.peer.flush(link.now)
    link.run()
    assert link.a.peer.rib_in.count(AFI_IPV4) == 2
    echo = PathAttributes.make(as_path=[65001, 31898], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("172.16.255.1/32", "172.16.255.2/32"), echo)
    link.b.peer.advertise(AFI_IPV6, keys("2001:db8::/48"), PathAttributes.make(as_path=[65001, 7, 31898],
                                                                               next_hop="192.168.100.2"))
    link.b.peer.flush(link.now)
    link.run()
    assert link.a.peer.state == State.ESTABLISHED
    assert set(link.a.peer.rib_in.routes[AFI_IPV4]) == set(keys("192.168.200.1/32"))
    assert link.a.peer.rib_in.count(AFI_IPV6) == 0
    assert link.a.peer.rejected == {"asLoop": 3}
    last = [e for e in link.a.events if isinstance(e, RoutesReceived)][-2:]
    assert {(e.afi, e.announced, e.withdrawn) for e in last} == {
        (AFI_IPV4, (), tuple(keys("172.16.255.1/32", "172.16.255.2/32"))),
        (AFI_IPV6, (), tuple(keys("2001:db8::/48")))}
    warnings = [e for e in link.a.events if isinstance(e, UpdateErrors) and "9.1.2" in e.text]
    assert len(warnings) == 1 and warnings[0].suppressed == 0  # said once per report interval, counted always


def test_bytes_split_anywhere_are_reassembled() -> None:
    peer = drg()
    peer.start(0.0)
    conn = peer.incoming_connection(0.0)
    data = _raw_open() + KEEPALIVE
    for i in range(len(data)):
        peer.receive_data(conn, data[i : i + 1], 0.0)
    assert peer.state == State.ESTABLISHED
    assert [type(m).__name__ for m in decode_all(b"".join(
        a.data for a in peer.take_actions() if isinstance(a, Send)), Negotiated())][:2] == [
        "Open", "Keepalive"]


def test_state_events_name_rfc_states() -> None:
    link = up()
    names = [e.new.value for e in link.a.events if isinstance(e, StateChanged)]
    assert names[-1] == "Established"
    assert all(n in {"Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established"} for n in names)
    assert split_messages(KEEPALIVE) == [(4, b"")]


def test_incoming_connection_refused_while_holding_down() -> None:
    """R58: after Cease 6/1 the session stays down for 30 s, even when the peer dials in at once."""
    peer = drg(max_prefixes={AFI_IPV4: 1})
    link = up(a=peer)
    attrs = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("10.0.0.0/24", "10.0.1.0/24"), attrs)
    link.b.peer.flush(link.now)
    link.run()
    assert (6, 1) in link.notifications("a")
    link.advance(5.0)  # the on-prem side redials after its 1 s idle hold
    assert peer.state == State.IDLE
    assert link.notifications("a").count((6, 5)) >= 1  # Connection Rejected while holding down


def test_core_defaults_are_neutral() -> None:
    """Without the operator's parameters the core offers RFC 4271's suggested 90 s and warns about
    no hold time; a prefix-limit reset names no rule."""
    link = up(a=Peer(config("vc1", 31898, 65001, "127.0.0.1", max_prefixes={AFI_IPV4: 1})), b=onprem(hold_time=9))
    first = decode_all(link.a.sent[0], Negotiated())[0]
    assert isinstance(first, Open) and first.hold_time == 90
    assert not [e for e in link.a.events if isinstance(e, PeerWarning)]
    attrs = PathAttributes.make(as_path=[65001], next_hop="192.168.100.2")
    link.b.peer.advertise(AFI_IPV4, keys("10.0.0.0/24", "10.0.1.0/24"), attrs)
    link.b.peer.flush(link.now)
    link.run()
    assert link.a.peer.last_error == "prefix limit 1 exceeded"


def test_hold_range_warning_without_a_label() -> None:
    link = up(a=drg(hold_range_label=""), b=onprem(hold_time=9))
    assert PeerWarning("vc1", "negotiated hold time 9 s is outside the allowed 18-180 s") in link.a.events
