"""One focused test per rule that decides how the route engine fills tables and advertises them."""

from __future__ import annotations

from typing import Any

from controlplane.engine.engine import DYNAMIC_RULE_LIMIT, RouteEngine
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from tests.support.factory import advertised, dist, drg, engine, keys, rows, table, tunnel_att, vc_att, vcn, vcn_att

P = 64512
VCNS = [vcn("n1", "10.1.0.0/24"), vcn("n2", "10.2.0.0/24", cidrs=["10.2.0.0/16"])]


def hub(ecmp: bool = False, vc_dist: tuple[str, ...] = ("VCN",), **tun_extra: Any) -> dict[str, Any]:
    """VCN v1, VC vc1 (carrying two BGP tunnels) and VC vc2; rt-hub imports everything but loopbacks."""
    return drg([vcn_att("v1", "n1", "rt-hub"), vc_att("vc1", 0, "rt-vc"), vc_att("vc2", 1, "rt-vc"),
                tunnel_att("t1", 1, "vc1", "rt-tun", **tun_extra), tunnel_att("t2", 2, "vc1", "rt-tun")],
               [table("rt-hub", "rd-hub", ecmp=ecmp), table("rt-vc", "rd-vc"), table("rt-tun", "rd-tun")],
               [dist("rd-hub", "all"), dist("rd-vc", *vc_dist), dist("rd-tun", "VCN")], VCNS)


def up(e: RouteEngine, vc: str = "vc1") -> None:
    """Establish the VC and give it the CPE /32, so its tunnels come up (R47)."""
    e.set_session_established(vc, True)
    e.announce(vc, AFI_IPV4, keys("192.168.200.1/32"), [65001])


def state(e: RouteEngine, table_name: str, destination: str) -> list[tuple[str, str]]:
    return [(r[1], r[5]) for r in rows(e, table_name) if r[0] == destination]


# ------------------------------------------------------------------------------ tables and imports

def test_r8_default_tables_per_attachment_type() -> None:
    tunnel = tunnel_att("t1", 1, None, static_routes=["10.9.0.0/16"])
    e = engine(drg([vcn_att("v1", "n1"), vc_att("vc1", 0), tunnel], vcns=VCNS))
    assert e.table_for_attachment("v1") == "autogen-rt-vcn"
    assert e.table_for_attachment("vc1") == "autogen-rt-other"
    assert e.table_for_attachment("t1") == "autogen-rt-other"


def test_r9_default_import_distributions() -> None:
    """autogen-rt-vcn imports ALL routes; autogen-rt-other imports VCN routes only."""
    e = engine(drg([vcn_att("v1", "n1"), vc_att("vc1", 0)], vcns=VCNS))
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    assert [r[0] for r in rows(e, "autogen-rt-vcn")] == ["10.1.0.0/24", "172.20.0.0/16"]
    assert [r[0] for r in rows(e, "autogen-rt-other")] == ["10.1.0.0/24"]
    assert e.route_table("autogen-rt-vcn")["importDistribution"] == "autogen-rd-all"


def test_r8_a_file_object_overrides_the_default() -> None:
    raw = drg([vcn_att("v1", "n1"), vc_att("vc1", 0)], [table("autogen-rt-other", "rd-none")],
              [dist("rd-none")], VCNS)
    e = engine(raw)
    assert rows(e, "autogen-rt-other") == []
    assert e.route_table("autogen-rt-other")["attachments"] == ["vc1"]


def test_r13_table_without_import_distribution_holds_static_rules_only() -> None:
    e = engine(drg([vcn_att("v1", "n1", "rt"), vcn_att("v2", "n2", "rt")],
                   [table("rt", None, static=[("10.50.0.0/16", "v2")])], vcns=VCNS))
    assert rows(e, "rt") == [("10.50.0.0/16", "v2", "STATIC", "STATIC", [], "ACTIVE")]


