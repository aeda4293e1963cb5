"""The console's route pages read from the engine equal the old ones cut from the whole document.

The oracle is the console's first pager: ``routes_json`` of the table, its rules filtered by
:func:`old_matching` (kept here as it was: a rule's destination inside or covering an address or CIDR,
else its text starting with the filter) and sliced at the clamped offset. ``RulePages.page`` must give
exactly that document - header, counts, rules in dump order - for random tables (a hub with static,
blackhole, conflict, ECMP and AS_SET rules over IPv4 and IPv6 prefixes that nest; the routing property
test's random designs and steps; every example design, multi-DRG included), for filters cut from the
table's own destinations while typing, blocks around them and odd texts, at every kind of offset and
limit, with the slicing knobs at their values and at tiny ones (every slice its own event-loop step).
Then the view follows the engine: changes, a new configuration while a view is read in slices, and a
change during an IPv6 text scan (a page that says it is not fresh). No timings here:
``bench/dump_bench.py`` measures.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.config.effective import build_effective
from controlplane.console import pages as pages_module
from controlplane.console.filters import Segment, runs, segments
from controlplane.console.pages import RulePages
from controlplane.engine.drgs import Drgs, drgs_from_files
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4, AFI_IPV6, format_prefix, make_key
from tests.support.factory import config, engine, keys
from tests.support.paths import EXAMPLES
from tests.test_route_dump import EXAMPLE_FILES, synthetic
from tests.test_routing_property import PATHS, configs, step
from tests.test_routing_rules import hub, up

Net = tuple[int, int, int]
ODD = ["", " ", "1", "10", "10.", "10.1", " 10.1. ", "2", "25", "0", "0.", "::", ":", "2001:db8:", "2001:db8::",
       "2001:db8::/32", "2001:db8::/", "2001:db8::/6", "10.0.0.0/8", "10.1.2.3", "10.1.2.", "10.1.2.3/", "10.1.0.0/1",
       "10.1.2.300", "10.01", "1.2.3.4.5", "abc", "x", "64.0.1", "/24", "0.0.0.0/0", "::/0", "1::", "abcd:",
       "2001:DB8:", "::ffff:1.2.3.4", "10..1", "172.2", "1.", "255.255.255.255/32", "2001:db8:0:1:", "a"]
V4_BASES = ["10.0.0.0", "10.1.0.0", "10.10.0.0", "100.64.0.0", "172.16.0.0", "1.0.0.0", "0.0.0.0"]
V6_BASES = ["2001:db8::", "2001:db8:0:1::", "2001:db8:1::", "1::", "::", "abcd::"]


# ---- the oracle: the first pager's filter, over the whole document ---------------------------------------


def _net(text: str) -> Net | None:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), net.prefixlen


def old_matching(rules: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The rules a filter kept before: empty, an address or CIDR (inside or covering), or a text prefix."""
    text = text.strip()
    if not text:
        return rules
    block = _net(text) if "/" in text or text.count(".") == 3 or ":" in text else None
    if block is None:
        return [r for r in rules if r["destination"].startswith(text)]

    def overlaps(n: Net | None) -> bool:
        assert block is not None
        if n is None or n[0] != block[0]:
            return False
        shift = (32 if n[0] == 4 else 128) - min(n[2], block[2])
        return n[1] >> shift == block[1] >> shift

    return [r for r in rules if overlaps(_net(r["destination"]))]


def whole_table(drgs: Drgs, table: str, drg: str | None) -> dict[str, Any]:
    """The table's document from ``routes_json``, with its "drg" when the file has several."""
    doc = drgs.routes(table, None, drg)
    if "drgs" in doc:
        item = doc["drgs"][0]
        return {**item["routeTables"][0], "drg": item["drg"]}
    found: dict[str, Any] = doc["routeTables"][0]
    return found


