"""``RouteEngine.apply_config``: a new configuration keeps sessions and routes and reports exact diffs."""

from __future__ import annotations

from typing import Any

from controlplane.config.effective import build_effective
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4
from tests.support.factory import config, dist, drg, engine, keys, mutate, rows, table, tunnel_att, vc_att, vcn, vcn_att

VCNS = [vcn("n1", "10.1.0.0/24"), vcn("n2", "10.2.0.0/24")]


def base() -> dict[str, Any]:
    return drg([vcn_att("v1", "n1", "rt-hub"), vc_att("vc1", 0, "rt-vc"), vc_att("vc2", 1, "rt-vc"),
                tunnel_att("t1", 1, "vc1", "rt-tun")],
               [table("rt-hub", "rd-hub"), table("rt-vc", "rd-vc"), table("rt-tun", "rd-tun")],
               [dist("rd-hub", "all"), dist("rd-vc", "VCN"), dist("rd-tun", "VCN")], VCNS)


def running(raw: dict[str, Any]) -> RouteEngine:
    e = engine(raw)
    e.set_session_established("vc1", True)
    e.announce("vc1", AFI_IPV4, keys("192.168.200.1/32", "172.10.0.0/16"), [65001])
    e.set_session_established("t1", True)
    e.announce("t1", AFI_IPV4, keys("172.20.0.0/16"), [65002])
    return e


def apply(e: RouteEngine, raw: dict[str, Any]) -> Any:
    return e.apply_config(build_effective(config(raw)))


def ops(changes: Any, table_name: str) -> set[tuple[str, str, str]]:
    delta = changes.table(table_name)
    return set() if delta is None else {(c["op"], c["rule"]["destination"], c["rule"]["nextHop"])
                                        for c in delta.rule_changes()}


def test_same_configuration_changes_nothing() -> None:
    e = running(base())
    before = e.route_tables()
    changes = apply(e, base())
    assert not changes and changes.tables == [] and changes.advertisements == []
    assert e.route_tables() == before and e.is_established("t1")


def test_import_change_keeps_learned_routes() -> None:
    e = running(base())
    raw = base()
    raw["distributions"][0] = dist("rd-hub", "VCN")
    changes = apply(e, raw)
    assert ops(changes, "rt-hub") == {("remove", "172.10.0.0/16", "vc1"), ("remove", "172.20.0.0/16", "t1"),
                                      ("remove", "192.168.200.1/32", "vc1")}
    assert e.received_count("vc1") == 2 and e.tunnel_state("t1") == (True, None)
    assert [r[1] for r in rows(e, "vc1-lb-rt")] == ["vc1", "vc1"]


def test_export_default_announces_the_table() -> None:
    raw = base()
    raw["attachments"][2]["export_distribution"] = "none"
    e = running(raw)
    changes = apply(e, base())
    assert [(d.attachment, d.announced(), d.withdrawn()) for d in changes.advertisements] == [
        ("vc2", ["10.1.0.0/24"], [])]  # vc1's headend is never advertised over vc2 (R40)
    assert changes.advertisements[0].next_hop == "192.168.100.5"


def test_new_drg_asn_reannounces_everything() -> None:
    """R36: the AS path attribute of every advertisement changes."""
    e = running(base())
    raw = base()
    raw["drg"]["asn"] = 14544
    changes = apply(e, raw)
    assert {d.attachment: (d.as_path, d.announced()) for d in changes.advertisements} == {
        "vc1": ((14544,), ["10.1.0.0/24", "172.16.255.1/32"]),
        "vc2": ((14544,), ["10.1.0.0/24"]),
        "t1": ((14544,), ["10.1.0.0/24"])}


def test_removing_a_vc_removes_its_routes_sessions_and_tunnels() -> None:
    e = running(base())
    raw = base()
    raw["attachments"] = [raw["attachments"][0], raw["attachments"][2]]
    changes = apply(e, raw)
    assert ("remove", "172.10.0.0/16", "vc1") in ops(changes, "rt-hub")
    assert ("remove", "172.20.0.0/16", "t1") in ops(changes, "rt-hub")
    assert [(t.tunnel, t.up) for t in changes.tunnels] == [("t1", False)]
    assert {d.attachment: d.withdrawn() for d in changes.advertisements} == {
        "vc1": ["10.1.0.0/24", "172.16.255.1/32"], "t1": ["10.1.0.0/24"]}
    gone = changes.table("vc1-lb-rt")  # the system table went away, with every rule it held
    assert gone is not None and (gone.added(), gone.changed()) == ([], [])
    assert [(r["destination"], r["nextHop"]) for r in gone.removed()] == [
        ("172.10.0.0/16", "vc1"), ("192.168.200.1/32", "vc1")]


def test_lower_prefix_limit_cuts_the_session() -> None:
    """R58: the new limit applies to what the session already sent."""
    e = running(base())
    raw = base()
    raw["attachments"][1]["bgp"]["max_prefixes"] = {"ipv4": 1, "ipv6": 1}
    changes = apply(e, raw)
    assert [(p.attachment, p.limit) for p in changes.prefix_limits] == [("vc1", 1)]
    assert e.received_count("vc1") == 0 and e.tunnel_state("t1")[0] is False


def test_new_private_asn_rewrites_tunnel_paths() -> None:
    """R28: the prepended private ASN is configuration."""
    e = running(base())
    raw = base()
    raw["drg"]["vpn_private_asn"] = 65100
    changes = apply(e, raw)
    assert ("change", "172.20.0.0/16", "t1") in ops(changes, "rt-hub")
    assert [r[4] for r in rows(e, "rt-hub") if r[1] == "t1"] == [[65100, 65002]]
    assert e.learned_routes("t1") == [(AFI_IPV4, keys("172.20.0.0/16")[0], (65002,))]


def test_reordering_attachments_only_reports_the_flipped_winner() -> None:
    """R31 revised: the winner is a function of the file order, so swapping two VCs flips it."""
    e = running(base())
    e.set_session_established("vc2", True)
    e.announce("vc2", AFI_IPV4, keys("172.10.0.0/16"), [65001])
    raw = base()
    raw["attachments"][1], raw["attachments"][2] = raw["attachments"][2], raw["attachments"][1]
    changes = apply(e, raw)
    assert ops(changes, "rt-hub") == {("change", "172.10.0.0/16", "vc1"), ("change", "172.10.0.0/16", "vc2")}
    assert [(r[1], r[5]) for r in rows(e, "rt-hub") if r[0] == "172.10.0.0/16"] == [
        ("vc2", "ACTIVE"), ("vc1", "CONFLICT")]


def test_new_and_removed_tables() -> None:
    e = running(base())
    raw = mutate(base())
    raw["route_tables"].append(table("rt-new", "rd-vc"))
    changes = apply(e, raw)
    assert ops(changes, "rt-new") == {("add", "10.1.0.0/24", "v1")}
    changes = apply(e, base())
    assert ops(changes, "rt-new") == {("remove", "10.1.0.0/24", "v1")}


def test_tunnel_moved_to_the_internet_comes_up() -> None:
    raw = base()
    e = engine(raw)
    assert e.tunnel_state("t1")[0] is False
    moved = base()
    moved["attachments"][3] = tunnel_att("t1", 1, None, "rt-tun")
    changes = apply(e, moved)
    assert [(t.tunnel, t.up) for t in changes.tunnels] == [("t1", True)]
    assert changes.table("vc1-lb-rt") is None  # it never had rules
