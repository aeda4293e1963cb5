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

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.prefix import format_prefix as format_key

AsPath = tuple[int | tuple[int, ...], ...]
Rule = tuple[int, AsPath, int]  # (next-hop attachment index, or -1-i for a blackhole name; path; flags)
RuleSet = tuple[Rule, ...]

CONFLICT = 1  # lost conflict resolution (R17, R27, R32)
ECMP = 2  # active member of an ECMP set of two or more (R30)
BLACKHOLE = 4  # the next-hop attachment does not exist (R17)
STATIC = 8  # a static rule (R14)
EMPTY_PATH: AsPath = ()
PROVENANCE_RANK = {"STATIC": 0, "VCN": 1, "VIRTUAL_CIRCUIT": 2, "IPSEC_TUNNEL": 3}  # R102 step 4
ONPREM_PROVENANCE = ("VIRTUAL_CIRCUIT", "IPSEC_TUNNEL")  # R24, R100: never exported to a VC or IPSec tunnel


class RpcPath(tuple):  # type: ignore[type-arg]  # an AsPath: a tuple of ASNs and AS_SETs
    """The AS path of a route learned over an RPC (unchanged across DRGs, R98), with what else the route
    carries: the provenance of its origin (C1: there is no RPC provenance), its network distance (R99)
    and the DRGs it crossed, origin first (R103). It is an AsPath, so conflict resolution compares its
    length like any other (R102 step 2); equal only to an RpcPath with the same attributes."""

    provenance: str
    distance: int
    drg_path: tuple[str, ...]

    def __new__(cls, path: AsPath, provenance: str, distance: int, drg_path: tuple[str, ...]) -> RpcPath:
        obj = super().__new__(cls, path)
        obj.provenance, obj.distance, obj.drg_path = provenance, distance, drg_path
        return obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RpcPath) and tuple.__eq__(self, other) and (
            self.provenance, self.distance, self.drg_path) == (other.provenance, other.distance, other.drg_path)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((tuple(self), self.provenance, self.distance, self.drg_path))

    def __repr__(self) -> str:
        return f"RpcPath({tuple(self)!r}, {self.provenance!r}, {self.distance}, {self.drg_path!r})"

    def rank(self) -> tuple[int, int]:
        """R102 step 4 among RPC routes: lowest network distance, then STATIC > VCN > VC > IPSec."""
        return self.distance, PROVENANCE_RANK.get(self.provenance, 4)
NO_RULES: RuleSet = ()


def as_path_json(path: AsPath) -> list[Any]:
    """The flat AS list of product.md; an AS_SET is one nested list."""
    for item in path:
        if type(item) is not int:
            return [i if isinstance(i, int) else list(i) for i in path]
    return list(path)


