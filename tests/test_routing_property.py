"""Property: the incremental engine always equals a fresh one, and its Changes are exact.

Random small configurations (R31 order, ECMP, static rules and blackholes, transport and internet
tunnels, STATIC tunnels, prefix limits, export none, a hub VCN whose ingress route table adds offers)
and random sequences of announce, withdraw, session changes and configuration changes. After every step:

- shadow copies of every route table and every Adj-RIB-Out, built only from the returned Changes
  (starting from ``refresh()``), equal the engine's ``route_tables()`` and ``advertised()``; each
  delta's "before" matches the shadow, so the diffs are exact, not merely convergent;
- tunnel states follow the reported transitions;
- a session that is not Established advertises nothing; a headend is only in its own VC's table and
  advertised over that VC only, and in a valid design no table used by a VCN routes to a loopback
  (R5, R40, R50);

and at the end a fresh engine built from the final configuration with the surviving sessions and
routes replayed has the same tables, advertisements, tunnel states and sessions.

A second property drives the redundant-VC shape through the grouped resolution of contested keys
(engine/contested.py): two or three VCs announcing overlapping prefix sets (whole ranges and random
subsets, shared and distinct AS paths), statics and VCN routes on some of those keys, ECMP on some
tables, stores importing more than ``WIDE`` attachments, withdrawals and session downs in random
order - checked as above, against a twin engine that resolves key by key (the same Changes, in the
same order) and against a fresh engine after every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import controlplane.engine.bulk as routing_module
from controlplane.config.effective import build_effective
from controlplane.config.validate import validate
from controlplane.engine.changes import Changes
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4, AFI_IPV6, parse_prefix
from tests.support.factory import config, dist, table, tunnel_att, vc_att, vcn, vcn_att

POOL = {AFI_IPV4: ["172.20.0.0/16", "172.20.1.0/24", "10.1.0.0/24", "192.168.200.1/32", "192.168.200.0/30",
                   "172.16.255.1/32", "0.0.0.0/0"],
        AFI_IPV6: ["2001:db8::/32", "2001:db8:1::/48"]}
PATHS: list[list[Any]] = [[], [65001], [65001, 65001], [65002], [65001, [65010, 65011]], [65003, 65004, 65005]]
MATCHES = ["all", "VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL", "v1", "v2", "vc1", "vc2", "t1", "t2", "t3", "t4"]
TABLES = ["rt-a", "rt-b", "rt-c"]


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    def table_choice() -> str | None:
        return draw(st.sampled_from([None, *TABLES]))

    def maybe(att: dict[str, Any]) -> dict[str, Any]:
        choice = table_choice()
        if choice:
            att["route_table"] = choice
        return att

    limits = {"max_prefixes": {"ipv4": draw(st.sampled_from([2, 100])), "ipv6": 100}}
    atts: list[dict[str, Any]] = []
    if draw(st.booleans()):
        atts.append(maybe(vcn_att("v1", "n1")))
    hub = draw(st.sampled_from([None, "rt-in", "default"]))  # v2 as a hub: its ingress table's destinations (R78)
    v2 = vcn_att("v2", "n2", vcn_route_type=draw(st.sampled_from(["SUBNET_CIDRS", "VCN_CIDRS"])))
    if hub:
        v2["ingress_route_table"] = hub
    atts.append(maybe(v2))
    atts.append(maybe(vc_att("vc1", 0, transport_only=draw(st.booleans()), bgp=dict(limits))))
    if draw(st.booleans()):
        atts.append(maybe(vc_att("vc2", 1, export_distribution=draw(st.sampled_from(["default", "none"])))))
    atts.append(maybe(tunnel_att("t1", 1, "vc1", bgp=dict(limits))))
    if draw(st.booleans()):
        atts.append(maybe(tunnel_att("t2", 2, "vc1", cpe=draw(st.sampled_from(["192.168.200.1", "192.168.200.2"])))))
    if draw(st.booleans()):
        vc = "vc2" if any(a["name"] == "vc2" for a in atts) else "vc1"
        atts.append(maybe(tunnel_att("t3", 3, vc, static_routes=draw(st.lists(st.sampled_from(POOL[AFI_IPV4]),
                                                                             min_size=1, max_size=2, unique=True)))))
    if draw(st.booleans()):
        atts.append(maybe(tunnel_att("t4", 4, None)))
    atts = draw(st.permutations(atts))
    tables = []
    for name in TABLES:
        statics = draw(st.lists(st.tuples(st.sampled_from(POOL[AFI_IPV4] + POOL[AFI_IPV6]),
                                          st.sampled_from(["v1", "v2", "gone"])), max_size=2,
                                unique_by=lambda s: s[0]))
        tables.append(table(name, draw(st.sampled_from([None, "d-a", "d-b", "d-c"])), ecmp=draw(st.booleans()),
                            static=statics))
    dists = [dist(name, *draw(st.lists(st.sampled_from(MATCHES), max_size=3))) for name in ("d-a", "d-b", "d-c")]
    n2 = vcn("n2", "10.2.0.0/24", "10.2.1.0/24", cidrs=["10.2.0.0/16"])
    n2["appliances"] = [{"name": "fw", "private_ip": "10.2.0.4", "subnet": "10.2.0.0/24",
                         "skip_source_dest_check": True}]
    ingress = draw(st.lists(st.sampled_from(POOL[AFI_IPV4] + ["10.2.0.0/24"]), max_size=3, unique=True))
    n2["route_tables"] = [{"name": "rt-in", "rules": [{"destination": d, "target": {"private_ip": "fw"}}
                                                      for d in ingress]}]
    return {"drg": {"name": "drg1", "vpn_private_asn": draw(st.sampled_from([64512, 65100]))},
            "vcns": [vcn("n1", "10.1.0.0/24"), n2],
            "attachments": atts, "route_tables": tables, "distributions": dists}


class Shadow:
    """Tables, Adj-RIB-Outs and tunnel states rebuilt from Changes alone."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.adverts: dict[str, dict[str, tuple[list[int], str]]] = {}
        self.tunnels: dict[str, bool] = {}

    def apply(self, changes: Changes) -> None:
        for delta in changes.tables:
            every = delta.rule_changes()
            ops = [c["op"] for c in every]  # counts() judges like rule_changes, without JSON
            assert delta.counts() == {op: ops.count(op) for op in ("add", "remove", "change")}, delta.table
            assert delta.edge_changes() == ((every[0], every[-1]) if every else (None, None))
            rules = self.tables.setdefault(delta.table, {})
            for afi, key, before, after in delta.entries():
                destination = delta.rules(afi, key, after, after=True)
                prefix = (destination or delta.rules(afi, key, before, after=False))[0]["destination"]
                assert rules.get(prefix, []) == delta.rules(afi, key, before, after=False), prefix
                if after:
                    rules[prefix] = delta.rules(afi, key, after, after=True)
                else:
                    rules.pop(prefix, None)
        for advert in changes.advertisements:
            rib = self.adverts.setdefault(advert.attachment, {})
            for prefix in advert.withdrawn():
                assert prefix in rib, (advert.attachment, prefix)
                del rib[prefix]
            for prefix in advert.announced():
                rib[prefix] = (list(advert.as_path), advert.next_hop)
        for transition in changes.tunnels:
            self.tunnels[transition.tunnel] = transition.up

    def check(self, engine: RouteEngine) -> None:
        actual: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for t in engine.route_tables()["routeTables"]:
            for rule in t["rules"]:
                actual.setdefault(t["name"], {}).setdefault(rule["destination"], []).append(rule)
        assert {k: v for k, v in self.tables.items() if v} == actual
        sessions = {s.session for a in engine.config.attachments if a.bgp is not None for s in a.sessions}
        for name in sessions | set(self.adverts):
            expected: dict[str, tuple[list[int], str]] = {}
            if name in sessions:  # the Changes carry the Adj-RIB-Out to hold, sent once Established
                doc = engine.advertised(name)
                established = engine.is_established(name) if doc["state"] is not None else False
                assert doc["routes"] == [] or established, name  # nothing while not Established
                held = doc["routes"] if established else doc.get("wouldAdvertise", [])
                expected = {r["prefix"]: (r["asPath"], r["nextHop"]) for r in held}
            assert self.adverts.get(name, {}) == expected, name
        check_headend_scope(engine)
        for att in engine.config.attachments:
            if att.type == "IPSEC_TUNNEL":
                assert self.tunnels[att.name] == engine.tunnel_state(att.name)[0], att.name


