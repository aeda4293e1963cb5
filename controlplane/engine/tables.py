"""DRG route tables: how they are stored and updated incrementally (the core of the route engine).

How it works. Attachments are numbered in configuration order (system loopbacks last); that order is
the R31 tie-break. Each attachment has, per address family, a dict ``offers[key] = as_path`` of what it
offers for import (one AS-path tuple shared by all prefixes of an announce call). A table imports the
offers of the attachments its import distribution matches (R21; loopback headends only into the table
of their own VC, R50) and has a dict of static rules (R14; a next hop that does not exist is a
blackhole, R17). Tables store no rules: a destination only one imported attachment offers is implied
by that attachment's offers, and only *contested* destinations (two or more candidates) are stored,
``over[key] = sorted tuple of attachment indexes``. So a million routes from one VC cost their offers
and nothing per table. Tables with the same imports, static rules and ECMP setting share one store
(a *group*, led by its first table) and one list of changes per call. :meth:`TableStore._snapshot`
renders the rule set of one destination from its candidates - static first (R27.1, R32), the winner
by AS-path length (R27.2), attachment type (R27.3) and order (R31), an ECMP set of up to 8 equal VC
or IPSec routes (R30), losers in conflict.

An offer or withdrawal touches only the stores importing its attachment and only its keys, and
records (key, rule set before, rule set after) in a
:class:`~controlplane.engine.changes.TableDelta`. Keys no other imported attachment offers (found by
C-level set intersections) take a bulk path with one shared rule set; contested keys are resolved
from their candidates (engine/resolve.py): grouped by what decides their rule sets, each group once,
so a second VC announcing what the first offers, or one of them going down, is C-level work too.
Full recomputation (:meth:`TableStore._rebuild`) is for construction and ``apply_config`` only.
Every call that may change a table bumps ``generation``: a reader that keeps a table's sorted keys (the
console's pages) knows when they are out of date.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from itertools import chain, compress, filterfalse, repeat
from operator import is_not, ne

from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import AttachmentType
from controlplane.engine import bulk
from controlplane.engine.bulk import Cands, add_candidate, discard_candidate, disown, record_removed
from controlplane.engine.changes import AdvertTarget, ChangeBuilder
from controlplane.engine.contested import Batch, Contested, holds_all
from controlplane.engine.resolve import Resolver
from controlplane.engine.rules import (
    BLACKHOLE,
    CONFLICT,
    ECMP,
    EMPTY_PATH,
    NO_RULES,
    STATIC,
    AsPath,
    RuleContext,
    RuleSet,
)

VCN, VC, IPSEC, LOOPBACK, RPC = 0, 1, 2, 3, 4
TYPE_CODE = {"VCN": VCN, "VIRTUAL_CIRCUIT": VC, "IPSEC_TUNNEL": IPSEC, "LOOPBACK": LOOPBACK,
             "REMOTE_PEERING_CONNECTION": RPC}
# R27/R102 step 3: VCN > VIRTUAL_CIRCUIT > IPSEC_TUNNEL > REMOTE_PEERING_CONNECTION. EMULATOR CHOICE:
# LOOPBACK headends (empty AS path, system routes) rank first, so an identical /32 can never steal a
# tunnel's headend.
RANK = {LOOPBACK: 0, VCN: 1, VC: 2, IPSEC: 3, RPC: 4}
RPC_RANK = RANK[RPC]
MAX_ECMP = 8  # R30
DYNAMIC_RULE_LIMIT = 20_000  # R15: reported as a warning, not enforced
Offers = list[dict[int, AsPath]]  # [IPv4, IPv6]


def family(afi: int) -> int:
    """The family index of an AFI: 0 for IPv4 (1), 1 for IPv6 (2)."""
    if afi not in (1, 2):
        raise ValueError(f"unknown AFI {afi}")
    return afi - 1


class TableStore(Resolver):
    """Route tables, offers and conflict resolution (contested destinations in bulk: engine/resolve.py);
    :class:`~controlplane.engine.engine.RouteEngine` adds sessions, tunnels, limits and the queries."""

    config: EffectiveConfig
    rules_ctx: RuleContext
    advert_targets: list[tuple[AdvertTarget, ...]]
    generation = 0  # bumped by every call that may change a table: what readers cache (the console's pages)

    def _builder(self) -> ChangeBuilder:
        self.generation += 1
        return ChangeBuilder(self._table_names, self.rules_ctx, self.advert_targets, self.limit_warnings, self._group)

    def _setup_tables(self, cfg: EffectiveConfig) -> None:
        """Attachments, tables, imports (R21, R50), static rules (R14, R17), advertisers and empty offers."""
        self.config = cfg
        atts = cfg.attachments
        self._names = [a.name for a in atts]
        self._index = {a.name: i for i, a in enumerate(atts)}
        self._type = [TYPE_CODE[a.type] for a in atts]
        self._rank = [RANK[code] for code in self._type]
        self._tindex = {t.name: i for i, t in enumerate(cfg.route_tables)}
        self._table_names = [(t.name, t.id) for t in cfg.route_tables]
        try:
            self._table_of = [self._tindex[a.route_table] for a in atts]
        except KeyError as exc:
            raise ValueError(f"configuration not validated: unknown route table {exc}") from None
        self._ecmp = [t.ecmp for t in cfg.route_tables]
        blackholes: list[str] = []
        self._static: list[tuple[dict[int, int], dict[int, int]]] = []
        for table in cfg.route_tables:
            pair: tuple[dict[int, int], dict[int, int]] = ({}, {})
            for route in table.static_routes:
                nh = self._index.get(route.next_hop)
                if nh is None:  # R17: the next-hop attachment does not exist -> blackhole
                    if route.next_hop not in blackholes:
                        blackholes.append(route.next_hop)
                    nh = -1 - blackholes.index(route.next_hop)
                pair[family(route.afi)][route.key] = nh
            self._static.append(pair)
        self._imports = [[a.index for a in cfg.imported_attachments(t.name)] for t in cfg.route_tables]
        self._importers: list[list[int]] = [[] for _ in atts]
        for t, members in enumerate(self._imports):
            for member in members:
                self._importers[member].append(t)
        self._group_tables()
        self.advert_targets = [() for _ in cfg.route_tables]
        self._excluded: list[frozenset[int]] = []
        for att in atts:  # R40: a headend is advertised over the VC its tunnel rides on, nowhere else
            self._excluded.append(frozenset(lb.index for lb in atts if lb.type == AttachmentType.LOOPBACK
                                            and lb.transport_attachment != att.name))
            if att.advertises:
                t = self._table_of[att.index]
                for session in att.sessions:  # one target per BGP session (a dual-stack VC has two, R53)
                    target = AdvertTarget(session.session, session.customer_ip, session.oracle_ip,  # R36
                                          (cfg.asn,), self._excluded[att.index], session.families)
                    self.advert_targets[t] = (*self.advert_targets[t], target)
        self.rules_ctx = RuleContext(cfg.drg_name, tuple(self._names), tuple(a.id for a in atts),
                             tuple(a.type for a in atts),
                             tuple(None if code == RPC else code in (VC, IPSEC) for code in self._type),
                             tuple(blackholes))
        self._offers: list[Offers] = [[{}, {}] for _ in atts]
        self._dyn_count = 0
        self._over_limit = False
        self._paths: dict[AsPath, AsPath] = {}  # interned AS paths of what BGP peers announce

    def _group_tables(self) -> None:
        """Tables with the same imports, static rules and ECMP setting hold the same rules: they share one
        store (the leader's rib, aliased) and one list of changes per call (``ChangeBuilder`` groups)."""
        signatures: dict[tuple[object, ...], int] = {}
        self._leader = [signatures.setdefault((tuple(members), tuple(sorted(self._static[t][0].items())),
                                               tuple(sorted(self._static[t][1].items())), self._ecmp[t]), t)
                        for t, members in enumerate(self._imports)]
        self._group: list[list[int]] = [[] for _ in self._leader]
        for t, leader in enumerate(self._leader):
            self._group[leader].append(t)
        self._stores = [sorted({self._leader[t] for t in tables}) for tables in self._importers]

    def _rebuild(self) -> None:
        """The contested destinations of every store, from the offers (full recomputation: construction
        and apply_config only): pairwise C-level intersections of the imported attachments' offer keys."""
        self._over: list[list[dict[int, tuple[int, ...]]]] = []
        self._owner: list[list[dict[int, int]] | None] = []
        count = 0
        for t, members in enumerate(self._imports):
            count += sum(len(self._offers[a][fam]) for a in members for fam in (0, 1))
            if self._leader[t] != t:  # the leader's store, aliased (its rules are the same)
                self._over.append(self._over[self._leader[t]])
                self._owner.append(self._owner[self._leader[t]])
                continue
            pair: list[dict[int, tuple[int, ...]]] = []
            for fam in (0, 1):
                offered = [(a, self._offers[a][fam]) for a in members if self._offers[a][fam]]
                contested: set[int] = set()
                for i, (_, offers) in enumerate(offered):
                    for _, others in offered[i + 1:]:
                        contested |= offers.keys() & others.keys()
                pair.append({key: tuple(a for a, offers in offered if key in offers) for key in contested})
            self._over.append(pair)
            self._owner.append(self._owners(members, pair) if len(members) > bulk.WIDE else None)
        self._dyn_count = count
        self._over_limit = count > DYNAMIC_RULE_LIMIT

    def _cands(self, t: int, fam: int, key: int, skip: int = -1) -> Cands | None:
        """The candidates of a destination in store ``t``: kept when contested, else the one imported
        attachment that offers it, found in the offers (``skip``: an attachment to leave out)."""
        found = self._over[t][fam].get(key)
        if found is not None:
            return found
        owner = self._owner[t]
        if owner is not None:
            sole = owner[fam].get(key)
            return None if sole == skip else sole
        offers = self._offers
        for m in self._imports[t]:
            if m != skip and key in offers[m][fam]:
                return m
        return None

    def _holds_any(self, t: int, fam: int, keys: list[int]) -> bool:
        """Whether store ``t`` holds a dynamic rule for any of ``keys`` (C-level checks per import)."""
        owner = self._owner[t]
        if owner is not None:
            return not owner[fam].keys().isdisjoint(keys) or not self._over[t][fam].keys().isdisjoint(keys)
        offers = self._offers
        return any(not offers[m][fam].keys().isdisjoint(keys) for m in self._imports[t])

    def _owners(self, members: list[int], over: list[dict[int, tuple[int, ...]]]) -> list[dict[int, int]]:
        """A wide store's sole owner of every uncontested destination (an index: with hundreds of
        imported attachments, looking through each one's offers would cost more than the dict)."""
        pair: list[dict[int, int]] = []
        for fam in (0, 1):
            owner: dict[int, int] = {}
            for a in members:
                owner.update(dict.fromkeys(self._offers[a][fam], a))
            for key in over[fam]:
                del owner[key]
            pair.append(owner)
        return pair

    def _taken(self, t: int, fam: int, a: int, keys: list[int], batch: Batch) -> set[int] | None:
        """The ``keys`` that another attachment imported by store ``t`` offers, or that have a static rule
        there: they need resolving; the others are ``a``'s alone. None when it is all of them (found by
        C-level scans that build no set: the redundant-VC shape). C-level set operations otherwise; what
        each attachment offers is found once per call (``batch``). Not to be modified: it may be shared."""
        owner = self._owner[t]
        static = self._static[t][fam]
        scan = len(keys) >= bulk.GROUPED  # a few keys: their intersections cost less than the scans
        if owner is None:
            others = [m for m in self._imports[t] if m != a]
            if scan and any(map(batch.covers, others)):
                return None
            parts = [batch.hits(m) for m in others]
            sources: list[Mapping[int, object]] = [static]
        else:
            parts = []
            sources = [owner[fam], self._over[t][fam], static]
            if scan and any(holds_all(held, keys) for held in sources[:2]):
                return None
        for held in sources:
            if held:
                parts.append(held.keys() & (batch.keyset() if len(held) * 4 < len(keys) else keys))
        parts = [part for part in parts if part]
        taken = set().union(*parts) if len(parts) > 1 else parts[0] if parts else set()
        return None if len(taken) == len(keys) else taken

    def limit_warnings(self) -> list[str]:
        """R15: a warning when the DRG-wide dynamic rule count crosses OCI's 20,000 upwards."""
        over = self._dyn_count > DYNAMIC_RULE_LIMIT
        crossed = over and not self._over_limit
        self._over_limit = over
        if crossed:
            return [f"the DRG holds {self._dyn_count} dynamic route rules, over OCI's limit of "
                    f"{DYNAMIC_RULE_LIMIT} (R15): installed anyway"]
        return []

    # ------------------------------------------------------------------ conflict resolution

    def _snapshot(self, t: int, fam: int, key: int, cands: Cands | None) -> RuleSet:
        """All rules of one destination: static first (R27.1, R32), then candidates by attachment order,
        losers flagged CONFLICT (R17), winner by AS-path length (R27.2), type (R27.3), order (R31); ECMP
        keeps up to 8 equal routes of one type, VC or IPSec only (R30)."""
        nh = self._static[t][fam].get(key)
        if cands is None:
            return NO_RULES if nh is None else ((nh, EMPTY_PATH, STATIC | (BLACKHOLE if nh < 0 else 0)),)
        offers = self._offers
        if type(cands) is int:
            path = offers[cands][fam][key]
            if nh is None:
                return ((cands, path, 0),)
            return ((nh, EMPTY_PATH, STATIC | (BLACKHOLE if nh < 0 else 0)), (cands, path, CONFLICT))
        members: tuple[int, ...] = cands  # type: ignore[assignment]
        paths = [offers[c][fam][key] for c in members]
        if nh is not None:
            static = (nh, EMPTY_PATH, STATIC | (BLACKHOLE if nh < 0 else 0))
            return (static, *((c, p, CONFLICT) for c, p in zip(members, paths, strict=True)))
        rank = self._rank
        if len(members) == 2:  # the common contested case, without the general machinery
            (c0, c1), (p0, p1) = members, paths
            k0, k1 = (len(p0), rank[c0]), (len(p1), rank[c1])
            if k0 == k1 and k0[1] == RPC_RANK:  # R102 step 4: two RPC routes
                k0, k1 = (*k0, *p0.rank()), (*k1, *p1.rank())  # type: ignore[attr-defined]
            if k0 == k1 and self._ecmp[t] and self._type[c0] in (VC, IPSEC):
                return ((c0, p0, ECMP), (c1, p1, ECMP))
            if k0 <= k1:
                return ((c0, p0, 0), (c1, p1, CONFLICT))
            return ((c0, p0, CONFLICT), (c1, p1, 0))
        best = min(range(len(members)), key=lambda i: (len(paths[i]), rank[members[i]],
                                                       *(paths[i].rank() if rank[members[i]] == RPC_RANK  # type: ignore[attr-defined]
                                                         else ())))
        best_len, best_rank = len(paths[best]), rank[members[best]]
        if self._ecmp[t] and self._type[members[best]] in (VC, IPSEC):
            active = [i for i in range(len(members))
                      if len(paths[i]) == best_len and rank[members[i]] == best_rank][:MAX_ECMP]
        else:
            active = [best]
        win = ECMP if len(active) > 1 else 0
        return tuple((c, p, win if i in active else CONFLICT)
                     for i, (c, p) in enumerate(zip(members, paths, strict=True)))

    # ------------------------------------------------------------------ incremental updates

    def _insert(self, a: int, fam: int, keys: Sequence[int], path: AsPath, b: ChangeBuilder) -> None:
        """New offers of ``a`` (R21: into every table importing it). In each table, keys it does not know
        yet take a bulk path at C speed (dict/set operations, one shared rule set); contested keys are
        resolved from their candidates in groups (engine/resolve.py), and so are new paths for keys
        ``a`` offers already (R27.2)."""
        offers = self._offers[a][fam]
        fresh = list(keys) if offers.keys().isdisjoint(keys) else list(filterfalse(offers.__contains__, keys))
        if len(fresh) != len(keys):
            known = list(filter(offers.__contains__, dict.fromkeys(keys)))
            olds = list(map(offers.__getitem__, known))
            if olds.count(path) != len(olds):  # new paths for known prefixes
                self._repath(a, fam, list(compress(known, map(ne, olds, repeat(path)))), path, b)
        if not fresh:
            return
        size = len(offers)
        if offers:
            offers.update(dict.fromkeys(fresh, path))
        else:
            offers = self._offers[a][fam] = dict.fromkeys(fresh, path)
        if len(offers) - size != len(fresh):  # the same prefix twice in one call
            fresh = list(dict.fromkeys(fresh))
        single = ((a, path, 0),)
        contested: list[Contested] = []
        batch = Batch(fresh, self._offers, fam)
        for t in self._stores[a]:
            taken = self._taken(t, fam, a, fresh, batch)
            plain = [] if taken is None else list(filterfalse(taken.__contains__, fresh)) if taken else fresh
            owner = self._owner[t]
            if owner is not None:
                owner[fam].update(dict.fromkeys(plain, a))
            keys_out, befores_out, afters_out = b.delta(t).lists(fam)
            keys_out.extend(plain)  # a's alone: nothing to store (a wide store: its owner), the offers say it
            befores_out.extend([NO_RULES] * len(plain))
            afters_out.extend([single] * len(plain))
            if taken is None:
                contested.append((t, fresh, None, None))
            elif taken:
                contested.append((t, list(filter(taken.__contains__, fresh)), taken, None))
        if contested:
            self._resolve(fam, contested, lambda cands: add_candidate(cands, a), b, batch, a)
        self._dyn_count += len(fresh) * len(self._importers[a])

    def _remove(self, a: int, fam: int, keys: Sequence[int], b: ChangeBuilder, whole: bool = False) -> None:
        """Withdrawn offers of ``a`` (``whole``: ``keys`` are all of them); where ``a`` was the only
        candidate the rule set before is rebuilt from the old path (one shared tuple per path object),
        otherwise the destination is resolved again (in groups, engine/resolve.py). Bulk steps use
        C-level map/set operations; a store that contests every key (another VC offers them all) is
        found by one lookup per key, which the resolution reuses."""
        offers = self._offers[a][fam]
        gone = list(keys) if whole else list(dict.fromkeys(keys))  # each key once
        try:
            paths = list(map(offers.__getitem__, gone))
        except KeyError:  # some were not offered (a withdrawal of what was never announced)
            gone = list(filter(offers.__contains__, gone))
            paths = list(map(offers.__getitem__, gone))
        if not gone:
            return
        solo_befores: list[RuleSet]
        if paths.count(paths[0]) == len(paths):  # one AS path (interned: identity): one shared rule set
            solo_befores = [((a, paths[0], 0),)] * len(paths)
        else:
            ids = list(map(id, paths))
            sole = {i: ((a, p, 0),) for i, p in dict(zip(ids, paths, strict=True)).items()}
            solo_befores = list(map(sole.__getitem__, ids))
        contested: list[Contested] = []
        batch = Batch(gone, self._offers, fam)
        for t in self._stores[a]:
            over, static = self._over[t][fam], self._static[t][fam]
            parts: list[set[int]] = []
            found: list[tuple[int, ...] | None] | None = None
            if len(over) * 4 >= len(gone):  # many contested: one lookup each, reused to resolve them
                found = list(map(over.get, gone))
                missing = found.count(None)
                if not missing:  # all of them (the redundant-VC session down): no set built
                    contested.append((t, gone, None, found))
                    continue
                if missing != len(gone):
                    parts.append(set(compress(gone, map(is_not, found, repeat(None)))))
            elif over:
                parts.append(over.keys() & batch.keyset())
            if static:
                parts.append(static.keys() & batch.keyset())
            parts = [part for part in parts if part]
            taken = set().union(*parts) if len(parts) > 1 else parts[0] if parts else set()
            owner = self._owner[t]
            if owner is not None:
                disown(owner[fam], gone, taken)
            keys_out, befores_out, afters_out = b.delta(t).lists(fam)
            if taken:  # taken is a subset of gone
                contested.append((t, gone, None, found) if len(taken) == len(gone) else
                                 (t, list(filter(taken.__contains__, gone)), taken, None))
            record_removed(keys_out, befores_out, afters_out, gone, solo_befores, taken)
        if contested:  # offers[key] still holds a's old path: the "before" rule sets need it
            self._resolve(fam, contested, lambda cands: discard_candidate(cands, a) if cands is not None else None, b,
                          batch)
        if len(gone) == len(offers):
            self._offers[a][fam] = {}
        else:
            deque(map(offers.__delitem__, gone), maxlen=0)  # every key deleted, at C speed
        self._dyn_count -= len(gone) * len(self._importers[a])

    # ------------------------------------------------------------------ table queries

    def table_index(self, name: str) -> int:
        t = self._tindex.get(name)
        if t is None:
            raise KeyError(f"unknown route table {name!r}")
        return t

    def keys(self, t: int, fam: int) -> list[int]:
        """Destinations of a table (dynamic and static), sorted: the order of route dumps."""
        static = self._static[t][fam]
        owner = self._owner[t]
        offered = [self._offers[m][fam] for m in self._imports[t] if self._offers[m][fam]] if owner is None \
            else [d for d in (owner[fam], self._over[t][fam]) if d]
        if len(offered) == 1 and not static:
            return sorted(offered[0])
        if len(offered) == 2 and not static and owner is None and \
                len(offered[0]) == len(offered[1]) == len(self._over[t][fam]):
            return sorted(offered[0])  # every key is offered by both (redundant VCs): the same key set
        # Offers keep their insertion order, mostly sorted runs: one sort of their concatenation is
        # near linear (a set union would lose the runs); a key offered twice (contested) or with a
        # static rule too appears once: sorted, its repeats are neighbours, dropped at C speed.
        keys = list(chain.from_iterable(offered))
        keys.extend(static)
        keys.sort()
        if (owner is None and self._over[t][fam]) or \
                any(not static.keys().isdisjoint(o.keys()) for o in offered):  # two views: the smaller is read
            return list(compress(keys, map(ne, keys, chain((-1,), keys))))  # each unlike the one before
        return keys

    def same_table(self, other: TableStore, t: int, t_other: int) -> bool:
        """Whether table ``t`` here holds exactly what ``t_other`` holds in ``other``, assuming both
        number attachments alike (checked by the caller): dict comparisons at C speed."""
        if (self._ecmp[t], self._static[t], self._imports[t]) != \
                (other._ecmp[t_other], other._static[t_other], other._imports[t_other]):
            return False
        return all(self._over[t][fam] == other._over[t_other][fam] and  # a wide store's owner index follows
                   all(self._offers[m][fam] == other._offers[m][fam] for m in self._imports[t])
                   for fam in (0, 1))

    def sole_offers(self, t: int, fam: int, keys: list[int]) -> tuple[int, list[AsPath]] | None:
        """``(a, AS paths)`` when each of ``keys`` has one rule in table ``t``, ``(a, path, 0)`` (offered by
        attachment ``a`` alone, no static rule), else None: the bulk path of route dumps (engine/dump.py)."""
        over, static = self._over[t][fam], self._static[t][fam]
        if not keys or (over and not over.keys().isdisjoint(keys)) or (static and not static.keys().isdisjoint(keys)):
            return None
        owner = self._owner[t]
        if owner is None:
            sources = self._imports[t]
        else:  # a wide store knows the sole owner
            sole = owner[fam].get(keys[0])
            sources = [] if sole is None else [sole]
        for a in sources:
            offers = self._offers[a][fam]
            if keys[0] in offers:
                try:
                    return a, list(map(offers.__getitem__, keys))
                except KeyError:  # a destination it does not offer (static, or withdrawn since)
                    return None
        return None

    def rules(self, t: int, fam: int, key: int) -> RuleSet:
        return self._snapshot(t, fam, key, self._cands(t, fam, key))

    def rule_counts(self, t: int, fam: int, keys: list[int]) -> list[int]:
        """``[len(self.rules(t, fam, k)) for k in keys]`` for destinations table ``t`` holds, at C speed: a
        contested one has a rule per candidate, another one rule, and a static rule adds one (R17, R32)."""
        over, static = self._over[t][fam], self._static[t][fam]
        counts = list(map(len, map(over.get, keys, repeat((0,))))) if over else [1] * len(keys)
        if static:
            for i in compress(range(len(keys)), map(static.__contains__, keys)):
                counts[i] = len(self.rules(t, fam, keys[i]))
        return counts

    def active_from(self, a: int) -> set[tuple[int, int]]:
        """(afi, key) of the routes offered by attachment ``a`` that are active (not a losing conflict,
        R17) in at least one table importing it."""
        active: set[tuple[int, int]] = set()
        for t in self._stores[a]:
            for fam in (0, 1):
                for key in self._offers[a][fam]:
                    if any(index == a and not flags & CONFLICT for index, _, flags in self.rules(t, fam, key)):
                        active.add((fam + 1, key))
        return active

    def dynamic_rule_count(self) -> int:
        return self._dyn_count
