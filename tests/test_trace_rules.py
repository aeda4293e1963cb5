"""``trace``: forwarding decisions and drops, one rule each (R12, R17, R24, R26, R30, R44, R47, R49)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from tests.support.factory import dist, drg, engine, keys, table, tunnel_att, vc_att, vcn, vcn_att


def site(vc_imports: tuple[str, ...] = ("VCN",), tun_imports: tuple[str, ...] = ("VCN",),
         transport_only: bool = False, ecmp: bool = False, **extra: Any) -> RouteEngine:
    raw = drg([vcn_att("v1", "n1", "rt-vcn"), vc_att("vc1", 0, "rt-vc", transport_only=transport_only),
               vc_att("vc2", 1, "rt-vc"), tunnel_att("t1", 1, "vc1", "rt-tun"), tunnel_att("t2", 2, "vc1", "rt-tun"),
               tunnel_att("t4", 4, None, "rt-tun", cpe="203.0.113.9")],
              [table("rt-vcn", "rd-vcn", ecmp=ecmp, static=extra.get("static")), table("rt-vc", "rd-vc"),
               table("rt-tun", "rd-tun")],
              [dist("rd-vcn", *extra.get("vcn_imports", ("IPSEC_TUNNEL", "VIRTUAL_CIRCUIT"))),
               dist("rd-vc", *vc_imports), dist("rd-tun", *tun_imports)],
              [vcn("n1", "10.1.0.0/24", "2001:db8:a::/64", cidrs=["10.1.0.0/16", "2001:db8:a::/56"])])
    return engine(raw)


def cpe_up(e: RouteEngine) -> None:
    e.set_session_established("vc1", True)
    e.announce("vc1", AFI_IPV4, keys("192.168.200.1/32"), [65001])


def steps(walk: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(h["attachment"], h["action"], h["nextHop"]) for h in walk["hops"]]


def test_r12_only_the_ingress_table_is_used() -> None:
    e = site()
    e.announce("vc2", AFI_IPV4, keys("172.30.0.0/16"), [65001])
    assert e.trace("v1", "10.1.0.5", "172.30.0.1")["result"] == "DELIVERED"
    walk = e.trace("vc1", "172.30.9.9", "172.30.0.1")  # rt-vc imports VCNs only
    assert walk["result"] == "DROPPED" and walk["reason"] == "no route to 172.30.0.1 in rt-vc (R12, R26)"
    assert walk["reasonCode"] == "NO_ROUTE_IN_DRG"
    assert walk["hops"] == [{"kind": "DRG", "attachment": "vc1", "routeTable": "rt-vc", "matchedRule": None,
                             "action": "DROP", "nextHop": None, "encrypted": False, "outerSrc": None, "outerDst": None}]


def test_r26_r40_headend_host_route_beats_an_overlapping_prefix() -> None:
    e = site(vc_imports=("VCN", "vc2"))
    cpe_up(e)
    e.announce("vc2", AFI_IPV4, keys("172.16.0.0/16"), [])
    walk = e.trace("vc1", "192.168.200.1", "172.16.255.1")
    assert walk["hops"][0]["matchedRule"] == "172.16.255.1/32" and walk["hops"][0]["nextHop"] == "t1-lb"


def test_r24_vc_to_vc_is_dropped() -> None:
    e = site(vc_imports=("VCN", "VIRTUAL_CIRCUIT"))
    e.announce("vc2", AFI_IPV4, keys("172.30.0.0/16"), [65001])
    walk = e.trace("vc1", "172.20.0.1", "172.30.0.1")
    assert walk["result"] == "DROPPED" and "(R24)" in walk["reason"]
    assert steps(walk) == [("vc1", "DROP", "vc2")]


def test_r24_tunnel_to_vc_in_clear_is_dropped() -> None:
    e = site(tun_imports=("VCN", "vc2"))
    cpe_up(e)
    e.announce("vc2", AFI_IPV4, keys("172.30.0.0/16"), [65001])
    walk = e.trace("t1", "172.20.10.10", "172.30.0.1")
    assert walk["result"] == "DROPPED"
    assert walk["reason"] == "traffic that entered on IPSEC_TUNNEL t1 may not leave on VIRTUAL_CIRCUIT vc2 (R24)"


def test_r17_blackhole_drops_with_its_prefix() -> None:
    e = site(static=[("10.9.0.0/16", "gone")])
    walk = e.trace("v1", "10.1.0.5", "10.9.1.1")
    assert steps(walk) == [("v1", "DROP", "gone")] and walk["hops"][0]["matchedRule"] == "10.9.0.0/16"
    assert "blackhole" in walk["reason"] and "(R17)" in walk["reason"]


def test_r44_clear_traffic_never_leaves_on_a_transport_only_vc() -> None:
    """Even when a (badly validated) VCN table routes to it, clear packets may not use it."""
    e = site(transport_only=True)
    cpe_up(e)
    e.announce("vc1", AFI_IPV4, keys("172.20.20.0/24"), [65001])
    walk = e.trace("v1", "10.1.0.5", "172.20.20.5")
    assert walk["result"] == "DROPPED" and walk["reason"] == "vc1 is transport-only: clear traffic may not " \
                                                             "leave on it (R44)"


def test_r47_packets_into_a_down_tunnel_are_dropped() -> None:
    e = site()
    e.set_session_established("vc1", True)  # no CPE route: tunnels down
    walk = e.trace("vc1", "192.168.200.1", "172.16.255.1", "172.20.10.10", "10.1.0.5")
    assert steps(walk) == [("vc1", "FORWARD", "t1-lb"), ("t1-lb", "DROP", None)]
    assert walk["reason"] == ("tunnel t1 is down: no route to CPE 192.168.200.1 over vc1: advertise it as /32 or "
                              "/30 over the VC (R47); the ESP packet cannot be decrypted")
    walk = e.trace("t1", "172.20.10.10", "10.1.0.5")
    assert steps(walk) == [("t1", "DROP", None)] and walk["reason"].startswith("tunnel t1 is down")


def test_r49_decrypted_packet_without_inner_addresses_ends_at_the_tunnel() -> None:
    e = site()
    cpe_up(e)
    walk = e.trace("vc1", "192.168.200.1", "172.16.255.2")
    assert walk["result"] == "DELIVERED" and steps(walk) == [("vc1", "FORWARD", "t2-lb"),
                                                            ("t2-lb", "DECRYPT", "t2")]
    assert walk["hops"][0]["encrypted"] and walk["hops"][0]["outerDst"] == "172.16.255.2"


def test_internet_tunnel_encrypts_and_exits() -> None:
    e = site(vcn_imports=("IPSEC_TUNNEL",))
    e.set_session_established("t4", True)
    e.announce("t4", AFI_IPV4, keys("172.40.0.0/16"), [65002])
    walk = e.trace("v1", "10.1.0.5", "172.40.1.1")
    assert steps(walk) == [("v1", "FORWARD", "t4"), ("t4", "ENCRYPT", None), ("t4", "EXIT", None)]
    assert walk["hops"][1]["outerDst"] == "203.0.113.9" and walk["hops"][1]["outerSrc"] is None


def test_r30_ecmp_hashes_flows_over_the_set() -> None:
    e = site(ecmp=True)
    cpe_up(e)
    for name in ("t1", "t2"):
        e.set_session_established(name, True)
        e.announce(name, AFI_IPV4, keys("172.20.10.0/24"), [65002])
    chosen = {e.trace("v1", f"10.1.0.{i}", "172.20.10.10")["hops"][0]["nextHop"] for i in range(1, 9)}
    assert chosen == {"t1", "t2"}
    assert e.trace("v1", "10.1.0.3", "172.20.10.10") == e.trace("v1", "10.1.0.3", "172.20.10.10")


def test_ipv6_packets_are_routed_too() -> None:
    e = site()
    e.announce("vc2", AFI_IPV6, keys("2001:db8:ff::/48"), [65001])
    walk = e.trace("v1", "2001:db8:a::5", "2001:db8:ff::1")
    assert steps(walk) == [("v1", "FORWARD", "vc2"), ("vc2", "EXIT", None)]
    assert walk["hops"][0]["matchedRule"] == "2001:db8:ff::/48"


def test_bad_inputs() -> None:
    e = site()
    with pytest.raises(KeyError):
        e.trace("nope", "10.1.0.5", "10.1.0.6")
    with pytest.raises(ValueError, match="does not appear to be"):
        e.trace("v1", "10.1.0.5", "not-an-ip")