def old_page(drgs: Drgs, table: str, drg: str | None, text: str, offset: int, limit: int) -> dict[str, Any]:
    found = whole_table(drgs, table, drg)
    rules = found["rules"]
    matched = old_matching(rules, text)
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, max(0, len(matched) - 1)))
    header = {k: v for k, v in found.items() if k != "rules"}
    return {"table": header, "filter": text, "total": len(rules), "matched": len(matched), "offset": offset,
            "limit": limit, "rules": matched[offset:offset + limit], "fresh": True, "retryAfterMs": None}


# ---- random tables and filters ------------------------------------------------------------------------


@st.composite
def prefix_keys(draw: st.DrawFn, afi: int) -> int:
    """A key near one of a few bases, of any length: destinations that nest and share text."""
    bits = 32 if afi == AFI_IPV4 else 128
    base = int(ipaddress.ip_address(draw(st.sampled_from(V4_BASES if afi == AFI_IPV4 else V6_BASES))))
    shift = draw(st.sampled_from([0, 8, 16] if afi == AFI_IPV4 else [0, 16, 64, 80, 96]))
    address = (base + (draw(st.integers(0, 0xFFFF)) << shift)) % (1 << bits)
    return make_key(afi, address, draw(st.integers(0, bits)))


@st.composite
def hub_tables(draw: st.DrawFn) -> RouteEngine:
    """rt-hub of the hub design (every attachment imported, ECMP or not) with random static rules
    (a VCN or a missing next hop: blackhole) and random announcements of the VCs and tunnels."""
    raw = hub(ecmp=draw(st.booleans()))
    statics = draw(st.lists(st.tuples(st.sampled_from([AFI_IPV4, AFI_IPV6]), st.sampled_from(["v1", "v-gone"])),
                            max_size=4))
    raw["route_tables"][0]["static_routes"] = [
        {"destination": format_prefix(afi, draw(prefix_keys(afi))), "next_hop": nh} for afi, nh in statics]
    e = engine(raw)
    up(e)
    for _ in range(draw(st.integers(1, 8))):
        afi = draw(st.sampled_from([AFI_IPV4, AFI_IPV4, AFI_IPV6]))
        name = draw(st.sampled_from(["vc1", "vc2", "t1", "t2"]))
        announced = draw(st.lists(prefix_keys(afi), min_size=1, max_size=30))
        path = draw(st.sampled_from(PATHS))
        e.announce(name, afi, announced, [x if isinstance(x, int) else tuple(x) for x in path])
    return e


@st.composite
def blocks(draw: st.DrawFn) -> str:
    """An address or CIDR near the bases or anywhere (a bare address: a /32 or /128 block)."""
    afi = draw(st.sampled_from([AFI_IPV4, AFI_IPV6]))
    bits = 32 if afi == AFI_IPV4 else 128
    anywhere = st.builds(lambda a, n: make_key(afi, a, n), st.integers(0, (1 << bits) - 1), st.integers(0, bits))
    text = format_prefix(afi, draw(st.one_of(prefix_keys(afi), anywhere)))
    return text.partition("/")[0] if draw(st.booleans()) else text


def filters(destinations: list[str]) -> st.SearchStrategy[str]:
    """Odd texts, destinations cut while typing, blocks and addresses."""
    cut = st.builds(lambda d, n: d[:n], st.sampled_from(destinations or ["10.0.0.0/8"]), st.integers(0, 45))
    return st.one_of(st.sampled_from(ODD), cut, blocks())


async def same_pages(data: st.DataObject, drgs: Drgs, pages: RulePages, table: str, drg: str | None,
                     rounds: int = 12) -> None:
    """Random filters, offsets and limits: the new page equals the old one."""
    destinations = [r["destination"] for r in whole_table(drgs, table, drg)["rules"]]
    for _ in range(rounds):
        text = data.draw(filters(destinations))
        expected = old_page(drgs, table, drg, text, 0, 500)
        offset = data.draw(st.one_of(st.integers(-2, expected["matched"] + 3), st.just(expected["matched"] - 1)))
        limit = data.draw(st.one_of(st.integers(-1, 12), st.just(600)))
        assert await pages.page(table, drg, text, offset, limit) == old_page(drgs, table, drg, text, offset, limit), \
            (text, offset, limit)