@dataclass(frozen=True)
class RuleContext:
    """What rules of one engine configuration mean: the names, ids and provenance (R16) of attachment
    indexes, which provenances are never exported (R24); so it renders a rule as JSON and says
    whether a rule set is advertisable (R33, R40)."""

    drg: str
    names: tuple[str, ...]
    ids: tuple[str, ...]
    provenance: tuple[str, ...]  # VCN, VIRTUAL_CIRCUIT, IPSEC_TUNNEL or LOOPBACK (R16)
    blocked: tuple[bool | None, ...]  # R24: provenance VC/IPSec is never exported over BGP; None: per route (RPC)
    blackholes: tuple[str, ...]  # names of static next hops that do not exist
    _fields: dict[tuple[int, int], tuple[Any, ...]] = field(default_factory=dict, compare=False, repr=False)

    def next_hop(self, index: int) -> str:
        return self.names[index] if index >= 0 else self.blackholes[-1 - index]

    def next_hop_id(self, index: int) -> str:
        if index >= 0:
            return self.ids[index]
        return f"ocid1.drgattachment.emu.{self.drg}.{self.blackholes[-1 - index]}"

    def rule_json(self, destination: str, rule: Rule) -> dict[str, Any]:
        """One rule in the shape of ``drg routes --json`` (fields cached per next hop and flags)."""
        index, path, flags = rule
        if isinstance(path, RpcPath) and not flags & STATIC:
            return self._rpc_rule_json(destination, rule, path)
        fields = self._fields.get((index, flags))
        if fields is None:
            static = bool(flags & STATIC)
            fields = self._fields[(index, flags)] = (
                self.next_hop(index), self.next_hop_id(index), "STATIC" if static else "DYNAMIC",
                "STATIC" if static else self.provenance[index], bool(flags & CONFLICT), bool(flags & ECMP),
                bool(flags & BLACKHOLE))
        name, ident, kind, provenance, conflict, ecmp, blackhole = fields
        return {"destination": destination, "destinationType": "CIDR_BLOCK", "nextHop": name,
                "nextHopDrgAttachmentId": ident, "routeType": kind, "routeProvenance": provenance,
                "asPath": as_path_json(path), "isConflict": conflict, "isEcmp": ecmp, "isBlackhole": blackhole}

    def _rpc_rule_json(self, destination: str, rule: Rule, path: RpcPath) -> dict[str, Any]:
        """A rule learned over an RPC: the provenance of its origin (C1, R98), its network distance (R99)
        and DRG path (R103) - emulator fields, not in OCI's API."""
        index, _, flags = rule
        return {"destination": destination, "destinationType": "CIDR_BLOCK", "nextHop": self.next_hop(index),
                "nextHopDrgAttachmentId": self.next_hop_id(index), "routeType": "DYNAMIC",
                "routeProvenance": path.provenance, "asPath": as_path_json(path),
                "isConflict": bool(flags & CONFLICT), "isEcmp": bool(flags & ECMP), "isBlackhole": False,
                "networkDistance": path.distance, "drgPath": list(path.drg_path)}

    def rule_keys(self, rules: RuleSet) -> dict[tuple[str, str], tuple[Any, ...]]:
        """A rule set keyed as ``rule_changes`` keys it - (next hop, route type) - with every value its JSON
        depends on, so two rule sets compare as their JSON would, without building it."""
        return {(self.next_hop(i), "STATIC" if f & STATIC else "DYNAMIC"):
                (self.next_hop_id(i), self.provenance[i] if i >= 0 else None, p, f,
                 (p.provenance, p.distance, p.drg_path) if isinstance(p, RpcPath) else None)
                for i, p, f in rules}

    def advertisable(self, rules: RuleSet, excluded: frozenset[int] = frozenset()) -> bool:
        """R33 + R24: an active, non-blackhole rule whose provenance is not VIRTUAL_CIRCUIT/IPSEC_TUNNEL
        (for a route learned over an RPC, the provenance it carries: R100), and whose next hop is not
        ``excluded`` (R40: another VC's loopback headends)."""
        for index, path, flags in rules:
            if flags & (CONFLICT | BLACKHOLE) or index in excluded:
                continue
            blocked = self.blocked[index] if index >= 0 else False
            if blocked is None:
                blocked = isinstance(path, RpcPath) and path.provenance in ONPREM_PROVENANCE
            if flags & STATIC or not blocked:
                return True
        return False

    def canonical(self, rules: RuleSet) -> tuple[tuple[str, str, AsPath, int], ...]:
        """A rule set with names instead of indexes, to compare across configurations."""
        return tuple((self.next_hop(i), "STATIC" if f & STATIC else self.provenance[i], p, f)
                     for i, p, f in rules)


_EMPTY_LISTS: tuple[list[int], list[RuleSet], list[RuleSet]] = ([], [], [])  # shared, never written


class TableDelta:
    """The destinations of one route table whose rules changed, with the rule sets before and after."""

    __slots__ = ("_lists", "_rules_ctx", "advertisers", "table", "table_id")

    def __init__(self, table: str, table_id: str, before: RuleContext, after: RuleContext,
                 advertisers: tuple[AdvertTarget, ...] = ()) -> None:
        self.table = table
        self.table_id = table_id
        self.advertisers = advertisers
        self._rules_ctx = (before, after)
        self._lists: list[tuple[list[int], list[RuleSet], list[RuleSet]]] = [_EMPTY_LISTS, _EMPTY_LISTS]

    def lists(self, fam: int) -> tuple[list[int], list[RuleSet], list[RuleSet]]:
        """The (keys, before, after) lists of family index ``fam`` (0 IPv4, 1 IPv6), for the engine."""
        lists = self._lists[fam]
        if lists is _EMPTY_LISTS:
            lists = self._lists[fam] = ([], [], [])
        return lists

    def __len__(self) -> int:
        return len(self._lists[0][0]) + len(self._lists[1][0])

    def compact(self) -> None:
        """Merge repeated destinations (first before, last after) and drop those that did not change."""
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
        share their rule sets before and after (bulk changes share one tuple) are counted once per pair."""
        totals = {"add": 0, "remove": 0, "change": 0}
        memo: dict[tuple[int, int], tuple[int, int, int]] = {}
        for keys, before, after in self._lists:
            if not keys:
                continue
            if before.count(before[0]) == len(before) and after.count(after[0]) == len(after):
                pairs: dict[tuple[int, int], int] = {(id(before[0]), id(after[0])): len(keys)}
                sample = {(id(before[0]), id(after[0])): (before[0], after[0])}
            else:  # C-level counting of the distinct (before, after) pairs
                pairs = Counter(zip(map(id, before), map(id, after), strict=True))
                sample = dict(zip(zip(map(id, before), map(id, after), strict=True),
                                  zip(before, after, strict=True), strict=True))
            for pair, times in pairs.items():
                found = memo.get(pair)
                if found is None:
                    found = memo[pair] = self._count_pair(*sample[pair])
                totals["add"] += found[0] * times
                totals["remove"] += found[1] * times
                totals["change"] += found[2] * times
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
                    shared._lists = delta._lists  # one list of changes for the group
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