def test_r21_import_by_type_by_attachment_and_all() -> None:
    raw = drg([vcn_att("v1", "n1", "rt-a"), vcn_att("v2", "n2", "rt-a"), vc_att("vc1", 0, "rt-b")],
              [table("rt-a", "by-type"), table("rt-b", "by-id"), table("rt-c", "all")],
              [dist("by-type", "VIRTUAL_CIRCUIT"), dist("by-id", "v2"), dist("all", "all")], VCNS)
    e = engine(raw)
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    assert [r[1] for r in rows(e, "rt-a")] == ["vc1"]
    assert [r[1] for r in rows(e, "rt-b")] == ["v2"]
    assert [r[1] for r in rows(e, "rt-c")] == ["v1", "v2", "vc1"]


def test_r22_vcn_offers_subnets_or_cidrs() -> None:
    raw = drg([vcn_att("v1", "n2", "rt"), vcn_att("v2", "n1", "rt", vcn_route_type="VCN_CIDRS")],
              [table("rt", "all")], [dist("all", "all")],
              [vcn("n1", "10.1.0.0/24", cidrs=["10.1.0.0/16"]),
               vcn("n2", "10.2.0.0/24", cidrs=["10.2.0.0/16"])])
    e = engine(raw)
    assert [(r[0], r[1], r[3]) for r in rows(e, "rt")] == [("10.1.0.0/16", "v2", "VCN"),
                                                         ("10.2.0.0/24", "v1", "VCN")]


def test_r50_loopback_routes_only_enter_their_own_vc_table() -> None:
    """A headend enters only the table of the VC its tunnel rides on, through the system statements:
    MATCH_ALL in a VCN table or a tunnel table does not pull it in (R50, section 13)."""
    raw = hub()
    raw["distributions"][2] = dist("rd-tun", "all")
    e = engine(raw)
    assert not any(r[3] == "LOOPBACK" for r in rows(e, "rt-hub"))
    assert not any(r[3] == "LOOPBACK" for r in rows(e, "rt-tun"))
    assert [r[1] for r in rows(e, "rt-vc") if r[3] == "LOOPBACK"] == ["t1-lb", "t2-lb"]


def test_r50_attachment_id_statements_do_not_import_a_loopback_elsewhere() -> None:
    """A user statement naming the loopback (or its VC's type) in another table imports nothing of it."""
    raw = hub()
    raw["distributions"][0] = dist("rd-hub", "t1-lb", "VIRTUAL_CIRCUIT")
    e = engine(raw)
    assert not any(r[3] == "LOOPBACK" for r in rows(e, "rt-hub"))


def test_r40_a_shared_vc_table_advertises_a_headend_over_its_own_vc_only() -> None:
    """vc1 and vc2 share rt-vc, which holds vc1's headends; only vc1 advertises them (R40)."""
    e = engine(hub())
    e.set_session_established("vc2", True)
    up(e)
    assert advertised(e, "vc1") == ["10.1.0.0/24", "172.16.255.1/32", "172.16.255.2/32"]
    assert advertised(e, "vc2") == ["10.1.0.0/24"]
    assert e.adj_rib_out("vc2").announced() == ["10.1.0.0/24"]


# ------------------------------------------------------------------------------ R28 AS paths

def test_r28_as_paths_per_source() -> None:
    """VC: as sent; BGP tunnel: one private ASN prepended; STATIC tunnel: three private ASNs."""
    raw = hub()
    raw["attachments"].append(tunnel_att("t3", 3, "vc1", "rt-tun", static_routes=["172.30.0.0/16"]))
    e = engine(raw)
    up(e)
    e.announce("vc1", AFI_IPV4, keys("172.10.0.0/16"), [65001, 65010])
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    paths = {r[0]: r[4] for r in rows(e, "rt-hub")}
    assert paths["172.10.0.0/16"] == [65001, 65010]
    assert paths["172.20.0.0/16"] == [P, 65002]
    assert paths["172.30.0.0/16"] == [P, P, P]