def check_headend_scope(engine: RouteEngine) -> None:
    """R40, R50, R5: a loopback's headend is only in the table of the VC its tunnel rides on, is
    advertised over that VC only, and (in a valid design) no table a VCN uses routes to a loopback."""
    cfg = engine.config
    valid = validate(cfg.source).ok
    for t in engine.route_tables()["routeTables"]:
        users = [cfg.attachment(a) for a in t["attachments"]]
        for rule in t["rules"]:
            if rule["routeProvenance"] != "LOOPBACK":
                continue
            carrier = cfg.attachment(rule["nextHop"]).transport_attachment
            assert cfg.attachment(str(carrier)).route_table == t["name"], (t["name"], rule["destination"])
            if valid:
                assert all(u.type != "VCN" for u in users), t["name"]
    for att in cfg.attachments:
        if att.bgp is None:
            continue
        doc = engine.advertised(att.name)
        active = {r["destination"]: r for r in engine.route_table(att.route_table)["rules"]
                  if not r["isConflict"] and r["routeType"] == "DYNAMIC"}
        for r in doc["routes"] + doc.get("wouldAdvertise", []):
            rule = active.get(r["prefix"])
            if rule is not None and rule["routeProvenance"] == "LOOPBACK":
                carrier = cfg.attachment(rule["nextHop"]).transport_attachment
                assert carrier == att.name, (att.name, r["prefix"])


