"""What one call of the route engine changed: table diffs, advertisement diffs, tunnels, prefix limits.

How it works: the engine keeps rules compact and so do the diffs. A rule is a tuple
``(next_hop_index, as_path, flags)``; all rules of one destination in one table form a *rule set*
(static first, then the dynamic candidates in attachment order). A :class:`TableDelta` stores, per
address family, three parallel lists - destination keys, the rule set before, the rule set after - so
importing a million routes costs three list slots per table and destination, and the rule sets of
the common case (one candidate, one AS path per announce call) are one shared tuple. JSON is built only
when asked for, through a :class:`RuleContext` (attachment index -> name, id, provenance) captured when the
delta was made, so a delta stays valid after the engine moves on or its configuration changes.
Advertisement diffs (R23, R24, R33) are derived lazily from the table deltas of the tables that
BGP attachments advertise; ``apply_config`` supplies them ready-made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_not
from typing import Any

from controlplane.engine.rules import (
    RuleContext,
    RuleSet,
)
from controlplane.prefix import format_prefix as format_key

_EMPTY_LISTS: tuple[list[int], list[RuleSet], list[RuleSet]] = ([], [], [])  # shared, never written


class TableDelta:
    """The destinations of one route table whose rules changed, with the rule sets before and after."""

    __slots__ = ("_lists", "_memo", "_rules_ctx", "advertisers", "table", "table_id")

    def __init__(self, table: str, table_id: str, before: RuleContext, after: RuleContext,
                 advertisers: tuple[AdvertTarget, ...] = ()) -> None:
        self.table = table
        self.table_id = table_id
        self.advertisers = advertisers
        self._rules_ctx = (before, after)
        self._lists: list[tuple[list[int], list[RuleSet], list[RuleSet]]] = [_EMPTY_LISTS, _EMPTY_LISTS]
        self._memo: dict[str, Any] = {}  # counts() and event data, once computed (shared by a group's deltas)

    def lists(self, fam: int) -> tuple[list[int], list[RuleSet], list[RuleSet]]:
        """The (keys, before, after) lists of family index ``fam`` (0 IPv4, 1 IPv6), for the engine."""
        self._memo.clear()  # about to be written
        lists = self._lists[fam]
        if lists is _EMPTY_LISTS:
            lists = self._lists[fam] = ([], [], [])
        return lists

    def __len__(self) -> int:
        return len(self._lists[0][0]) + len(self._lists[1][0])

    def memo(self) -> dict[str, Any]:
        """A dict for what is derived from the changes alone (the event data of ``events/event.py``):
        shared by the deltas of tables that share one store, so it is derived once per group; emptied
        whenever the changes are written."""
        return self._memo

    def compact(self) -> None:
        """Merge repeated destinations (first before, last after) and drop those that did not change."""
        self._memo.clear()
        for fam, (keys, before, after) in enumerate(self._lists):
            if not keys:
                continue
            keys, before, after = self.lists(fam)
            merged: dict[int, list[RuleSet]] = {}
            for key, b, a in zip(keys, before, after, strict=True):
                slot = merged.get(key)
                if slot is None:
                    merged[key] = [b, a]
                else:
                    slot[1] = a
            keys.clear()
            before.clear()
            after.clear()
            for key, (b, a) in merged.items():
                if b != a:
                    keys.append(key)
                    before.append(b)
                    after.append(a)

    def entries(self) -> Iterator[tuple[int, int, RuleSet, RuleSet]]:
        """``(afi, key, rules before, rules after)`` per changed destination."""
        for fam, (keys, before, after) in enumerate(self._lists):
            for key, b, a in zip(keys, before, after, strict=True):
                yield fam + 1, key, b, a

    def destinations(self) -> list[str]:
        return [format_key(afi, key) for afi, key, _, _ in self.entries()]

    def rules(self, afi: int, key: int, rules: RuleSet, after: bool) -> list[dict[str, Any]]:
        ctx = self._rules_ctx[1 if after else 0]
        destination = format_key(afi, key)
        return [ctx.rule_json(destination, rule) for rule in rules]

    def _ops(self, afi: int, key: int, b: RuleSet, a: RuleSet) -> list[dict[str, Any]]:
        """The rule changes of one destination, in the order of ``rule_changes``."""
        if not b and len(a) == 1:  # the bulk shape: a new destination with one rule
            return [{"op": "add", "rule": self._rules_ctx[1].rule_json(format_key(afi, key), a[0])}]
        if not a and len(b) == 1:
            return [{"op": "remove", "rule": self._rules_ctx[0].rule_json(format_key(afi, key), b[0])}]
        old = {(r["nextHop"], r["routeType"]): r for r in self.rules(afi, key, b, after=False)}
        new = {(r["nextHop"], r["routeType"]): r for r in self.rules(afi, key, a, after=True)}
        result = [{"op": "remove", "rule": rule} for k, rule in old.items() if k not in new]
        for k, rule in new.items():
            if k not in old:
                result.append({"op": "add", "rule": rule})
            elif old[k] != rule:
                result.append({"op": "change", "rule": rule})
        return result

    def rule_changes(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Each add/remove/change as ``{"op": ..., "rule": {...}}`` (a change carries the new rule);
        with ``limit``, stop after the destination that reaches it (events carry a bounded sample)."""
        result: list[dict[str, Any]] = []
        for afi, key, b, a in self.entries():
            if limit is not None and len(result) >= limit:
                break
            result.extend(self._ops(afi, key, b, a))
        return result

    def edge_changes(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The first and the last rule change, read from the first and last destinations only."""
        found: list[dict[str, Any] | None] = [None, None]
        for fam, (keys, before, after) in enumerate(self._lists):
            for i in range(len(keys)):  # a destination's change can be empty only after a context change
                ops = self._ops(fam + 1, keys[i], before[i], after[i])
                if ops:
                    found[0] = found[0] or ops[0]
                    break
            for i in range(len(keys) - 1, -1, -1):
                ops = self._ops(fam + 1, keys[i], before[i], after[i])
                if ops:
                    found[1] = ops[-1]
                    break
        return found[0], found[1]

    def counts(self) -> dict[str, int]:
        """How many rules were added, removed and changed: exact, with no JSON built. Destinations that
        share their rule sets before and after (bulk changes share one tuple) are counted once per pair:
        the dominant pair by C-level identity scans, the few others one by one."""
        known = self._memo.get("counts")
        if known is not None:
            return dict(known)
        totals = {"add": 0, "remove": 0, "change": 0}
        for keys, before, after in self._lists:
            if not keys:
                continue
            b0, a0 = before[0], after[0]
            if before.count(b0) == len(keys) and after.count(a0) == len(keys):
                odd: list[int] = []  # one shared pair (equal rule sets count alike)
            else:
                odd = sorted(set(compress(range(len(keys)), map(is_not, before, repeat(b0)))) |
                             set(compress(range(len(keys)), map(is_not, after, repeat(a0)))))
            pairs = [(b0, a0, len(keys) - len(odd))] + [(before[i], after[i], 1) for i in odd]
            memo: dict[tuple[int, int], tuple[int, int, int]] = {}
            for b, a, times in pairs:
                found = memo.get((id(b), id(a)))
                if found is None:
                    found = memo[(id(b), id(a))] = self._count_pair(b, a)
                totals["add"] += found[0] * times
                totals["remove"] += found[1] * times
                totals["change"] += found[2] * times
        self._memo["counts"] = dict(totals)
        return totals

    def _count_pair(self, b: RuleSet, a: RuleSet) -> tuple[int, int, int]:
        """(added, removed, changed) between two rule sets, judged as ``rule_changes`` judges them."""
        old, new = (ctx.rule_keys(rules) for ctx, rules in zip(self._rules_ctx, (b, a), strict=True))
        changed = sum(1 for k, v in new.items() if k in old and old[k] != v)
        return len(new.keys() - old.keys()), len(old.keys() - new.keys()), changed

    def added(self) -> list[dict[str, Any]]:
        return [c["rule"] for c in self.rule_changes() if c["op"] == "add"]

    def removed(self) -> list[dict[str, Any]]:
        return [c["rule"] for c in self.rule_changes() if c["op"] == "remove"]

    def changed(self) -> list[dict[str, Any]]:
        return [c["rule"] for c in self.rule_changes() if c["op"] == "change"]

    def advert_transitions(self, excluded: frozenset[int] = frozenset()
                           ) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """Keys that became advertisable and keys that stopped being so, per AFI, for a session that
        may not advertise the rules of the ``excluded`` next hops (R40)."""
        before_ctx, after_ctx = self._rules_ctx
        announce: dict[int, list[int]] = {}
        withdraw: dict[int, list[int]] = {}
        was_memo: dict[int, bool] = {}  # by id(): the shared rule sets of bulk changes are computed once
        now_memo: dict[int, bool] = {}
        for fam, (keys, before, after) in enumerate(self._lists):
            for key, b, a in zip(keys, before, after, strict=True):
                was = was_memo.get(id(b))
                if was is None:
                    was = was_memo[id(b)] = before_ctx.advertisable(b, excluded)
                now = now_memo.get(id(a))
                if now is None:
                    now = now_memo[id(a)] = after_ctx.advertisable(a, excluded)
                if now and not was:
                    announce.setdefault(fam + 1, []).append(key)
                elif was and not now:
                    withdraw.setdefault(fam + 1, []).append(key)
        return announce, withdraw


@dataclass(frozen=True)
class AdvertTarget:
    """A BGP attachment that advertises a table, with the attributes of what it sends (R36)."""

    attachment: str
    neighbor: str
    next_hop: str
    as_path: tuple[int, ...]
    excluded: frozenset[int] = frozenset()  # next hops never advertised here: other VCs' loopbacks (R40)
    families: tuple[int, ...] = (1, 2)  # the AFIs the session carries (a VC session: its own, R53)


def _formatted(by_afi: dict[int, list[int]], limit: int | None) -> list[str]:
    out: list[str] = []
    for afi in sorted(by_afi):
        keys = by_afi[afi] if limit is None else by_afi[afi][:limit - len(out)]
        out.extend(format_key(afi, k) for k in keys)
    return out


@dataclass
class AdvertDelta:
    """Prefixes to announce (with ``as_path`` and ``next_hop``) and to withdraw on one BGP session."""

    attachment: str
    neighbor: str
    next_hop: str
    as_path: tuple[int, ...]
    announce: dict[int, list[int]] = field(default_factory=dict)  # AFI -> keys
    withdraw: dict[int, list[int]] = field(default_factory=dict)

    def announced(self, limit: int | None = None) -> list[str]:
        """The announced prefixes as text (the first ``limit`` of them)."""
        return _formatted(self.announce, limit)

    def withdrawn(self, limit: int | None = None) -> list[str]:
        return _formatted(self.withdraw, limit)

    def counts(self) -> tuple[int, int]:
        """How many prefixes are announced and withdrawn."""
        return sum(map(len, self.announce.values())), sum(map(len, self.withdraw.values()))

    def edge_words(self) -> tuple[str | None, str | None]:
        """The first and the last change as words ("+prefix" / "-prefix"), announcements first."""
        first = next((f"{sign}{format_key(afi, side[afi][0])}" for sign, side in (("+", self.announce),
                      ("-", self.withdraw)) for afi in sorted(side) if side[afi]), None)
        last = next((f"{sign}{format_key(afi, side[afi][-1])}" for sign, side in (("-", self.withdraw),
                     ("+", self.announce)) for afi in sorted(side, reverse=True) if side[afi]), None)
        return first, last

    def to_json(self) -> dict[str, Any]:
        return {"attachment": self.attachment, "neighbor": self.neighbor,
                "announce": [{"prefix": p, "asPath": list(self.as_path), "nextHop": self.next_hop}
                             for p in self.announced()],
                "withdraw": self.withdrawn()}


@dataclass(frozen=True)
class TunnelTransition:
    """A tunnel went UP or DOWN (R47); ``reason`` says why it is down."""

    tunnel: str
    up: bool
    reason: str | None


@dataclass(frozen=True)
class PrefixLimitExceeded:
    """R58/R64: the first prefix over ``limit``; the daemon sends Cease 6/1 (AFI, SAFI 1, limit)."""

    attachment: str
    afi: int
    limit: int
    prefix: str


class Changes:
    """Everything one engine call changed."""

    def __init__(self, tables: list[TableDelta], tunnels: list[TunnelTransition],
                 prefix_limits: list[PrefixLimitExceeded], warnings: list[str],
                 advertisements: list[AdvertDelta] | None = None) -> None:
        self.tables = tables
        self.tunnels = tunnels
        self.prefix_limits = prefix_limits
        self.warnings = warnings
        self._adverts = advertisements

    @property
    def advertisements(self) -> list[AdvertDelta]:
        """Per BGP attachment: what to announce and withdraw (computed on first access)."""
        if self._adverts is None:
            adverts: list[AdvertDelta] = []
            for delta in self.tables:
                if not delta.advertisers:
                    continue
                by_excluded: dict[frozenset[int], tuple[dict[int, list[int]], dict[int, list[int]]]] = {}
                for t in delta.advertisers:
                    found = by_excluded.get(t.excluded)
                    if found is None:
                        found = by_excluded[t.excluded] = delta.advert_transitions(t.excluded)
                    announce, withdraw = found
                    if t.families != (1, 2):
                        announce = {afi: k for afi, k in announce.items() if afi in t.families}
                        withdraw = {afi: k for afi, k in withdraw.items() if afi in t.families}
                    if announce or withdraw:
                        adverts.append(AdvertDelta(t.attachment, t.neighbor, t.next_hop, t.as_path, announce,
                                                   withdraw))
            self._adverts = sorted(adverts, key=lambda d: d.attachment)
        return self._adverts

    def __bool__(self) -> bool:
        return bool(self.tables or self.tunnels or self.prefix_limits or self.warnings or self.advertisements)

    def table(self, name: str) -> TableDelta | None:
        return next((d for d in self.tables if d.table == name), None)

    def advertisement(self, attachment: str) -> AdvertDelta | None:
        return next((d for d in self.advertisements if d.attachment == attachment), None)

    def summary(self) -> dict[str, Any]:
        """A short JSON summary (counts per table, transitions, limits), e.g. for ``drg apply``."""
        tables = {}
        for delta in self.tables:
            tables[delta.table] = delta.counts()
        return {"routeTables": tables,
                "advertisements": {d.attachment: {"announce": sum(map(len, d.announce.values())),
                                                  "withdraw": sum(map(len, d.withdraw.values()))}
                                   for d in self.advertisements},
                "tunnels": [{"tunnel": t.tunnel, "state": "UP" if t.up else "DOWN", "reason": t.reason}
                            for t in self.tunnels],
                "prefixLimits": [{"attachment": p.attachment, "afi": p.afi, "limit": p.limit,
                                  "prefix": p.prefix} for p in self.prefix_limits],
                "warnings": list(self.warnings)}


class ChangeBuilder:
    """Collects the deltas of one engine call; ``phases`` > 1 means a destination may repeat."""

    def __init__(self, tables: Sequence[tuple[str, str]], rules_ctx: RuleContext,
                 targets: Sequence[tuple[AdvertTarget, ...]], warnings: Callable[[], list[str]],
                 groups: Sequence[Sequence[int]] = ()) -> None:
        self._tables = tables
        self._groups = groups
        self._rules_ctx = rules_ctx
        self._targets = targets
        self._warnings = warnings
        self.deltas: dict[int, TableDelta] = {}
        self.phases = 1
        self.tunnels: list[TunnelTransition] = []
        self.limits: list[PrefixLimitExceeded] = []

    def delta(self, t: int) -> TableDelta:
        """The delta of table index ``t`` (created on first use). The tables of ``t``'s group (tables that
        share one store: ``groups[t]`` lists them when ``t`` leads one) get deltas sharing its lists."""
        delta = self.deltas.get(t)
        if delta is None:
            for member in (self._groups[t] if self._groups and self._groups[t] else (t,)):
                name, table_id = self._tables[member]
                shared = TableDelta(name, table_id, self._rules_ctx, self._rules_ctx, self._targets[member])
                if delta is None:
                    delta = shared
                else:
                    shared._lists, shared._memo = delta._lists, delta._memo  # one list of changes for the group
                self.deltas[member] = shared
        assert delta is not None
        return delta

    def finish(self) -> Changes:
        deltas = [self.deltas[t] for t in sorted(self.deltas)]
        if self.phases > 1:
            compacted: set[int] = set()
            for delta in deltas:
                if id(delta._lists) not in compacted:  # a group's shared lists once
                    compacted.add(id(delta._lists))
                    delta.compact()
        return Changes([d for d in deltas if len(d)], self.tunnels, self.limits, self._warnings())
