"""Route dumps as a stream of text chunks: ``drg routes`` of a million rules without the document in memory.

How it works. A :class:`RoutePlan` says which tables of which engines a dump holds (``Drgs.route_plan``
chooses them, as ``drg routes`` does). :func:`iter_json` renders the plan's document - byte for byte
what ``json.dumps`` of :meth:`RoutePlan.document` gives in the chosen :class:`Style` (``json.dumps``'
defaults, compact, or ``indent=2`` as the CLI prints) - as a sequence of strings: the small skeleton
(every table without its rules) is dumped once with a marker string where each ``rules`` list goes, and
each list is produced chunk by chunk (:data:`CHUNK` destinations at a time) by :func:`rule_chunks`.

A chunk never builds a dict per rule. The rule sets of a table's destinations repeat (one per next
hop, flags and AS path), so each distinct rule set is rendered once, through ``RuleContext.rule_json``
with an empty destination, into a list of text parts cut where the destination goes
(:meth:`RuleText.rule_sets`); a chunk is then ``"".join(map(str.join, destinations, parts))`` with the
destinations formatted in bulk (``prefix.format_prefixes``) - C-level loops apart from one
``rules(t, fam, key)`` call per destination. A chunk whose destinations each have one rule from one
attachment (``sole_offers``: a bulk import) skips even that: with one AS path it is a single
``(after + before).join(destinations)`` (:meth:`RuleText.bulk`). The same machinery renders the text
dump (``controlplane/render_dump.py``) with other parts.

A dump is read while the engine may change between chunks (the daemon awaits between them): it is
not a snapshot. The destinations are those of the table when its dump starts; each chunk shows the
rules they have when it is rendered (a destination withdrawn meanwhile has none). A new configuration
mid-dump is noticed at the next chunk: rules are rendered with its names, and a table it removed
ends there. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from controlplane.engine.rules import AsPath, Rule, RuleContext, RuleSet
from controlplane.prefix import format_prefixes

if TYPE_CHECKING:
    from controlplane.engine.engine import RouteEngine

CHUNK = 4096  # destinations per chunk: a few milliseconds of work
CACHE_LIMIT = 20_000  # distinct rule sets kept per table dump (a table of many AS paths starts over)
K = TypeVar("K")
V = TypeVar("V")
_RULES_MARK = "\x00rules"
_RULES_MARK_RE = re.compile(r'"\\u0000rules(\d+)"')


@dataclass(frozen=True)
class Style:
    """The ``json.dumps`` arguments a dump reproduces: separators and indent (None or 2)."""

    item_sep: str
    key_sep: str
    indent: int | None = None

    def dumps(self, obj: Any) -> str:
        return json.dumps(obj, separators=(self.item_sep, self.key_sep), indent=self.indent)


DEFAULT = Style(", ", ": ")  # json.dumps(doc): the control API's body
COMPACT = Style(",", ":")  # MQTT payloads
INDENTED = Style(",", ": ", 2)  # json.dumps(doc, indent=2): what ``drg routes --json`` prints


@dataclass(frozen=True)
class RoutePlan:
    """The tables of a route dump: per DRG (name, engine, table names); ``multi``: the ``drgs`` shape."""

    multi: bool
    drgs: tuple[tuple[str, RouteEngine, tuple[str, ...]], ...]

    def _shape(self, table: Callable[[RouteEngine, str], Any]) -> dict[str, Any]:
        if not self.multi:
            _, engine, names = self.drgs[0]
            return {"routeTables": [table(engine, n) for n in names]}
        return {"drgs": [{"drg": d, "routeTables": [table(engine, n) for n in names]}
                         for d, engine, names in self.drgs]}

    def document(self) -> dict[str, Any]:
        """The whole document as dicts (``drg routes --json``): for small dumps and the Python API."""
        return self._shape(lambda engine, name: engine.route_table(name))

    def skeleton(self) -> tuple[dict[str, Any], list[tuple[RouteEngine, str]]]:
        """The document with a marker string instead of each ``rules`` list, and the tables in order."""
        tables: list[tuple[RouteEngine, str]] = []

        def head(engine: RouteEngine, name: str) -> dict[str, Any]:
            tables.append((engine, name))
            return {**engine.table_head(name), "rules": f"{_RULES_MARK}{len(tables) - 1}"}

        return self._shape(head), tables


class Memo(dict[K, V]):
    """A dict that computes a missing value with ``make(key)`` and keeps it."""

    def __init__(self, make: Callable[[K], V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> V:
        value = self[key] = self._make(key)
        return value


class RuleText(ABC):
    """How one kind of dump renders rules: :meth:`rule` gives the text before and after the destination
    of one rule, :meth:`destinations` the destinations' texts, and :meth:`bulk` a chunk of destinations
    that each have one rule from one attachment."""

    @abstractmethod
    def rule(self, ctx: RuleContext, rule: Rule) -> tuple[str, str]:
        """The text before and after the destination of one rule."""

    def destinations(self, afi: int, keys: list[int]) -> Iterable[str]:
        return format_prefixes(afi, keys)

    def rule_sets(self, ctx: RuleContext) -> Memo[RuleSet, list[str]]:
        """Rule set -> parts: ``destination.join(parts)`` is the text of its rules for that destination."""

        def make(rules: RuleSet) -> list[str]:
            parts = [""]
            for rule in rules:
                before, after = self.rule(ctx, rule)
                parts[-1] += before
                parts.append(after)
            return parts

        return Memo(make)

    def sole(self, ctx: RuleContext, a: int) -> Memo[AsPath, tuple[str, str]]:
        """AS path -> the text before and after the destination of the rule set ``((a, path, 0),)``."""
        return Memo(lambda path: self.rule(ctx, (a, path, 0)))

    def bulk(self, sole: Memo[AsPath, tuple[str, str]], paths: list[AsPath], afi: int, keys: list[int]) -> str:
        """The text of ``keys``, key ``i`` with the one rule of AS path ``paths[i]``: when the chunk has one
        AS path (a bulk import's usual case) one C-level join of the destinations, else one per key."""
        first = paths[0]
        if paths.count(first) == len(paths):
            before, after = sole[first]
            return before + (after + before).join(self.destinations(afi, keys)) + after
        pairs = list(map(sole.__getitem__, paths))
        return "".join(map("".join, zip(map(itemgetter(0), pairs), self.destinations(afi, keys),
                                        map(itemgetter(1), pairs), strict=True)))


class JsonRules(RuleText):
    """Rules as JSON list items at indentation ``pad`` (``""`` without indent), each led by the item
    separator (the caller drops it before a list's first item)."""

    def __init__(self, style: Style, pad: str) -> None:
        self.newline = "\n" + pad if style.indent is not None else ""
        self.lead = style.item_sep + self.newline
        self.head = f'"destination"{style.key_sep}"'
        self.style = style

    def rule(self, ctx: RuleContext, rule: Rule) -> tuple[str, str]:
        body = self.style.dumps(ctx.rule_json("", rule))
        if self.newline:
            body = body.replace("\n", self.newline)
        cut = body.index(self.head) + len(self.head)  # the destination is the first key
        return self.lead + body[:cut], body[cut:]


def rule_chunks(engine: RouteEngine, name: str, text: RuleText, chunk: int | None = None) -> Iterator[str]:
    """The rules of table ``name``, IPv4 then IPv6 in key order, ``chunk`` destinations per string,
    rendered by ``text``: a chunk whose destinations all have one rule from one attachment takes the
    bulk path (``RuleText.bulk``), any other chunk renders rule sets (one ``rules()`` call per
    destination)."""
    chunk = chunk or CHUNK
    config = engine.config
    t = engine.table_index(name)
    ctx = engine.rules_ctx
    sets = text.rule_sets(ctx)
    sole: dict[int, Memo[AsPath, tuple[str, str]]] = {}
    for fam in (0, 1):
        keys = engine.keys(t, fam)
        if len(keys) > chunk:
            yield ""  # sorting a big table's keys was a step's worth of work: a sliced reader may pause here
        for i in range(0, len(keys), chunk):
            if engine.config is not config:  # a new configuration since the last chunk
                config, ctx = engine.config, engine.rules_ctx
                try:
                    t = engine.table_index(name)
                except KeyError:
                    return
                sets = text.rule_sets(ctx)
                sole = {}
            some = keys[i:i + chunk]
            bulk = engine.sole_offers(t, fam, some)
            if bulk is not None:
                a, paths = bulk
                parts = sole.get(a)
                if parts is None:
                    parts = sole[a] = text.sole(ctx, a)
                yield text.bulk(parts, paths, fam + 1, some)
                if len(parts) > CACHE_LIMIT:
                    parts.clear()
                continue
            rule_sets = map(sets.__getitem__, map(partial(engine.rules, t, fam), some))
            yield "".join(map(str.join, text.destinations(fam + 1, some), rule_sets))
            if len(sets) > CACHE_LIMIT:
                sets.clear()


def table_rules_json(engine: RouteEngine, name: str, style: Style, pad: str = "") -> Iterator[str]:
    """One table's ``rules`` list as JSON text, the list opening at indentation ``pad``."""
    inner = pad + " " * style.indent if style.indent is not None else ""
    first = True
    yield "["
    for text in rule_chunks(engine, name, JsonRules(style, inner)):
        if not text:
            yield ""  # a step's worth of work without text (sorting the keys): a sliced reader pauses
            continue
        if first:
            text = text[len(style.item_sep):]
            first = False
        yield text
    yield "]" if first or style.indent is None else "\n" + pad + "]"


def iter_json(plan: RoutePlan, style: Style = DEFAULT) -> Iterator[str]:
    """The plan's document as JSON text, in pieces: ``"".join(iter_json(plan, s)) == s.dumps(plan.document())``."""
    skeleton, tables = plan.skeleton()
    yield from _splice(style.dumps(skeleton), tables, style)


def iter_table_json(engine: RouteEngine, name: str, style: Style = COMPACT) -> Iterator[str]:
    """One table as ``style.dumps(engine.route_table(name))`` (the retained MQTT table), in pieces."""
    yield from _splice(style.dumps({**engine.table_head(name), "rules": f"{_RULES_MARK}0"}), [(engine, name)],
                       style)


def _splice(text: str, tables: list[tuple[RouteEngine, str]], style: Style) -> Iterator[str]:
    pos = 0
    for match in _RULES_MARK_RE.finditer(text):
        yield text[pos:match.start()]
        line = text[text.rfind("\n", 0, match.start()) + 1:match.start()]
        engine, name = tables[int(match.group(1))]
        yield from table_rules_json(engine, name, style, " " * (len(line) - len(line.lstrip(" "))))
        pos = match.end()
    yield text[pos:]


__all__ = ["COMPACT", "DEFAULT", "INDENTED", "JsonRules", "Memo", "RoutePlan", "RuleText", "Style", "iter_json",
           "iter_table_json", "rule_chunks"]