def knobs(data: st.DataObject) -> tuple[int, int, float]:
    """The slicing knobs: as shipped, or tiny (a slice of 3 or 2 and a pause after every one)."""
    saved = pages_module.SLICE, pages_module.SCAN, pages_module.STEP
    pages_module.SLICE, pages_module.SCAN, pages_module.STEP = data.draw(
        st.sampled_from([saved, (3, 2, 0.0), (1, 1, 0.0)]))
    return saved


def restore(saved: tuple[int, int, float]) -> None:
    pages_module.SLICE, pages_module.SCAN, pages_module.STEP = saved


def still() -> float:
    """A clock that never moves: a view costs nothing, so a changed table is read again at once."""
    return 0.0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_pages_of_random_tables_equal_the_old_pages(data: st.DataObject) -> None:
    e = data.draw(hub_tables())
    drgs = Drgs({"drg1": e}, False)
    saved = knobs(data)
    try:
        asyncio.run(same_pages(data, drgs, RulePages(drgs, clock=still), "rt-hub", None))
    finally:
        restore(saved)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_pages_follow_the_routing_property_designs(data: st.DataObject) -> None:
    """The routing property test's designs and steps (tunnels, loopbacks, hub ingress, new
    configurations): after every step every table pages as before, through one RulePages."""
    e = RouteEngine(build_effective(config(data.draw(configs()))))
    drgs = Drgs({"drg1": e}, False)
    pages = RulePages(drgs, clock=still)
    saved = knobs(data)

    async def run() -> None:
        for _ in range(data.draw(st.integers(1, 6))):
            step(data, e)
            table = data.draw(st.sampled_from([t.name for t in e.config.route_tables]))
            await same_pages(data, drgs, pages, table, None, rounds=4)

    try:
        asyncio.run(run())
    finally:
        restore(saved)


@pytest.mark.parametrize(("design", "learned"), EXAMPLE_FILES)
async def test_every_example_table_pages_as_before(design: str, learned: str) -> None:
    drgs = drgs_from_files(EXAMPLES / design, EXAMPLES / learned)
    pages = RulePages(drgs, clock=still)
    for name, e in drgs.engines.items():
        for t in e.config.route_tables:
            drg = name if drgs.multi else None
            for text in ODD:
                for offset, limit in ((0, 100), (1, 2), (3, 1)):
                    assert await pages.page(t.name, drg, text, offset, limit) == \
                        old_page(drgs, t.name, drg, text, offset, limit), (name, t.name, text)


def test_a_table_of_several_drgs_needs_drg() -> None:
    drgs = drgs_from_files(EXAMPLES / "two-regions.yaml", EXAMPLES / "learned-two-regions.yaml")
    shared = [t.name for t in next(iter(drgs.engines.values())).config.route_tables
              if all(e.config.find_table(t.name) is not None for e in drgs.engines.values())]
    assert shared
    with pytest.raises(ValueError, match="several DRGs"):
        asyncio.run(RulePages(drgs).page(shared[0], None, "", 0, 10))
    with pytest.raises(KeyError):
        asyncio.run(RulePages(drgs).page("no-such-table", None, "", 0, 10))


# ---- the view follows the engine ----------------------------------------------------------------------


