"""Contested destinations resolved in bulk: the half of the route store that updates them.

How it works. ``TableStore`` (engine/tables.py) finds, per store of route tables, the keys of a call
that another attachment also offers or that have a static rule (R21, R14) - the *contested* ones -
and hands them here with the change to make to their candidates: add the announcing attachment,
drop the withdrawing one (R17: every candidate stays listed). :meth:`Resolver._resolve` groups each
store's keys by what decides their rule sets (engine/contested.py: candidates, AS paths, static next
hop; the table's ECMP flag, R30), renders each group's rule sets before and after once with
``_snapshot`` (R27, R30-R32) - once for all stores with the same inputs - and applies them with
C-level operations, keys in call order. A call with a few contested keys per store (below
``bulk.GROUPED``) resolves them one by one, which costs less at that size
(:meth:`Resolver._resolve_each`). :meth:`Resolver._repath` does the same for a new AS path of known
prefixes (R27.2): the candidates stay, the rule sets change. The property test runs both ways.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable

from controlplane.engine import bulk
from controlplane.engine.bulk import Cands
from controlplane.engine.changes import ChangeBuilder
from controlplane.engine.contested import (
    Batch,
    Contested,
    Groups,
    Outcome,
    as_members,
    candidates,
    partition,
    place,
    record,
)
from controlplane.engine.rules import AsPath, RuleSet


class Resolver(ABC):
    """Bulk resolution of contested destinations over the state of a ``TableStore``: offers per
    attachment and family, static rules and ECMP flags per table, contested candidates (``over``) and
    wide stores' owner indexes per store, imports per table, stores per attachment."""

    _offers: list[list[dict[int, AsPath]]]
    _static: list[tuple[dict[int, int], dict[int, int]]]
    _ecmp: list[bool]
    _over: list[list[dict[int, tuple[int, ...]]]]
    _owner: list[list[dict[int, int]] | None]
    _imports: list[list[int]]
    _stores: list[list[int]]

    @abstractmethod
    def _cands(self, t: int, fam: int, key: int, skip: int = -1) -> Cands | None:
        """The candidates of one destination in store ``t`` (``skip``: an attachment left out)."""

    @abstractmethod
    def _snapshot(self, t: int, fam: int, key: int, cands: Cands | None) -> RuleSet:
        """All rules of one destination in store ``t`` with candidates ``cands`` (R27, R30-R32)."""

    @abstractmethod
    def rules(self, t: int, fam: int, key: int) -> RuleSet:
        """All rules of one destination in store ``t`` now."""

    def _resolve(self, fam: int, tables: list[Contested],
                 change: Callable[[Cands | None], Cands | None], b: ChangeBuilder, batch: Batch,
                 skip: int = -1) -> None:
        """Apply ``change`` to the candidates of contested keys - per store ``t``, its ``keys`` (in call
        order), their set (None: all of the call's) and what ``over`` holds for them when already looked
        up - read without ``skip`` (an attachment whose offers already hold the change), and record the
        rule sets before and after. The keys of a store are grouped by what decides their rule sets
        (engine/contested.py): each group is resolved once - and once for all stores with the same
        candidates, paths, static next hop and ECMP flag - and applied with C-level operations. Two or
        more candidates are kept in the store, one is implied by the offers."""
        if max(len(keys) for _, keys, _, _ in tables) < bulk.GROUPED:
            self._resolve_each(fam, tables, change, b, batch, skip)
            return
        offers = batch.offers
        memo: dict[tuple[object, ...], Outcome] = {}
        for t, keys, keyset, held in tables:
            groups = self._grouped(t, fam, keys, keyset, skip, batch, held)
            results: dict[Hashable, Outcome] = {}
            for sig, (rep, cands) in groups.reps.items():
                new = change(cands)
                share = (new, *self._decides(t, fam, rep, cands, offers, new))
                found = memo.get(share)
                if found is None:
                    found = memo[share] = (self._snapshot(t, fam, rep, cands), new, self._snapshot(t, fam, rep, new))
                results[sig] = found
            owner = self._owner[t]
            place(groups, results, self._over[t][fam], None if owner is None else owner[fam], batch)
            record(groups, results, b.delta(t).lists(fam))

    def _resolve_each(self, fam: int, tables: list[Contested], change: Callable[[Cands | None], Cands | None],
                      b: ChangeBuilder, batch: Batch, skip: int) -> None:
        """:meth:`_resolve` key by key, for a few keys (below ``bulk.GROUPED`` per store: grouping them
        would cost more); stores without a static rule for the key and with equal candidates share the
        work. Keys are taken in call order, so each store records them in that order."""
        snapshot = self._snapshot
        sites = [(t, taken, self._over[t][fam], self._static[t][fam], self._ecmp[t], b.delta(t).lists(fam),
                  None if self._owner[t] is None else self._owner[t][fam])  # type: ignore[index]
                 for t, _, taken, _ in tables]
        union = set().union(*(keys for _, keys, _, _ in tables))
        for key in filter(union.__contains__, batch.keys):
            shared: tuple[Cands | None, bool, RuleSet, Cands | None, RuleSet] | None = None
            for t, taken, over, static, ecmp, lists, owner in sites:
                if taken is not None and key not in taken:
                    continue
                cands = self._cands(t, fam, key, skip)
                if shared is not None and shared[0] == cands and shared[1] == ecmp and key not in static:
                    before, new, after = shared[2], shared[3], shared[4]
                else:
                    before = snapshot(t, fam, key, cands)
                    new = change(cands)
                    after = snapshot(t, fam, key, new)
                    if key not in static:
                        shared = (cands, ecmp, before, new, after)
                if type(new) is tuple:
                    over[key] = new
                else:
                    over.pop(key, None)
                if owner is not None:
                    if type(new) is int:
                        owner[key] = new
                    else:
                        owner.pop(key, None)
                if after != before:
                    _append(lists, key, before, after)

    def _repath(self, a: int, fam: int, keys: list[int], path: AsPath, b: ChangeBuilder) -> None:
        """A new AS path from ``a`` for prefixes it offers (distinct ``keys``): the candidates stay, the
        rule sets change (R27.2). Grouped as in :meth:`_resolve`: the rule sets before are rendered per
        group from the old offers, those after from the new ones; a few keys (below ``bulk.GROUPED``)
        key by key."""
        if len(keys) < bulk.GROUPED:
            for key in keys:
                was = [(t, self.rules(t, fam, key)) for t in self._stores[a]]
                self._offers[a][fam][key] = path
                for t, rules in was:
                    now = self.rules(t, fam, key)
                    if now != rules:
                        _append(b.delta(t).lists(fam), key, rules, now)
            return
        batch = Batch(keys, self._offers, fam)
        offers = batch.offers
        befores: dict[tuple[object, ...], RuleSet] = {}
        plans: list[tuple[int, Groups, dict[Hashable, RuleSet]]] = []
        for t in self._stores[a]:
            groups = self._grouped(t, fam, keys, None, -1, batch)
            before: dict[Hashable, RuleSet] = {}
            for sig, (rep, cands) in groups.reps.items():
                before[sig] = self._shared_snapshot(befores, t, fam, rep, cands, offers)
            plans.append((t, groups, before))
        offers[a].update(dict.fromkeys(keys, path))
        afters: dict[tuple[object, ...], RuleSet] = {}
        for t, groups, before in plans:
            results: dict[Hashable, Outcome] = {}
            for sig, (rep, cands) in groups.reps.items():
                results[sig] = (before[sig], cands, self._shared_snapshot(afters, t, fam, rep, cands, offers))
            record(groups, results, b.delta(t).lists(fam))

    def _shared_snapshot(self, memo: dict[tuple[object, ...], RuleSet], t: int, fam: int, rep: int,
                         cands: Cands | None, offers: list[dict[int, AsPath]]) -> RuleSet:
        """``_snapshot`` of a group's representative key, once per set of inputs that decide it (stores
        with the same inputs share the tuple)."""
        share = self._decides(t, fam, rep, cands, offers)
        found = memo.get(share)
        if found is None:
            found = memo[share] = self._snapshot(t, fam, rep, cands)
        return found

    def _decides(self, t: int, fam: int, key: int, cands: Cands | None, offers: list[dict[int, AsPath]],
                 new: Cands | None = None) -> tuple[object, ...]:
        """What decides the rule sets of ``key`` in store ``t`` with candidates ``cands`` (and ``new``): the
        ECMP flag (R30), the static next hop (R27.1, R32), the candidates and their AS paths (R27.2-R27.4,
        R31) - a memo key under which stores share one resolution."""
        return (self._ecmp[t], self._static[t][fam].get(key), cands,
                *[offers[c][key] for c in sorted({*as_members(cands), *as_members(new)})])

    def _grouped(self, t: int, fam: int, keys: list[int], keyset: set[int] | None, skip: int, batch: Batch,
                 found: list[tuple[int, ...] | None] | None = None) -> Groups:
        """The keys of store ``t`` (their set; None: the call's) grouped by candidates (read without
        ``skip``; ``found``: ``over``'s values for them, when looked up already), paths and static next hop."""
        owner = self._owner[t]
        cands = candidates(keys, self._over[t][fam], None if owner is None else owner[fam], self._imports[t],
                           batch, skip, found)
        static = self._static[t][fam]
        nhs = list(map(static.get, keys)) if static and not static.keys().isdisjoint(
            batch.probe() if keyset is None else keyset) else None
        return partition(keys, cands, nhs, batch)


def _append(lists: tuple[list[int], list[RuleSet], list[RuleSet]], key: int, before: RuleSet, after: RuleSet) -> None:
    """Record one destination's change in a table's change lists (``TableDelta.lists``)."""
    lists[0].append(key)
    lists[1].append(before)
    lists[2].append(after)
