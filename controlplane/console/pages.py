"""One route table of ``drg routes --json``, filtered by prefix and cut into pages for the console.

A 1,000,000-rule table must stay usable in a browser and must not stall the daemon: the page asks for
``limit`` rules from ``offset`` of the rules that match its filter, and a page costs its own rules and
a few bisections, never a pass over the table in one event-loop step. Filters (``filters.py``):

* empty: every rule;
* an address or CIDR (``10.1.0.0/16``, ``10.1.2.3``): the rules whose destination lies inside it or
  covers it (same family), i.e. what a packet to that block could match;
* any other text: the rules whose destination starts with it (``10.1.`` while typing).

How it works. :class:`RulePages` reads the engine of the table (``route_plan``, as the streamed dump
does, ``engine/dump.py``): the rules of ``drg routes --json`` are the table's destinations in key
order, IPv4 then IPv6 (``RouteEngine.keys``), each with its rules in ``RouteEngine.rules`` order. It
keeps one table's *view*: those sorted keys and, in a family where some destination has several
rules (ECMP, conflicts, a static rule), the count of rules before each destination (an ``array``,
from ``RouteEngine.rule_counts``); elsewhere a destination's position is its rule's. A filter is a
few key ranges (``filters.segments``): bisecting the keys turns them into runs of positions, the
counts turn those into rules and a rule offset into a destination, and only the page's rules are
rendered (``RuleContext.rule_json``). An IPv6 text filter's range is checked destination by
destination, formatted in slices. A view keeps the runs of its last ``KEPT`` filters.

A view holds while the engine's ``generation`` is the one it was read at. Reading it costs one sort
of the keys (some 25 ms per million, the streamed dump's first step too) and C-level counting in
slices; work spread over slices (counting, an IPv6 text scan) lets the event loop run once a step
has taken ``STEP`` seconds, so :meth:`RulePages.page` is a coroutine. While routes churn, a changed
table is read again no sooner than ``DUTY`` times the cost of its last reading after it: a page in
that window comes from the old keys (with the rules as they are now) and says ``"fresh": false``
with ``retryAfterMs``, when the page asks again, so reading tables never takes more than a fifth of
the loop from BGP. A page whose table changed while it was computed over several steps says so too.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, compress, islice, repeat
from typing import Any, Protocol

from controlplane.config.effective import EffectiveConfig
from controlplane.console.filters import runs, segments
from controlplane.engine.dump import RoutePlan
from controlplane.engine.engine import RouteEngine
from controlplane.errors import NotFound
from controlplane.prefix import format_prefix, format_prefixes

MAX_LIMIT = 500  # rules per page, at most
DUTY = 4.0  # a changed table is read again no sooner than DUTY x its last reading's cost
STEP = 0.02  # seconds of sliced work per event-loop step (and one slice more)
SLICE = 65_536  # destinations counted per slice
SCAN = 1024  # IPv6 destinations formatted per slice of a text filter's check
KEPT = 16  # filters whose runs a view keeps


class RoutesTarget(Protocol):
    def route_plan(self, table: str | None, attachment: str | None, drg: str | None) -> RoutePlan: ...


class _Steps:
    """Work spread over event-loop steps: ``pause()`` lets the loop run once this step has taken
    ``STEP`` seconds; ``total()`` is the seconds of the steps (what the work cost the loop)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.mark = clock()
        self.spent = 0.0

    async def pause(self) -> None:
        now = self.clock()
        if now - self.mark >= STEP:
            self.spent += now - self.mark
            await asyncio.sleep(0)
            self.mark = self.clock()

    def total(self) -> float:
        return self.spent + self.clock() - self.mark


@dataclass
class _Runs:
    """What a filter keeps of a view: runs of destinations (family, first position, end position) in
    dump order, and the number of rules up to the end of each."""

    runs: list[tuple[int, int, int]] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def add(self, view: _View, fam: int, first: int, end: int) -> None:
        self.runs.append((fam, first, end))
        self.ends.append(self.matched + view.before(fam, end) - view.before(fam, first))

    @property
    def matched(self) -> int:
        return self.ends[-1] if self.ends else 0


@dataclass
class _View:
    """One table's destinations at ``generation``: per family the sorted keys and, where some destination
    has several rules, the rules before each position (``starts``; None: one rule each)."""

    engine: RouteEngine
    name: str
    t: int
    config: EffectiveConfig
    generation: int
    keys: list[list[int]] = field(default_factory=list)
    starts: list[array[int] | None] = field(default_factory=list)
    at: float = 0.0  # when it was read (the clock of RulePages)
    cost: float = 0.0  # seconds of event loop its reading took
    filters: dict[str, _Runs] = field(default_factory=dict)

    def before(self, fam: int, position: int) -> int:
        """The rules of family ``fam`` before the destination at ``position``."""
        starts = self.starts[fam]
        return position if starts is None else starts[position]

    def total(self) -> int:
        return self.before(0, len(self.keys[0])) + self.before(1, len(self.keys[1]))


