"""Property: DRGs joined by RPCs reach the same fixed point whatever the order of events (R109).

Random designs of two or three DRGs in a chain (each with a VCN and a VC, RPC tables importing
random attachment types, exports on or off, a peering sometimes not PEERED) and random sequences of
VC announces and withdrawals, each settled through the RpcFabric as the daemon does. At the end,
fresh engines built from the same configurations, given the surviving VC routes in another order
(last DRG first, routes in reverse) and settled once, have exactly the same tables and
advertisements: the result is a function of the configuration and the learned routes (R97-R103).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.config.effective import build_effective
from controlplane.engine.changes import Changes
from controlplane.engine.engine import RouteEngine
from controlplane.engine.rpc import RpcFabric, RpcStore
from controlplane.prefix import AFI_IPV4, parse_prefix
from tests.support.factory import config, dist, table, vc_att, vcn, vcn_att
from tests.support.regions import rpc_att

POOL = ["172.20.0.0/16", "172.20.1.0/24", "10.0.0.0/8", "10.1.1.0/24", "0.0.0.0/0"]
PATHS: list[list[int]] = [[65001], [65001, 65001], [65002, 65003, 65004], []]
MATCHES = ["all", "VCN", "VIRTUAL_CIRCUIT", "REMOTE_PEERING_CONNECTION"]


@st.composite
def designs(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=2, max_value=3))
    raws = []
    for i in range(n):
        atts: list[dict[str, Any]] = [vcn_att(f"v{i}", f"n{i}", f"rt{i}-vcn"), vc_att(f"vc{i}", i + 1, f"rt{i}-vc")]
        for side, j in (("left", i - 1), ("right", i + 1)):
            if 0 <= j < n:
                peer_side = "right" if side == "left" else "left"
                atts.append(rpc_att(f"d{i}-{side}", f"d{j}", f"d{j}-{peer_side}", f"rt{i}-rpc",
                                    export_distribution=draw(st.sampled_from(["default", "default", "none"])),
                                    peering_status=draw(st.sampled_from(["PEERED", "PEERED", "PEERED", "REVOKED"]))))
        tables = [table(f"rt{i}-{kind}", f"rd{i}-{kind}", ecmp=draw(st.booleans())) for kind in ("vcn", "vc", "rpc")]
        dists = [dist(f"rd{i}-{kind}", *draw(st.lists(st.sampled_from(MATCHES), min_size=1, max_size=3, unique=True)))
                 for kind in ("vcn", "vc", "rpc")]
        network = vcn(f"n{i}", f"10.{i + 10}.1.0/24", cidrs=[f"10.{i + 10}.0.0/16"])
        raws.append({"drg": {"name": f"d{i}"}, "vcns": [network],
                     "attachments": atts, "route_tables": tables, "distributions": dists})
    return raws


def build(raws: list[dict[str, Any]]) -> tuple[dict[str, RouteEngine], RpcFabric]:
    engines = {r["drg"]["name"]: RouteEngine(build_effective(config(r))) for r in raws}
    stores: dict[str, RpcStore] = dict(engines)
    fabric = RpcFabric(stores)
    fabric.settle()
    return engines, fabric


def snapshot(engines: dict[str, RouteEngine]) -> dict[str, Any]:
    return {name: (e.route_tables(), [e.advertised(a.name) for a in e.config.attachments if a.bgp is not None])
            for name, e in engines.items()}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs(), st.data())
def test_the_fixed_point_is_a_function_of_configuration_and_learned_routes(
        raws: list[dict[str, Any]], data: st.DataObject) -> None:
    engines, fabric = build(raws)
    learned: dict[tuple[str, str], tuple[int, ...]] = {}  # (drg, prefix) -> AS path on its VC
    for drg in engines:
        engines[drg].set_session_established(f"vc{drg[1:]}", True)
    for _ in range(data.draw(st.integers(min_value=1, max_value=10))):
        drg = data.draw(st.sampled_from(sorted(engines)))
        vc = f"vc{drg[1:]}"
        prefix = data.draw(st.sampled_from(POOL))
        key = [parse_prefix(prefix)[1]]
        if data.draw(st.booleans()) or (drg, prefix) not in learned:
            path = data.draw(st.sampled_from(PATHS))
            changes: Changes = engines[drg].announce(vc, AFI_IPV4, key, path)
            learned[(drg, prefix)] = tuple(path)
        else:
            changes = engines[drg].withdraw(vc, AFI_IPV4, key)
            del learned[(drg, prefix)]
        fabric.settle({drg: changes})
    fresh, fresh_fabric = build(raws)
    for drg in sorted(fresh, reverse=True):
        fresh[drg].set_session_established(f"vc{drg[1:]}", True)
        for (owner, prefix), learned_path in reversed(list(learned.items())):
            if owner == drg:
                fresh[drg].announce(f"vc{drg[1:]}", AFI_IPV4, [parse_prefix(prefix)[1]], list(learned_path))
    fresh_fabric.settle()
    assert snapshot(fresh) == snapshot(engines)