def replayed(engine: RouteEngine) -> RouteEngine:
    """A fresh engine from the final configuration with the surviving sessions and routes."""
    fresh = RouteEngine(build_effective(engine.config.source))
    learners = [a for a in engine.config.attachments if a.speaks_bgp]
    for att in sorted(learners, key=lambda a: a.type != "VIRTUAL_CIRCUIT"):
        if att.type == "IPSEC_TUNNEL" and not fresh.tunnel_state(att.name)[0]:
            assert engine.received_count(att.name) == 0 and not engine.is_established(att.name)
            continue
        for session in [s.session for s in att.sessions] or [att.name]:  # a dual-stack VC has two (R53)
            if engine.is_established(session):
                fresh.set_session_established(session, True)
        for afi, key, path in engine.learned_routes(att.name):
            fresh.announce(att.name, afi, [key], path)
    return fresh


def step(data: st.DataObject, engine: RouteEngine) -> Changes:
    learners = [a.name for a in engine.config.attachments if a.speaks_bgp]
    kind = data.draw(st.sampled_from(["announce", "announce", "announce", "withdraw", "up", "down", "config"]))
    if kind == "config":
        return engine.apply_config(build_effective(config(data.draw(configs()))))
    name = data.draw(st.sampled_from(learners))
    if kind in ("up", "down"):
        return engine.set_session_established(name, kind == "up") if data.draw(st.booleans()) or kind == "up" \
            else engine.session_down(name)
    afi = data.draw(st.sampled_from([AFI_IPV4, AFI_IPV4, AFI_IPV6]))
    prefixes = data.draw(st.lists(st.sampled_from(POOL[afi]), min_size=1, max_size=4))
    keys = [parse_prefix(p)[1] for p in prefixes]
    if kind == "withdraw":
        return engine.withdraw(name, afi, keys)
    path = data.draw(st.sampled_from(PATHS))
    return engine.announce(name, afi, keys, [x if isinstance(x, int) else tuple(x) for x in path])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_incremental_state_and_changes_equal_a_fresh_engine(data: st.DataObject) -> None:
    with knobs_drawn(data):
        run_scenario(data)


