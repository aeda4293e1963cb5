"""Contested destinations in bulk: the keys of one call whose rule sets are decided alike, resolved once.

How it works. The rule set of a destination in a store (``TableStore._snapshot``) depends on its key
only through four things: its candidates, the AS path each candidate offers for it (R27.2; an RPC
path also carries its distance and provenance, R102), the next hop of its static rule (R27.1, R32)
and the table's ECMP flag (R30); attachment types and order (R27.3, R31) are per attachment. The keys
of one call and store that agree on these form a *group*: its rule set before, new candidates and
rule set after are computed once, from a representative key, with the engine's own ``_snapshot`` and
change functions - exactly what resolving each key alone gives - and every key of the group gets the
same tuples (as the bulk paths of uncontested keys already do, so ``TableDelta.counts`` and
``advert_transitions`` judge each pair once).

- :func:`candidates` gives every key's candidates as ``TableStore._cands`` would: contested keys from
  the store's ``over`` dict, the others from its owner index (a wide store) or from the call's keys
  that each imported attachment offers (:meth:`Batch.hits`: one C-level intersection per attachment
  and call, shared by every store importing it).
- :func:`partition` groups the keys. When all share one candidate set - the redundant-VC shape: a
  second VC announcing what the first offers, or one of them going down - each candidate's AS paths
  are read with one ``map`` (:meth:`Batch.column`, shared by the stores) and checked with
  ``list.count``: equal paths (interned: usually one object) are one group, and only the columns that
  vary make a per-key signature (``zip`` of their ``id``s: identity, exact), so even many paths cost
  no Python code per key. Keys with different candidate sets take a Python loop that builds each
  key's signature (still far cheaper than resolving each key).
- :func:`place` and :func:`record` apply the groups' results with C-level operations: ``over`` and
  owner updates from ``dict.fromkeys`` (one dict per call, :meth:`Batch.filled`) or ``zip``/``compress``,
  the change lists extended with ``[rules] * n`` or a ``map`` over the signatures - in the order of
  the keys, the order in which resolving key by key recorded them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, not_

from controlplane.engine.bulk import Cands
from controlplane.engine.rules import AsPath, RuleSet

Outcome = tuple[RuleSet, Cands | None, RuleSet]  # rule set before, candidates after, rule set after
# per store: its contested keys, their set (None: all of the call's), over's values for them if looked up
Contested = tuple[int, list[int], set[int] | None, list[tuple[int, ...] | None] | None]


class Batch:
    """What the stores of one call share: per attachment, the call's keys it offers; per candidate and
    list of keys, the AS paths (a column); per list of keys and value, a dict of them; per list of keys
    and candidates, their partition. Lists of keys are known by identity (a store whose contested keys
    are all of the call's gets the call's list)."""

    __slots__ = ("_columns", "_covers", "_fam", "_filled", "_hits", "_keyset", "_offers", "_pairs", "keys",
                 "partitions")

    def __init__(self, keys: list[int], offers: Sequence[Sequence[dict[int, AsPath]]], fam: int) -> None:
        self.keys = keys  # distinct, in call order
        self._keyset: set[int] | None = None
        self._pairs, self._fam = offers, fam  # per attachment, per family
        self._offers: list[dict[int, AsPath]] | None = None
        self._covers: dict[int, bool] = {}
        self._hits: dict[int, set[int]] = {}
        self._columns: dict[tuple[int, int], tuple[list[int], list[AsPath], bool]] = {}
        self._filled: dict[tuple[int, Cands], tuple[list[int], dict[int, Cands]]] = {}
        self.partitions: dict[tuple[int, Cands | None], Groups] = {}  # by keys (identity) and candidates

    @property
    def offers(self) -> list[dict[int, AsPath]]:
        """Per attachment, its offers of the call's family."""
        if self._offers is None:
            self._offers = [pair[self._fam] for pair in self._pairs]
        return self._offers

    def keyset(self) -> set[int]:
        if self._keyset is None:
            self._keyset = set(self.keys)
        return self._keyset

    def probe(self) -> Collection[int]:
        """The call's keys for a membership scan of a few others: the set once built, else the list."""
        return self.keys if self._keyset is None else self._keyset

    def covers(self, m: int) -> bool:
        """Whether attachment ``m`` offers every key of the call (a scan that stops at the first miss)."""
        found = self._covers.get(m)
        if found is None:
            found = self._covers[m] = holds_all(self._pairs[m][self._fam], self.keys)
        return found

    def hits(self, m: int) -> set[int]:
        """The call's keys that attachment ``m`` offers (the smaller side iterated; not to be modified)."""
        found = self._hits.get(m)
        if found is None:
            offers = self._pairs[m][self._fam]
            if not offers:
                found = set()
            elif len(offers) * 4 < len(self.keys):
                found = offers.keys() & self.keyset()
            else:
                found = offers.keys() & self.keys
            self._hits[m] = found
        return found

    def column(self, c: int, keys: list[int]) -> tuple[list[AsPath], bool]:
        """The AS paths candidate ``c`` offers for ``keys``, and whether they are all equal."""
        found = self._columns.get((c, id(keys)))  # the entry holds ``keys``: its id stays its own
        if found is None:
            paths = list(map(self.offers[c].__getitem__, keys))
            found = self._columns[(c, id(keys))] = (keys, paths, paths.count(paths[0]) == len(paths))
        return found[1], found[2]

    def filled(self, keys: list[int], value: Cands) -> dict[int, Cands]:
        """``dict.fromkeys(keys, value)``, built once per call (stores merge it at C speed)."""
        found = self._filled.get((id(keys), value))  # the entry holds ``keys``: its id stays its own
        if found is None:
            found = self._filled[(id(keys), value)] = (keys, dict.fromkeys(keys, value))
        return found[1]