def test_r28_as_set_is_nested_and_counts_as_one() -> None:
    e = engine(hub())
    e.announce("vc1", AFI_IPV4, keys("172.10.0.0/16"), [65001, (65010, 65011, 65012)])
    e.announce("vc2", AFI_IPV4, keys("172.10.0.0/16"), [65001, 65003, 65004])
    assert state(e, "rt-hub", "172.10.0.0/16") == [("vc1", "ACTIVE"), ("vc2", "CONFLICT")]
    assert rows(e, "rt-hub")[1][4] == [65001, [65010, 65011, 65012]]


def test_r28_private_asn_is_configurable() -> None:
    raw = hub()
    raw["drg"]["vpn_private_asn"] = 65100
    e = engine(raw)
    up(e)
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    assert [r[4] for r in rows(e, "rt-hub") if r[0] == "172.20.0.0/16"] == [[65100, 65002]]


# ------------------------------------------------------------------------------ conflict resolution

def test_r27_step1_r32_static_beats_dynamic() -> None:
    raw = hub()
    raw["route_tables"][0]["static_routes"] = [{"destination": "172.20.0.0/16", "next_hop": "v1"}]
    e = engine(raw)
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [])
    assert [(r[1], r[2], r[5]) for r in rows(e, "rt-hub") if r[0] == "172.20.0.0/16"] == [
        ("v1", "STATIC", "ACTIVE"), ("vc1", "DYNAMIC", "CONFLICT")]


def test_r27_step2_shortest_as_path_wins() -> None:
    e = engine(hub())
    up(e)
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65001, 65001, 65001])
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    assert state(e, "rt-hub", "172.20.0.0/16") == [("vc1", "CONFLICT"), ("t1", "ACTIVE")]


def test_r27_step3_type_order_vcn_vc_ipsec() -> None:
    """R27.3/R29: equal lengths -> VCN > VIRTUAL_CIRCUIT > IPSEC_TUNNEL, whatever the file order."""
    e = engine(hub())
    up(e)
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    e.announce("vc2", AFI_IPV4, keys("172.20.0.0/16"), [65001, 65003])
    assert state(e, "rt-hub", "172.20.0.0/16") == [("vc2", "ACTIVE"), ("t1", "CONFLICT")]
    e.announce("vc2", AFI_IPV4, keys("10.1.0.0/24"), [])
    assert state(e, "rt-hub", "10.1.0.0/24") == [("v1", "ACTIVE"), ("vc2", "CONFLICT")]


