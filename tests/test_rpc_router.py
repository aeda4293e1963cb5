"""An RPC across daemons (R109) without sockets: two Routers, one per region, joined by a BGP session.

Worked example 2 of oci-drg-transit.md section 9: drg-a runs in one Router, drg-b in another; their RPC
(``peer.remote``) is an iBGP session between the two Routers' Peers over an in-memory wire
(``tests/support/regions.py``). Every table must equal the one-process result of
``tests/test_rpc_engine.py`` (an RpcFabric joining two engines): the session carries provenance,
network distance and DRG path (R98, R99, R103) and nothing else changes.
"""

from __future__ import annotations

import copy
from typing import Any

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import Update
from controlplane.bgp.outputs import RoutesReceived, State
from controlplane.config.effective import RpcOffer
from controlplane.config.validate import validate
from controlplane.events.event import DrgEvent, EventType
from controlplane.prefix import AFI_IPV4, format_prefix, parse_prefix
from controlplane.router.router import AddSession, RemoveSession
from tests.support.bgp import decode_all
from tests.support.factory import config
from tests.support.regions import ONPREM, drg_a, drg_b, example2
from tests.support.routers import Regions

SPEAKER = {"drg-a": "127.0.3.1", "drg-b": "127.0.3.2"}


def remote(raw: dict[str, Any], other: str) -> dict[str, Any]:
    """``raw`` run by its own daemon: its own speaker address, its RPC's peer at ``other``'s (R109)."""
    raw = copy.deepcopy(raw)
    raw["drg"]["asn"] = 31898
    raw["speaker"] = {"listen": f"{SPEAKER[raw['drg']['name']]}:1790"}
    for att in raw["attachments"]:
        if att["type"] == "REMOTE_PEERING_CONNECTION":
            att["peer"]["remote"] = {"address": SPEAKER[other], "port": 1790}
    return raw


def two_regions(a: dict[str, Any] | None = None, b: dict[str, Any] | None = None,
                edge_b: tuple[int, ...] = (65001,)) -> Regions:
    regions = Regions(remote(a or drg_a(), "drg-b"), remote(b or drg_b(), "drg-a"))
    regions.announce("drg-a", "att-a-vc", ONPREM)
    regions.announce("drg-b", "att-b-vc", ONPREM, edge_b)
    return regions


def tables(regions: Regions, drg: str) -> dict[str, Any]:
    return dict(regions.routers[drg].engine.route_tables())


def test_worked_example_2_over_a_bgp_session_equals_the_one_process_result() -> None:
    regions = two_regions()
    assert regions.state("drg-a", "att-a-rpc") == State.ESTABLISHED
    negotiated = regions.rpc_peer("drg-a", "att-a-rpc").negotiated
    assert negotiated is not None and negotiated.ibgp  # both ends are OCI's AS (R98)
    one = example2()
    for drg in ("drg-a", "drg-b"):
        assert tables(regions, drg) == one.engines[drg].route_tables()
    # what crossed: drg-a's rt-a-rpc export and drg-b's autogen-rt-other export (R97)
    a_in = regions.rpc_peer("drg-a", "att-a-rpc").rib_in.routes[AFI_IPV4]
    b_in = regions.rpc_peer("drg-b", "att-b-rpc").rib_in.routes[AFI_IPV4]
    assert sorted(format_prefix(AFI_IPV4, k) for k in a_in) == ["10.20.1.0/24"]
    assert sorted(format_prefix(AFI_IPV4, k) for k in b_in) == ["10.10.1.0/24", ONPREM]
    onprem = b_in[parse_prefix(ONPREM)[1]]
    assert onprem.flat_as_path() == [65001] and onprem.local_pref == 100  # AS path unchanged (R98)
    assert (31898, 1, 3) in onprem.large_communities  # provenance VIRTUAL_CIRCUIT


def test_v1_prepending_and_v4_revoked_as_in_one_process() -> None:
    regions = two_regions(edge_b=(65001, 65001))
    one = example2(edge_b=[65001, 65001])
    assert tables(regions, "drg-b") == one.engines["drg-b"].route_tables()
    a = drg_a()
    a["attachments"][2]["peering_status"] = "REVOKED"
    regions = two_regions(a=a)
    one = example2(a=copy.deepcopy(a))
    for drg in ("drg-a", "drg-b"):  # R110: nothing sent, nothing accepted
        assert tables(regions, drg) == one.engines[drg].route_tables()
    assert regions.state("drg-a", "att-a-rpc") == State.ESTABLISHED
    assert regions.rpc_peer("drg-b", "att-b-rpc").rib_in.count(AFI_IPV4) == 0


def test_a_change_sends_only_what_changed() -> None:
    """Incremental export: a new on-prem prefix in rt-a-rpc is one UPDATE with that prefix alone."""
    regions = two_regions()
    before = len(regions.received("drg-b", "att-b-rpc"))
    regions.announce("drg-a", "att-a-vc", "172.21.0.0/16")
    new = regions.received("drg-b", "att-b-rpc")[before:]
    assert [(format_prefix(e.afi, k), e.withdrawn) for e in new for k in e.announced] == [("172.21.0.0/16", ())]
    row = next(r for r in regions.routers["drg-b"].engine.route_table("autogen-rt-vcn")["rules"]
               if r["destination"] == "172.21.0.0/16")
    assert (row["nextHop"], row["routeProvenance"], row["networkDistance"], row["drgPath"]) == (
        "att-b-rpc", "VIRTUAL_CIRCUIT", 1, ["drg-a"])