@dataclass(slots=True)
class Groups:
    """Keys partitioned by what decides their rule sets: ``sigs[i]`` is the group of ``keys[i]`` (None:
    one group for all, signature None); ``reps`` maps a group to a representative key and the group's
    candidates (the old ones, for :func:`place`). ``expanded``: the per-key rule sets before and after
    of :func:`record`, by the identities of the groups' rule sets (stores sharing a partition and its
    rule sets share them too)."""

    keys: list[int]
    sigs: list[Hashable] | None
    reps: dict[Hashable, tuple[int, Cands | None]]
    expanded: dict[tuple[int, ...], tuple[tuple[tuple[RuleSet, RuleSet], ...], list[RuleSet], list[RuleSet]]] = \
        field(default_factory=dict)


def holds_all(held: Mapping[int, object], keys: list[int]) -> bool:
    """Whether ``held`` has every one of ``keys`` (distinct): a C-level scan, stopping at the first miss."""
    return len(held) >= len(keys) and all(map(held.__contains__, keys))


def candidates(keys: list[int], over: dict[int, tuple[int, ...]], owner: dict[int, int] | None,
               imported: Sequence[int], batch: Batch, skip: int,
               found: list[tuple[int, ...] | None] | None = None) -> list[Cands | None]:
    """Per key, the candidates ``TableStore._cands`` gives (``skip``: an attachment left out): contested
    keys from ``over`` (``found``: its values for ``keys``, looked up already), the others from ``owner``
    or the ``imported`` attachments. C-level throughout."""
    if over:
        found = list(map(over.get, keys)) if found is None else found
        missing = found.count(None)
        if not missing:
            return found  # type: ignore[return-value]
        if missing != len(keys):
            rest = list(compress(keys, map(is_, found, repeat(None))))
            sole = dict(zip(rest, _sole(rest, owner, imported, batch, skip), strict=True))
            return list(map(over.get, keys, map(sole.get, keys)))
    return _sole(keys, owner, imported, batch, skip)


def _sole(keys: list[int], owner: dict[int, int] | None, imported: Sequence[int], batch: Batch,
          skip: int) -> list[Cands | None]:
    """Candidates of uncontested ``keys``: one attachment each (the owner index of a wide store, else the
    first imported attachment that offers the key), or None."""
    if owner is not None:
        sole: list[Cands | None] = list(map(owner.get, keys))
        return [None if s == skip else s for s in sole] if skip >= 0 and skip in sole else sole
    others = [m for m in imported if m != skip]
    for m in others:
        if batch.covers(m):  # m offers them all, so no other does (those keys would be contested)
            return [m] * len(keys)
    offering = [(m, hit) for m in others if (hit := batch.hits(m))]
    if not offering:
        return [None] * len(keys)
    for m, hit in offering:
        if hit.issuperset(keys):  # the same, for these keys
            return [m] * len(keys)
    found: dict[int, Cands] = {}
    for m, hit in reversed(offering):  # the first in import order wins
        found.update(dict.fromkeys(hit.intersection(keys), m))
    return list(map(found.get, keys))


def as_members(cands: Cands | None) -> tuple[int, ...]:
    """The candidates as a tuple (none, one or several)."""
    if cands is None:
        return ()
    return (cands,) if type(cands) is int else cands  # type: ignore[return-value]


def partition(keys: list[int], cands: list[Cands | None], nhs: list[int | None] | None, batch: Batch) -> Groups:
    """Group ``keys`` by candidates, their AS paths and static next hops (``nhs``, None when no key has a
    static rule). One shared candidate set is checked and read column by column at C speed; mixed
    candidate sets build each key's signature in Python."""
    n = len(keys)
    first = cands[0]
    if cands.count(first) == n:
        if nhs is not None and nhs.count(nhs[0]) != n:
            return _columns(keys, first, nhs, batch)
        cached = batch.partitions.get((id(keys), first))  # one static next hop (or none): as other stores
        if cached is None:  # the partition holds ``keys``: its id stays its own
            cached = batch.partitions[(id(keys), first)] = _columns(keys, first, None, batch)
        return cached
    offers = batch.offers
    sigs: list[tuple[Cands | None, int | None, *tuple[int, ...]]] = []
    append = sigs.append
    for key, found, nh in zip(keys, cands, nhs if nhs is not None else repeat(None), strict=False):
        if type(found) is int:
            append((found, nh, id(offers[found][key])))
        elif found is None:
            append((None, nh))
        else:
            append((found, nh, *[id(offers[m][key]) for m in found]))  # type: ignore[union-attr]
    reps = {sig: (key, sig[0]) for sig, key in dict(zip(sigs, keys, strict=True)).items()}
    return Groups(keys, sigs, reps)  # type: ignore[arg-type]