async def test_a_view_is_read_again_when_the_engine_changes() -> None:
    e = synthetic()
    drgs = Drgs({"drg1": e}, False)
    pages = RulePages(drgs, clock=still)

    async def same(text: str, offset: int = 0) -> None:
        assert await pages.page("rt-hub", None, text, offset, 50) == old_page(drgs, "rt-hub", None, text, offset, 50)

    await same("")
    await same("64.0.1", 20)
    e.withdraw("vc2", AFI_IPV4, keys("64.0.5.0/24", "172.22.0.0/16"))
    await same("64.0.5.0/24")
    e.announce("vc2", AFI_IPV6, keys("2001:db8:0:1::/64", "2001:db8:ff::/48"), [65001])  # a conflict, a new one
    await same("2001:db8:")
    raw = hub(ecmp=False)
    raw["route_tables"].reverse()  # rt-hub is another table index now
    e.apply_config(build_effective(config(raw)))
    await same("")
    await same("2001:db8:0", 3)


async def test_a_new_configuration_while_a_view_is_read_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The view is read again under the new configuration (its table index names another table)."""
    monkeypatch.setattr(pages_module, "SLICE", 100)
    monkeypatch.setattr(pages_module, "STEP", 0.0)
    e = synthetic()
    drgs = Drgs({"drg1": e}, False)
    task = asyncio.create_task(RulePages(drgs, clock=still).page("rt-hub", None, "", 0, 100))
    await asyncio.sleep(0)  # the task has sorted the IPv4 keys and paused before counting them
    raw = hub(ecmp=True)
    raw["route_tables"].reverse()
    e.apply_config(build_effective(config(raw)))
    assert await task == old_page(drgs, "rt-hub", None, "", 0, 100)


async def test_a_page_whose_table_changed_during_its_scan_is_not_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """An IPv6 text scan lets the loop run between slices; a change meanwhile makes the page stale, to ask
    again once the duty window of the table's reading has passed."""
    monkeypatch.setattr(pages_module, "SCAN", 4)
    monkeypatch.setattr(pages_module, "STEP", 0.0)
    now = [0.0]
    e = synthetic()
    drgs = Drgs({"drg1": e}, False)
    pages = RulePages(drgs, clock=lambda: now[0])
    await pages.page("rt-hub", None, "", 0, 10)
    task = asyncio.create_task(pages.page("rt-hub", None, "2001:db8:0:", 0, 10))
    await asyncio.sleep(0)
    e.withdraw("vc1", AFI_IPV6, keys("2001:db8:0:3::/64"))
    stale = await task
    assert (stale["fresh"], stale["retryAfterMs"], stale["matched"]) == (False, 1, 49)
    fresh = await pages.page("rt-hub", None, "2001:db8:0:", 0, 10)
    assert fresh == old_page(drgs, "rt-hub", None, "2001:db8:0:", 0, 10) and fresh["matched"] == 48


# ---- filters ---------------------------------------------------------------------------------------------


def test_runs_of_consecutive_values() -> None:
    assert list(runs([1, 10, 11, 12, 100, 102, 103])) == [(1, 1), (10, 12), (100, 100), (102, 103)]
    assert list(runs([])) == []


def key(address: str, length: int = 0) -> int:
    """A key, host bits as given."""
    return int(ipaddress.ip_address(address)) << 8 | length


def test_filters_are_key_ranges() -> None:
    assert segments("10.1.") == [Segment(0, key("10.1.0.0"), key("10.1.255.255", 255))]
    assert [s.fam for s in segments("1")] == [0, 0, 0, 1]  # 1, 10-19, 100-199; and IPv6 text, checked
    assert segments("1")[-1].starts == "1"
    assert segments("10.1.0.0/") == [Segment(0, key("10.1.0.0"), key("10.1.0.0", 32))]  # every length
    assert segments("10.1.0.0/33") == []  # "10.1.0.0/3" is a block
    covering = segments("10.1.2.3")  # 10.0.0.0/7 .. 10.1.2.2/31 that cover it, then the /32 itself
    assert len(covering) == 33 and covering[-1].lo == covering[-1].hi - 0xFF
    assert segments("2001:db8:") == [Segment(1, key("2001:db8::"), key("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 255),
                                             "2001:db8:")]
    assert segments("10.01") == segments("2001:DB8:") == segments("10.1.2.300") == []