@contextmanager
def knobs_drawn(data: st.DataObject) -> Iterator[None]:
    """Both ways of recording bulk removals, both lookups; stores with and without an owner index;
    contested keys resolved one by one (the default for calls this small) and in groups."""
    knobs = routing_module.SPARSE, routing_module.FEW, routing_module.WIDE, routing_module.GROUPED
    routing_module.SPARSE, routing_module.FEW = data.draw(st.sampled_from([knobs[:2], (0, 0), (0, 16), (10**9, 0)]))
    routing_module.WIDE = data.draw(st.sampled_from([knobs[2], 0]))
    routing_module.GROUPED = data.draw(st.sampled_from([knobs[3], 0, 3]))
    try:
        yield
    finally:
        routing_module.SPARSE, routing_module.FEW, routing_module.WIDE, routing_module.GROUPED = knobs


def run_scenario(data: st.DataObject) -> None:
    engine = RouteEngine(build_effective(config(data.draw(configs()))))
    shadow = Shadow()
    shadow.apply(engine.refresh())
    shadow.check(engine)
    for _ in range(data.draw(st.integers(min_value=1, max_value=14))):
        shadow.apply(step(data, engine))
        shadow.check(engine)
    fresh = replayed(engine)
    assert fresh.route_tables() == engine.route_tables()
    for att in engine.config.attachments:
        if att.bgp is not None:
            assert fresh.advertised(att.name) == engine.advertised(att.name)
        if att.type == "IPSEC_TUNNEL":
            assert fresh.tunnel_state(att.name) == engine.tunnel_state(att.name)
        if att.speaks_bgp:
            assert fresh.is_established(att.name) == engine.is_established(att.name)
            assert sorted(fresh.learned_routes(att.name)) == sorted(engine.learned_routes(att.name))


RANGE = [f"10.100.{i}.0/24" for i in range(24)] + ["10.3.0.0/24", "10.4.0.0/24", "0.0.0.0/0"]  # 2 VCN subnets
RANGE6 = [f"2001:db8:{i:x}::/48" for i in range(20)]
VC_PATHS: list[list[int]] = [[65001], [65001], [65001, 65001], [65002], [65001, 65001, 65001]]