def _columns(keys: list[int], first: Cands | None, nhs: list[int | None] | None, batch: Batch) -> Groups:
    """:func:`partition` of keys that share the candidates ``first``: by the columns that vary."""
    varying: list[list[int | None]] = []
    for c in as_members(first):
        column, same = batch.column(c, keys)
        if not same:  # equal paths (interned: one object) are one group; else by identity
            varying.append(list(map(id, column)))
    if nhs is not None:
        varying.append(nhs)
    if not varying:
        return Groups(keys, None, {None: (keys[0], first)})
    sigs: list[Hashable] = list(varying[0]) if len(varying) == 1 else list(zip(*varying, strict=True))
    return Groups(keys, sigs, {sig: (key, first) for sig, key in dict(zip(sigs, keys, strict=True)).items()})


def place(groups: Groups, results: dict[Hashable, Outcome], over: dict[int, tuple[int, ...]],
          owner: dict[int, int] | None, batch: Batch) -> None:
    """Store the new candidates: two or more in ``over``, one in a wide store's ``owner`` index, none
    in neither (the offers imply the rest)."""
    keys, sigs = groups.keys, groups.sigs
    was = {type(old) for _, old in groups.reps.values()}
    now = {new for _, new, _ in results.values()}
    if len(was) == 1 and len(now) == 1:  # as one group: all old candidates alike, one new set
        (kind,), (new,) = was, now
        if type(new) is tuple:
            over.update(batch.filled(keys, new))  # type: ignore[arg-type]
        elif kind is tuple:  # every key was in over
            if len(over) == len(keys):
                over.clear()
            else:
                deque(map(over.__delitem__, keys), maxlen=0)
        if owner is not None:
            if type(new) is int:
                owner.update(batch.filled(keys, new))  # type: ignore[arg-type]
            elif kind is int:
                deque(map(owner.pop, keys, repeat(None)), maxlen=0)
        return
    assert sigs is not None
    news = list(map({sig: new for sig, (_, new, _) in results.items()}.__getitem__, sigs))
    tupled = list(map({sig: type(new) is tuple for sig, (_, new, _) in results.items()}.__getitem__, sigs))
    over.update(compress(zip(keys, news, strict=True), tupled))  # type: ignore[arg-type]
    deque(map(over.pop, compress(keys, map(not_, tupled)), repeat(None)), maxlen=0)
    if owner is not None:
        single = list(map({sig: type(new) is int for sig, (_, new, _) in results.items()}.__getitem__, sigs))
        owner.update(compress(zip(keys, news, strict=True), single))  # type: ignore[arg-type]
        deque(map(owner.pop, compress(keys, map(not_, single)), repeat(None)), maxlen=0)


def record(groups: Groups, results: dict[Hashable, Outcome],
           lists: tuple[list[int], list[RuleSet], list[RuleSet]]) -> None:
    """Append (key, before, after) to a table's change lists for the keys whose rules changed, in the
    keys' order: one shared tuple per group, ``[rules] * n`` or a C-level ``map`` over the signatures."""
    keys_out, befores_out, afters_out = lists
    keys, sigs = groups.keys, groups.sigs
    if sigs is None:
        ((before, _, after), ) = results.values()
        if after != before:
            keys_out.extend(keys)
            befores_out.extend([before] * len(keys))
            afters_out.extend([after] * len(keys))
        return
    outcomes = tuple((results[sig][0], results[sig][2]) for sig in groups.reps)
    memo = tuple(id(rules) for pair in outcomes for rules in pair)
    expanded = groups.expanded.get(memo)
    if expanded is None:  # the entry keeps the rule sets alive, so their ids stay theirs
        before_of = dict(zip(groups.reps, (before for before, _ in outcomes), strict=True))
        after_of = dict(zip(groups.reps, (after for _, after in outcomes), strict=True))
        expanded = groups.expanded[memo] = (outcomes, list(map(before_of.__getitem__, sigs)),
                                            list(map(after_of.__getitem__, sigs)))
    _, befores, afters = expanded
    changed_of = {sig: after != before for sig, (before, _, after) in results.items()}
    if all(changed_of.values()):  # adding or dropping a candidate
        keys_out.extend(keys)
        befores_out.extend(befores)
        afters_out.extend(afters)
        return
    changed = list(map(changed_of.__getitem__, sigs))
    keys_out.extend(compress(keys, changed))
    befores_out.extend(compress(befores, changed))
    afters_out.extend(compress(afters, changed))
