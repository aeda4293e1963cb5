"""Bulk steps of the route store: candidate tuples, removals recorded in bulk, owners dropped, the GC paused.

How it works: a destination's *candidates* are one attachment index or a sorted tuple of them
(``add_candidate``/``discard_candidate`` keep the tuple sorted, so the R31 order is the tuple's). A
removal of many keys is recorded in a table's change lists with list operations at C speed
(``record_removed``), the few contested keys taken out afterwards; the withdrawn keys leave a wide
store's owner index (``disown``: one ``clear()`` when all go, else a C-level map). ``Bulk`` pauses the
cyclic garbage collector while a call touches many prefixes. ``SPARSE`` and ``FEW`` choose between the
ways of recording, ``GROUPED`` between resolving contested keys one by one and in groups; the property
test runs every way.
"""

from __future__ import annotations

import bisect
import gc
from collections import deque
from itertools import compress, filterfalse
from operator import not_

from controlplane.engine.rules import NO_RULES, RuleSet

BULK = 10_000  # calls touching more prefixes than this pause the cyclic garbage collector
SPARSE = 64  # removals with fewer than 1 in SPARSE keys contested record in bulk, then delete those
FEW = 16  # ... found by a list scan each when at most FEW, else through a position dict
WIDE = 8  # a store importing more attachments than this keeps an owner index of its destinations
GROUPED = 16  # contested keys are grouped (engine/contested.py) when a store has this many in one call
Cands = int | tuple[int, ...]


class Bulk:
    """Pauses the cyclic GC during a bulk update: it creates millions of small tuples and no cycles,
    and repeated full collections over them would double its time. The previous state is restored."""

    __slots__ = ("paused",)

    def __init__(self, size: int) -> None:
        self.paused = size >= BULK and gc.isenabled()

    def __enter__(self) -> None:
        if self.paused:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.paused:
            gc.enable()


def add_candidate(cands: Cands | None, a: int) -> Cands:
    """``a`` among the candidates (kept sorted)."""
    if cands is None:
        return a
    if type(cands) is int:
        return (cands, a) if cands < a else (a, cands)
    items = list(cands)  # type: ignore[arg-type]
    bisect.insort(items, a)
    return tuple(items)


def discard_candidate(cands: Cands, a: int) -> Cands | None:
    """The candidates without ``a`` (None when none is left)."""
    if type(cands) is int:
        return None
    rest = tuple(c for c in cands if c != a)  # type: ignore[union-attr]
    return rest[0] if len(rest) == 1 else rest


def disown(owner: dict[int, int], gone: list[int], taken: set[int]) -> None:
    """Withdrawn keys leave a wide store's owner index (the contested ones are resolved instead)."""
    if not taken and len(owner) == len(gone):
        owner.clear()
        return
    deque(map(owner.__delitem__, filterfalse(taken.__contains__, gone) if taken else gone), maxlen=0)


def record_removed(keys_out: list[int], befores_out: list[RuleSet], afters_out: list[RuleSet], keys: list[int],
                   befores: list[RuleSet], taken: set[int]) -> None:
    """Record ``keys`` (with their rule sets before) as removed, except the ``taken`` ones: in bulk, and
    when few are taken by deleting them from the bulk-extended lists (positions found at C speed)."""
    if taken and len(taken) * SPARSE > len(keys):
        plain = list(map(not_, map(taken.__contains__, keys)))  # a mask, at C speed
        count = len(keys_out)
        keys_out.extend(compress(keys, plain))
        befores_out.extend(compress(befores, plain))
        afters_out.extend([NO_RULES] * (len(keys_out) - count))
        return
    start = len(keys_out)
    keys_out.extend(keys)
    befores_out.extend(befores)
    afters_out.extend([NO_RULES] * len(keys))
    if taken:
        if len(taken) <= FEW:  # a C-level scan each
            found = [keys.index(k) + start for k in taken]
        else:
            where = dict(zip(keys, range(start, start + len(keys)), strict=True))
            found = [where[k] for k in taken]
        for i in sorted(found, reverse=True):
            del keys_out[i], befores_out[i], afters_out[i]