@st.composite
def redundant_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Two or three VCs in one table, one to seven VCNs: rt-all imports everything (a wide store from
    nine imports on), rt-vc the VCs only, rt-mix the VCs and some VCNs; statics on keys the VCs offer."""
    vcs = draw(st.integers(min_value=2, max_value=3))
    vcns = draw(st.integers(min_value=1, max_value=7))
    atts = [vc_att(f"vc{i}", i, table=draw(st.sampled_from(["rt-all", "rt-vc", "rt-mix"])),  # dual-stack (R53)
                   bgp={"ipv6": {"oracle_ip": f"2001:db8:ffff:{i}::1/64", "customer_ip": f"2001:db8:ffff:{i}::2/64",
                                 "peer": f"127.0.3.{i}"}}) for i in range(vcs)]
    atts += [vcn_att(f"v{i}", f"n{i}", table=draw(st.sampled_from(["rt-all", "rt-mix"]))) for i in range(1, vcns + 1)]
    atts = draw(st.permutations(atts))  # the R31 order
    tables = []
    for name in ("rt-all", "rt-vc", "rt-mix"):
        statics = draw(st.lists(st.tuples(st.sampled_from(RANGE + RANGE6), st.sampled_from(["v1", "gone"])),
                                max_size=3, unique_by=lambda s: s[0]))
        tables.append(table(name, f"d-{name}", ecmp=draw(st.booleans()), static=statics))
    mix = draw(st.lists(st.sampled_from([f"v{i}" for i in range(1, vcns + 1)]), max_size=3))
    dists = [dist("d-rt-all", "all"), dist("d-rt-vc", "VIRTUAL_CIRCUIT"), dist("d-rt-mix", "VIRTUAL_CIRCUIT", *mix)]
    return {"drg": {"name": "drg1"},
            "vcns": [vcn(f"n{i}", f"10.{i}.0.0/24", cidrs=[f"10.{i}.0.0/16"]) for i in range(1, vcns + 1)],
            "attachments": atts, "route_tables": tables, "distributions": dists}


def redundant_step(data: st.DataObject, engine: RouteEngine) -> Callable[[RouteEngine], Changes]:
    """One input, drawn for ``engine`` and applicable to its twin."""
    vcs = [a for a in engine.config.attachments if a.type == "VIRTUAL_CIRCUIT"]
    kind = data.draw(st.sampled_from(["announce", "announce", "announce", "withdraw", "withdraw", "down", "up"]))
    vc = data.draw(st.sampled_from(vcs))
    name = vc.name
    if kind in ("up", "down"):  # one of its sessions: the IPv4 one is named as the VC
        session = data.draw(st.sampled_from([s.session for s in vc.sessions]))
        return lambda e: e.set_session_established(session, kind == "up")
    afi = data.draw(st.sampled_from([AFI_IPV4, AFI_IPV4, AFI_IPV6]))
    pool = RANGE if afi == AFI_IPV4 else RANGE6
    whole = data.draw(st.sampled_from(["all", "range", "some"]))
    if whole == "all":
        prefixes = list(pool)
    elif whole == "range":
        start = data.draw(st.integers(min_value=0, max_value=len(pool) - 1))
        prefixes = pool[start:start + data.draw(st.integers(min_value=1, max_value=len(pool)))]
    else:
        prefixes = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(pool)))
    keys = [parse_prefix(p)[1] for p in prefixes]
    if kind == "withdraw":
        return lambda e: e.withdraw(name, afi, keys)
    path = data.draw(st.sampled_from(VC_PATHS))
    return lambda e: e.announce(name, afi, keys, path)


@contextmanager
def key_by_key() -> Iterator[None]:
    """Contested keys resolved one by one, whatever the call's size."""
    knob, routing_module.GROUPED = routing_module.GROUPED, 10**9
    try:
        yield
    finally:
        routing_module.GROUPED = knob


def exactly(changes: Changes) -> list[Any]:
    """Every table change in its order (rule sets by value) and every advertisement change."""
    return [[(d.table, list(d.entries())) for d in changes.tables],
            [(a.attachment, a.announce, a.withdraw) for a in changes.advertisements]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_redundant_vcs_equal_a_fresh_engine(data: st.DataObject) -> None:
    with knobs_drawn(data):
        source = config(data.draw(redundant_configs()))
        engine = RouteEngine(build_effective(source))
        twin = RouteEngine(build_effective(source))  # resolves key by key: the same Changes, in the same order
        shadow = Shadow()
        shadow.apply(engine.refresh())
        for _ in range(data.draw(st.integers(min_value=1, max_value=10))):
            step = redundant_step(data, engine)
            changes = step(engine)
            shadow.apply(changes)
            shadow.check(engine)
            with key_by_key():
                assert exactly(changes) == exactly(step(twin))
                fresh = replayed(engine)
            assert fresh.route_tables() == engine.route_tables()
            for att in engine.config.attachments:
                for session in att.sessions:
                    assert fresh.advertised(session.session) == engine.advertised(session.session)
                    assert fresh.is_established(session.session) == engine.is_established(session.session)
                if att.bgp is not None:
                    assert sorted(fresh.learned_routes(att.name)) == sorted(engine.learned_routes(att.name))
        rebuilt = engine.apply_config(build_effective(engine.config.source))  # full recomputation
        assert not rebuilt.tables and not rebuilt.advertisements