def test_r31_revised_first_attachment_in_the_file_wins() -> None:
    e = engine(hub())
    e.announce("vc2", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65009])
    assert state(e, "rt-hub", "172.20.0.0/16") == [("vc1", "ACTIVE"), ("vc2", "CONFLICT")]
    swapped = hub()
    atts = swapped["attachments"]
    atts[1], atts[2] = atts[2], atts[1]
    e2 = engine(swapped)
    e2.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65009])
    e2.announce("vc2", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    assert state(e2, "rt-hub", "172.20.0.0/16") == [("vc2", "ACTIVE"), ("vc1", "CONFLICT")]


def test_r30_ecmp_keeps_equal_routes_of_one_type() -> None:
    e = engine(hub(ecmp=True))
    up(e)
    for name in ("t1", "t2"):
        e.announce(name, AFI_IPV4, keys("172.20.0.0/16"), [65002])
    assert state(e, "rt-hub", "172.20.0.0/16") == [("t1", "ECMP"), ("t2", "ECMP")]
    e.announce("vc1", AFI_IPV4, keys("172.20.0.0/16"), [65001, 65002])  # same length, better type
    assert state(e, "rt-hub", "172.20.0.0/16") == [("vc1", "ACTIVE"), ("t1", "CONFLICT"), ("t2", "CONFLICT")]


def test_r30_ecmp_at_most_eight_paths_and_never_for_vcns() -> None:
    vcs = [vc_att(f"vc{i}", i, "rt") for i in range(9)]
    raw = drg([vcn_att("v1", "n1", "rt"), vcn_att("v2", "n2", "rt", vcn_route_type="VCN_CIDRS"), *vcs],
              [table("rt", "all", ecmp=True)], [dist("all", "all")],
              [vcn("n1", "10.2.0.0/16"), vcn("n2", "10.2.0.0/24", cidrs=["10.2.0.0/16"])])
    e = engine(raw)
    for i in range(9):
        e.announce(f"vc{i}", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    states = [s for _, s in state(e, "rt", "172.20.0.0/16")]
    assert states == ["ECMP"] * 8 + ["CONFLICT"]
    assert state(e, "rt", "10.2.0.0/16") == [("v1", "ACTIVE"), ("v2", "CONFLICT")]


def test_r17_every_candidate_is_listed_and_a_missing_next_hop_is_a_blackhole() -> None:
    raw = hub()
    raw["route_tables"][1]["static_routes"] = [{"destination": "10.1.0.0/24", "next_hop": "v-gone"}]
    raw["distributions"][1] = dist("rd-vc", "VCN")
    e = engine(raw)
    assert [(r[1], r[2], r[5]) for r in rows(e, "rt-vc") if r[0] == "10.1.0.0/24"] == [
        ("v-gone", "STATIC", "BLACKHOLE"), ("v1", "DYNAMIC", "CONFLICT")]
    assert "10.1.0.0/24" not in advertised(e, "vc1")  # R33: blackholes are not advertised
    walk = e.trace("vc1", "172.20.0.1", "10.1.0.5")
    assert walk["result"] == "DROPPED" and "(R17)" in walk["reason"]


def test_r12_r26_lookup_is_longest_prefix_in_the_table() -> None:
    e = engine(hub())
    e.announce("vc1", AFI_IPV4, keys("10.0.0.0/8", "10.1.0.128/25"), [65001])
    hit = e.lookup("rt-hub", "10.1.0.200")
    assert hit is not None and (hit.prefix, hit.next_hops) == ("10.1.0.128/25", ("vc1",))
    hit = e.lookup("rt-hub", "10.1.0.5")
    assert hit is not None and (hit.prefix, hit.next_hops) == ("10.1.0.0/24", ("v1",))
    assert e.lookup("rt-hub", "192.0.2.1") is None


# ------------------------------------------------------------------------------ export

def test_r24_r33_vc_and_tunnel_routes_are_never_advertised_over_bgp() -> None:
    e = engine(hub(vc_dist=("all",)))
    up(e)
    e.announce("vc2", AFI_IPV4, keys("172.10.0.0/16"), [65001])
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    provenances = {r[3] for r in rows(e, "rt-vc")}
    assert {"VIRTUAL_CIRCUIT", "IPSEC_TUNNEL", "VCN", "LOOPBACK"} <= provenances
    assert advertised(e, "vc1") == ["10.1.0.0/24", "172.16.255.1/32", "172.16.255.2/32"]


def test_r33_only_the_active_rule_decides() -> None:
    """A static rule to a VCN wins over a VC route: the prefix is advertised (provenance STATIC)."""
    raw = hub()
    raw["route_tables"][1]["static_routes"] = [{"destination": "172.10.0.0/16", "next_hop": "v1"}]
    e = engine(raw)
    e.set_session_established("vc1", True)
    e.announce("vc2", AFI_IPV4, keys("172.10.0.0/16"), [65001])
    assert "172.10.0.0/16" in advertised(e, "vc1")


def test_r10_export_none_advertises_nothing() -> None:
    raw = hub()
    raw["attachments"][1]["export_distribution"] = "none"
    e = engine(raw)
    e.set_session_established("vc1", True)
    e.set_session_established("vc2", True)
    assert e.advertised("vc1") == {"attachment": "vc1", "neighbor": "192.168.100.2", "state": "Established",
                                   "routes": []}
    assert advertised(e, "vc2") == ["10.1.0.0/24"]  # vc1's headends stay on vc1 (R40)


def test_r36_advertised_attributes() -> None:
    raw = hub()
    raw["drg"]["asn"] = 14544
    e = engine(raw)
    e.set_session_established("vc2", True)
    assert e.advertised("192.168.100.6")["routes"][0] == {
        "prefix": "10.1.0.0/24", "asPath": [14544], "nextHop": "192.168.100.5"}
    rib_out = e.adj_rib_out("vc2")
    assert (rib_out.neighbor, rib_out.next_hop, rib_out.as_path) == ("192.168.100.6", "192.168.100.5", (14544,))
    assert rib_out.announced() == advertised(e, "vc2") and rib_out.withdraw == {}


def test_r38_static_tunnels_advertise_nothing() -> None:
    raw = hub()
    raw["attachments"].append(tunnel_att("t3", 3, None, "rt-tun", static_routes=["172.30.0.0/16"]))
    e = engine(raw)
    assert e.advertised("t3") == {"attachment": "t3", "neighbor": None, "state": None, "routes": []}
    assert state(e, "rt-hub", "172.30.0.0/16") == [("t3", "ACTIVE")]  # internet tunnel: always up


def test_r45_r46_system_objects_in_both_modes() -> None:
    for transport_only in (True, False):
        raw = hub()
        raw["attachments"][1]["transport_only"] = transport_only
        raw["distributions"][1] = dist("rd-vc")
        e = engine(raw)
        assert [(r[0], r[1], r[3]) for r in rows(e, "rt-vc")] == [
            ("172.16.255.1/32", "t1-lb", "LOOPBACK"), ("172.16.255.2/32", "t2-lb", "LOOPBACK")]
        assert e.route_table("vc1-lb-rt")["attachments"] == ["t1-lb", "t2-lb"]
        assert e.route_table("vc1-lb-rt")["importDistribution"] == "vc1-lb-rd"


# ------------------------------------------------------------------------------ R47 tunnel state

def test_r47_tunnel_waits_for_the_vc_session_and_the_cpe_route() -> None:
    e = engine(hub())
    assert e.tunnel_state("t1") == (False, "the BGP session of vc1 is not Established: the tunnel rides on "
                                           "it (R47)")
    e.set_session_established("vc1", True)
    assert e.tunnel_state("t1") == (False, "no route to CPE 192.168.200.1 over vc1: advertise it as /32 or "
                                           "/30 over the VC (R47)")
    changes = e.announce("vc1", AFI_IPV4, keys("192.168.200.0/30"), [65001])
    assert [(t.tunnel, t.up, t.reason) for t in changes.tunnels] == [("t1", True, None), ("t2", True, None)]
    assert e.tunnel_state("t2") == (True, None)


def test_r47_tunnel_down_removes_its_routes() -> None:
    e = engine(hub())
    up(e)
    e.set_session_established("t1", True)
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    changes = e.withdraw("vc1", AFI_IPV4, keys("192.168.200.1/32"))
    assert {(t.tunnel, t.up) for t in changes.tunnels} == {("t1", False), ("t2", False)}
    assert "no route to CPE" in (changes.tunnels[0].reason or "")
    delta = changes.table("rt-hub")
    assert delta is not None and {(c["op"], c["rule"]["nextHop"]) for c in delta.rule_changes()} == {
        ("remove", "t1"), ("remove", "vc1")}
    assert not e.is_established("t1") and e.received_count("t1") == 0
    assert not e.announce("t1", AFI_IPV4, keys("172.21.0.0/16"), [65002])  # ignored while down


def test_r47_vc_session_down_takes_the_tunnels_down() -> None:
    e = engine(hub())
    up(e)
    changes = e.session_down("vc1")
    assert [t.up for t in changes.tunnels] == [False, False]
    assert "not Established" in (e.tunnel_state("t1")[1] or "")
    assert e.received_count("vc1") == 0


def test_r47_static_tunnel_offers_its_routes_only_while_up() -> None:
    raw = hub()
    raw["attachments"].append(tunnel_att("t3", 3, "vc1", "rt-tun", static_routes=["172.30.0.0/16"]))
    e = engine(raw)
    assert state(e, "rt-hub", "172.30.0.0/16") == []
    up(e)
    assert state(e, "rt-hub", "172.30.0.0/16") == [("t3", "ACTIVE")]
    e.session_down("vc1")
    assert state(e, "rt-hub", "172.30.0.0/16") == []


# ------------------------------------------------------------------------------ limits

def test_r58_prefix_limit_reports_the_first_prefix_over_and_drops_the_session() -> None:
    raw = hub()
    raw["attachments"][2]["bgp"]["max_prefixes"] = {"ipv4": 3, "ipv6": 1}
    e = engine(raw)
    e.set_session_established("vc2", True)
    e.announce("vc2", AFI_IPV4, keys("172.20.1.0/24", "172.20.2.0/24"), [65001])
    changes = e.announce("vc2", AFI_IPV4, keys("172.20.1.0/24", "172.20.3.0/24", "172.20.4.0/24",
                                               "172.20.5.0/24"), [65001])
    assert [(p.attachment, p.afi, p.limit, p.prefix) for p in changes.prefix_limits] == [
        ("vc2", AFI_IPV4, 3, "172.20.4.0/24")]
    assert e.received_count("vc2") == 0 and not e.is_established("vc2")
    delta = changes.table("rt-hub")
    assert delta is not None and sorted(delta.destinations()) == ["172.20.1.0/24", "172.20.2.0/24"]


def test_r58_limits_are_per_address_family() -> None:
    raw = hub()
    raw["attachments"][2]["bgp"]["max_prefixes"] = {"ipv4": 1, "ipv6": 2}
    e = engine(raw)
    e.set_session_established("vc2", True)
    e.announce("vc2", AFI_IPV4, keys("172.20.1.0/24"), [65001])
    # One IPv4 route (the IPv4 limit) and two IPv6 routes (the IPv6 limit) are within the limits.
    assert e.announce("vc2", AFI_IPV6, keys("2001:db8:1::/48", "2001:db8:2::/48"), [65001]).prefix_limits == []
    assert e.received_count("vc2") == 3 and e.is_established("vc2")
    over = e.announce("vc2", AFI_IPV6, keys("2001:db8:3::/48"), [65001]).prefix_limits
    assert [(p.attachment, p.afi, p.limit, p.prefix) for p in over] == [("vc2", AFI_IPV6, 2, "2001:db8:3::/48")]


def test_r64_tunnel_sessions_are_limited_too() -> None:
    e = engine(hub(bgp={"max_prefixes": {"ipv4": 1, "ipv6": 1}}))
    up(e)
    e.set_session_established("t1", True)
    changes = e.announce("t1", AFI_IPV4, keys("172.20.1.0/24", "172.20.2.0/24"), [65002])
    assert [(p.attachment, p.afi, p.limit, p.prefix) for p in changes.prefix_limits] == [
        ("t1", AFI_IPV4, 1, "172.20.2.0/24")]
    assert e.received_count("t1") == 0 and not e.is_established("t1")
    assert state(e, "rt-hub", "172.20.1.0/24") == []  # nothing of the dropped session stays
    assert e.is_established("vc1") and e.tunnel_state("t1") == (True, None)  # only the BGP session drops


def test_r15_dynamic_rule_limit_is_a_warning() -> None:
    raw = hub()
    raw["attachments"][2]["bgp"]["max_prefixes"] = {"ipv4": 30000, "ipv6": 1}
    e = engine(raw)
    many = [(0xAC100000 + i) << 8 | 32 for i in range(DYNAMIC_RULE_LIMIT)]
    first = e.announce("vc2", AFI_IPV4, many, [65001])  # into rt-hub and autogen-rt-vcn
    count = e.dynamic_rule_count()
    assert count >= 2 * DYNAMIC_RULE_LIMIT  # every route is in both tables
    assert first.warnings == [f"the DRG holds {count} dynamic route rules, over OCI's limit of "
                              f"{DYNAMIC_RULE_LIMIT} (R15): installed anyway"]
    assert sum(r["nextHop"] == "vc2" for r in e.route_table("rt-hub")["rules"]) == DYNAMIC_RULE_LIMIT  # installed
    assert not e.announce("vc2", AFI_IPV4, keys("172.31.0.0/16"), [65001]).warnings  # once per crossing


# ------------------------------------------------------------------------------ Changes

def test_changes_touch_only_importing_tables_and_carry_advertisements() -> None:
    e = engine(hub(vc_dist=("VCN", "vc2")))
    changes = e.announce("vc2", AFI_IPV4, keys("172.20.0.0/16"), [65001])
    assert [d.table for d in changes.tables] == ["rt-hub", "rt-vc", "autogen-rt-vcn"]  # not rt-tun
    delta = changes.table("rt-hub")
    assert delta is not None and delta.added() == [
        {"destination": "172.20.0.0/16", "destinationType": "CIDR_BLOCK", "nextHop": "vc2",
         "nextHopDrgAttachmentId": "ocid1.drgattachment.emu.drg1.vc2", "routeType": "DYNAMIC",
         "routeProvenance": "VIRTUAL_CIRCUIT", "asPath": [65001], "isConflict": False, "isEcmp": False,
         "isBlackhole": False}]
    assert changes.advertisements == []  # R24: VC routes are not advertised to VCs
    changes = e.withdraw("vc2", AFI_IPV4, keys("172.20.0.0/16"))
    delta = changes.table("rt-vc")
    assert delta is not None and [c["op"] for c in delta.rule_changes()] == ["remove"]


def test_changes_report_conflict_flips() -> None:
    e = engine(hub())
    e.announce("vc1", AFI_IPV4, keys("10.7.0.0/16"), [65001, 65001])
    changes = e.announce("vc2", AFI_IPV4, keys("10.7.0.0/16"), [65001])
    delta = changes.table("rt-hub")
    assert delta is not None
    ops = {(c["op"], c["rule"]["nextHop"], c["rule"]["isConflict"]) for c in delta.rule_changes()}
    assert ops == {("change", "vc1", True), ("add", "vc2", False)}
    assert delta.removed() == [] and [r["nextHop"] for r in delta.changed()] == ["vc1"]


def test_r24_learned_routes_never_change_advertisements() -> None:
    """Whatever BGP brings (even a VCN prefix with an empty path), Adj-RIB-Outs stay as they are: VC and
    IPSec provenance is never exported (R24) and never beats a VCN or loopback route (R27.3)."""
    e = engine(hub(vc_dist=("all",)))
    up(e)
    for name in ("vc2", "t1", "t2"):
        e.set_session_established(name, True)
    before = {name: advertised(e, name) for name in ("vc1", "vc2", "t1", "t2")}
    for name, path in (("vc2", []), ("vc1", [65001]), ("t1", [65002])):
        changes = e.announce(name, AFI_IPV4, keys("10.1.0.0/24", "172.16.255.1/32", "172.20.0.0/16"), path)
        assert changes.advertisements == []
    assert {name: advertised(e, name) for name in before} == before


def test_refresh_describes_the_whole_state() -> None:
    e = engine(hub())
    up(e)
    changes = e.refresh()
    assert {d.table for d in changes.tables} == {"rt-hub", "rt-vc", "rt-tun", "vc1-lb-rt", "autogen-rt-vcn",
                                                 "autogen-rt-other"}
    assert {a.attachment: a.announced() for a in changes.advertisements} == {
        "vc1": ["10.1.0.0/24", "172.16.255.1/32", "172.16.255.2/32"],
        "vc2": ["10.1.0.0/24"],  # vc1's headends are advertised over vc1 only (R40)
        "t1": ["10.1.0.0/24"], "t2": ["10.1.0.0/24"]}
    assert [(t.tunnel, t.up) for t in changes.tunnels] == [("t1", True), ("t2", True)]


def test_learned_routes_are_reported_as_sent() -> None:
    e = engine(hub())
    up(e)
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002, (1, 2)])
    assert e.learned_routes("t1") == [(AFI_IPV4, keys("172.20.0.0/16")[0], (65002, (1, 2)))]