def test_the_session_going_down_withdraws_its_routes_and_coming_back_restores_them() -> None:
    regions = two_regions()
    wire, side = regions.wires[("drg-a", "att-a-rpc")]
    wire.link.side(side).peer.stop(wire.link.now, 2, "maintenance")
    regions.settle()
    rows = regions.routers["drg-b"].engine.route_table("autogen-rt-vcn")["rules"]
    assert [r["nextHop"] for r in rows] == ["att-b-vcn", "att-b-vc"]  # no att-b-rpc route left
    assert "10.20.1.0/24" not in [r["destination"] for r in
                                  regions.routers["drg-a"].engine.route_table("rt-a-vc")["rules"]]
    wire.link.side(side).peer.start(wire.link.now)
    regions.settle()
    assert tables(regions, "drg-b") == example2().engines["drg-b"].route_tables()


def test_malformed_rpc_communities_are_treated_as_withdrawn() -> None:
    """RFC 7606: the route is not installed, replaces (withdraws) the earlier one, and is reported."""
    regions = two_regions()
    router = regions.routers["drg-b"]
    key = parse_prefix("10.10.1.0/24")[1]
    bad = PathAttributes.make(as_path=[], local_pref=100, large_communities=[(31898, 1, 9), (31898, 2, 1),
                                                                             (31898, 3, 1)])
    router.bgp_event(RoutesReceived("att-b-rpc", AFI_IPV4, (key,), bad, ()))
    rows = router.engine.route_table("autogen-rt-vcn")["rules"]
    assert "10.10.1.0/24" not in [r["destination"] for r in rows]
    warnings = [e.data["summary"] for e in router.take() if isinstance(e, DrgEvent) and e.type == EventType.WARNING]
    assert warnings and "unknown provenance code 9" in warnings[0]
    assert key not in regions.rpc_peer("drg-b", "att-b-rpc").rib_in.routes[AFI_IPV4]


def test_a_route_back_to_its_origin_is_ignored_r103() -> None:
    regions = two_regions()
    router = regions.routers["drg-a"]
    key = parse_prefix("10.99.0.0/16")[1]
    attrs = regions.routers["drg-b"].rpc.codec.attributes(RpcOffer(AFI_IPV4, key, "VCN", (), 2, ("drg-a", "drg-b")))
    router.bgp_event(RoutesReceived("att-a-rpc", AFI_IPV4, (key,), attrs, ()))
    assert "10.99.0.0/16" not in [r["destination"] for r in router.engine.route_table("rt-a-vc")["rules"]]


def test_what_goes_on_the_wire_is_a_real_ibgp_update() -> None:
    regions = two_regions()
    wire, side = regions.wires[("drg-a", "att-a-rpc")]
    peer = wire.link.side(side).peer
    assert peer.negotiated is not None
    updates = [m for m in decode_all(b"".join(wire.link.side(side).sent), peer.negotiated) if isinstance(m, Update)]
    sent = {format_prefix(AFI_IPV4, k): u.attributes for u in updates for k in u.nlri if u.attributes}
    assert set(sent) == {"10.10.1.0/24", ONPREM}
    vcn = sent["10.10.1.0/24"]
    assert vcn.as_path == () and vcn.next_hop == "127.0.3.1" and vcn.local_pref == 100
    assert set(vcn.large_communities) == {(31898, 1, 2), (31898, 2, 1), (31898, 3, 1),
                                          (31898, 1000, int.from_bytes(b"drg-", "big")),
                                          (31898, 1001, int.from_bytes(b"a\0\0\0", "big"))}


def test_apply_keeps_the_rpc_routes_and_touches_only_changed_sessions() -> None:
    regions = two_regions()
    router = regions.routers["drg-b"]
    raw = remote(drg_b(), "drg-a")
    raw["route_tables"] = [{"name": "rt-extra", "import_distribution": "autogen-rd-all"}]
    touched, changes = router.apply(config(raw))
    assert touched == [] and [d.table for d in changes.tables] == ["rt-extra"]  # RPC routes stay: no churn
    assert ONPREM in changes.tables[0].destinations()  # the new table imports the RPC route at once
    regions.settle()
    assert router.engine.route_table("autogen-rt-vcn") == example2().engines["drg-b"].route_table("autogen-rt-vcn")
    raw["attachments"][2]["peer"]["remote"]["port"] = 1791
    touched, _ = router.apply(config(raw))
    assert touched == ["session att-b-rpc re-created"]
    outputs = router.take()
    assert [o for o in outputs if isinstance(o, RemoveSession)] == [
        RemoveSession("att-b-rpc", 6, "session settings changed")]
    assert [(o.address, o.port) for o in outputs if isinstance(o, AddSession)] == [("127.0.3.1", 1791)]
    raw["attachments"] = raw["attachments"][:2]
    touched, _ = router.apply(config(raw))
    assert touched == ["session att-b-rpc removed"]


def test_r109_sockets_must_find_their_session() -> None:
    """The speaker matches a connection by source address: an RPC's remote address is no other session's,
    and not this daemon's own listener."""
    raw = remote(drg_a(), "drg-b")
    assert not validate(config(raw)).errors
    raw["attachments"][2]["peer"]["remote"]["address"] = "127.0.1.1"  # att-a-vc's peer
    assert [(p.object, p.rule) for p in validate(config(raw)).errors] == [("att-a-rpc", "R109")]
    raw["attachments"][2]["peer"]["remote"]["address"] = SPEAKER["drg-a"]  # itself, same port
    errors = validate(config(raw)).errors
    assert [(p.object, p.field) for p in errors] == [("att-a-rpc", "peer.remote")] and "itself" in errors[0].message