class RulePages:
    """Pages of one table's rules for the console (``GET /console/api/routes``)."""

    def __init__(self, target: RoutesTarget, clock: Callable[[], float] = time.perf_counter) -> None:
        self.target = target
        self.clock = clock
        self._view: _View | None = None  # one table at a time: bounded memory
        self._lock = asyncio.Lock()  # one reading at a time: a second page waits for it and shares it

    async def page(self, table: str, drg: str | None, text: str, offset: int, limit: int) -> dict[str, Any]:
        """``limit`` matching rules from ``offset``, with the table's header and the counts."""
        plan = self.target.route_plan(table, None, drg)
        if len(plan.drgs) != 1:  # a multi-DRG daemon: the table of the one DRG that has it (drg= when several do)
            raise ValueError(f"route table {table!r} is in several DRGs; say which with drg=")
        owner, engine, _ = plan.drgs[0]
        while True:
            view = await self._current(engine, table)
            kept = await self._filtered(view, text)
            if engine.config is view.config:  # else the view's table index may name another table now
                break
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, max(0, kept.matched - 1)))
        header = engine.table_head(table)
        if plan.multi:
            header["drg"] = owner
        stale = view.generation != engine.generation
        retry = max(0.0, DUTY * view.cost - (self.clock() - view.at))
        return {"table": header, "filter": text, "total": view.total(), "matched": kept.matched, "offset": offset,
                "limit": limit, "rules": _rules(view, kept, offset, limit), "fresh": not stale,
                "retryAfterMs": int(retry * 1000) + 1 if stale else None}

    async def _current(self, engine: RouteEngine, name: str) -> _View:
        """The table's view: the kept one while it holds or in its duty window (same configuration), else
        a new one."""
        async with self._lock:
            view = self._view
            if view is not None and view.engine is engine and view.name == name and (
                    view.generation == engine.generation
                    or (view.config is engine.config and self.clock() - view.at < DUTY * view.cost)):
                return view
            self._view = None  # the old view's memory goes before the new one is read
            steps = _Steps(self.clock)
            while (view := await _read(engine, name, steps)) is None:  # a new configuration came meanwhile
                continue
            view.at, view.cost = self.clock(), steps.total()
            self._view = view
            return view

    async def _filtered(self, view: _View, text: str) -> _Runs:
        """The runs of destinations a filter keeps (see ``filters.py``), kept with the view."""
        found = view.filters.get(text.strip())
        if found is not None:
            return found
        kept = _Runs()
        steps = _Steps(self.clock)
        for segment in segments(text):
            fam, keys = segment.fam, view.keys[segment.fam]
            first = bisect_left(keys, segment.lo)
            end = bisect_right(keys, segment.hi, first)
            if segment.starts is None:
                if first < end:
                    kept.add(view, fam, first, end)
                continue
            for i in range(first, end, SCAN):  # an IPv6 text: each destination's text, a slice at a time
                texts = format_prefixes(fam + 1, keys[i:min(i + SCAN, end)])
                hits = compress(range(i, i + len(texts)), map(str.startswith, texts, repeat(segment.starts)))
                for a, b in runs(hits):
                    kept.add(view, fam, a, b + 1)
                await steps.pause()
        if len(view.filters) >= KEPT:
            del view.filters[next(iter(view.filters))]
        view.filters[text.strip()] = kept
        return kept


async def _read(engine: RouteEngine, name: str, steps: _Steps) -> _View | None:
    """A table's view, counted in slices; None when a new configuration comes meanwhile (its table
    index may name another table)."""
    config = engine.config
    try:
        view = _View(engine, name, engine.table_index(name), config, engine.generation)
    except KeyError as exc:
        raise NotFound(str(exc.args[0])) from exc
    for fam in (0, 1):
        keys = engine.keys(view.t, fam)
        view.keys.append(keys)
        view.starts.append(None)
        for i in range(0, len(keys), SLICE):
            await steps.pause()
            if engine.config is not config:
                return None
            counts = engine.rule_counts(view.t, fam, keys[i:i + SLICE])
            starts = view.starts[fam]
            if starts is None and sum(counts) != len(counts):  # the first destination with several rules
                starts = view.starts[fam] = array("q", range(i + 1))
            if starts is not None:
                starts.extend(islice(accumulate(counts, initial=starts[-1]), 1, None))
        await steps.pause()
        if engine.config is not config:
            return None
    return view


def _rules(view: _View, kept: _Runs, offset: int, limit: int) -> list[dict[str, Any]]:
    """``limit`` kept rules from the ``offset``-th: its run and destination found by bisection, then the
    page's destinations one by one."""
    engine, t = view.engine, view.t
    rule_json = engine.rules_ctx.rule_json
    out: list[dict[str, Any]] = []
    index = bisect_right(kept.ends, offset)  # the run holding the offset-th rule
    skip = offset - (kept.ends[index - 1] if index else 0)  # its rules before that one
    for fam, first, end in (kept.runs[i] for i in range(index, len(kept.runs))):
        keys, starts = view.keys[fam], view.starts[fam]
        rule = view.before(fam, first) + skip  # the family's rule to start at
        position = rule if starts is None else bisect_right(starts, rule, first, end) - 1
        skip = rule - view.before(fam, position)
        for p in range(position, end):
            key = keys[p]
            rules = engine.rules(t, fam, key)[skip:skip + limit - len(out)]
            destination = format_prefix(fam + 1, key)
            out.extend(rule_json(destination, r) for r in rules)
            skip = 0
            if len(out) >= limit:
                return out
    return out
