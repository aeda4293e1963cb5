"""The text route dump (``drg routes`` without ``--json``) as a stream: ``render.routes`` without the document.

How it works. The text is an aligned table per route table (``render.table``), so each table is read
twice through the chunked machinery of ``engine/dump.py``: the first pass renders nothing but learns
the column widths (the widest destination, and the columns of every distinct rule set, rendered once
each through ``RuleContext.rule_json``) and whether the table has RPC-learned rules (two more
columns); the second pass yields the lines, a chunk of destinations at a time, each destination
padded to its column and followed by the fixed text of its rule set. ``"".join(iter_text(plan))`` is
``render.routes(plan.document())`` for a table that does not change during the dump; one that does
change shows each destination as it is when its chunk is rendered (see ``engine/dump.py``). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat
from typing import TYPE_CHECKING, Any

from controlplane.engine.dump import Memo, RoutePlan, RuleText, rule_chunks
from controlplane.engine.rules import AsPath, Rule, RuleContext
from controlplane.prefix import format_prefixes, widest
from controlplane.render import as_path_text, rule_status

if TYPE_CHECKING:
    from controlplane.engine.engine import RouteEngine

HEADERS = ("DESTINATION", "NEXT HOP", "TYPE", "PROVENANCE", "AS PATH")
RPC_HEADERS = ("DIST", "DRG PATH")
STATUS = "STATUS"
_HAS_RULES = "+"  # pass one renders no text, only this per rule (a table whose rules all went has none)


def _cells(rule: dict[str, Any]) -> tuple[str, ...]:
    """The cells after the destination: next hop, type, provenance, AS path, distance, DRG path, status."""
    return (str(rule["nextHop"]), str(rule["routeType"]), str(rule["routeProvenance"]),
            as_path_text(rule.get("asPath") or []), str(rule.get("networkDistance", 0)),
            " ".join(rule.get("drgPath") or []) or "-", rule_status(rule))


class _Widths(RuleText):
    """Pass one: column widths, and whether a rule carries RPC fields; renders the destinations only."""

    def __init__(self) -> None:
        self.widths = [len(h) for h in (*HEADERS, *RPC_HEADERS, STATUS)]
        self.rpc = False

    def rule(self, ctx: RuleContext, rule: Rule) -> tuple[str, str]:
        doc = ctx.rule_json("", rule)
        self.rpc = self.rpc or "networkDistance" in doc
        self.widths[1:] = map(max, self.widths[1:], map(len, _cells(doc)))
        return "", ""

    def destinations(self, afi: int, keys: list[int]) -> Iterable[str]:
        self.widths[0] = max(self.widths[0], widest(afi, keys))
        return repeat(_HAS_RULES)  # a chunk's text is empty unless one of its destinations has a rule

    def bulk(self, sole: Memo[AsPath, tuple[str, str]], paths: list[AsPath], afi: int, keys: list[int]) -> str:
        for path in set(paths) if paths.count(paths[0]) != len(paths) else paths[:1]:
            sole[path]  # each distinct rule's cells, once
        self.widths[0] = max(self.widths[0], widest(afi, keys))
        return _HAS_RULES


class _Lines(RuleText):
    """Pass two: one line per rule, the destination padded to its column."""

    def __init__(self, widths: list[int], rpc: bool) -> None:
        self.widths = widths
        self.rpc = rpc

    def rule(self, ctx: RuleContext, rule: Rule) -> tuple[str, str]:
        cells = _cells(ctx.rule_json("", rule))
        picked = [*zip(cells[:3], self.widths[1:4], strict=True), (cells[3], self.widths[4])]
        if self.rpc:
            picked += [(cells[4], self.widths[5]), (cells[5], self.widths[6])]
        return "", "".join("  " + c.ljust(w) for c, w in picked) + "  " + cells[6] + "\n"

    def destinations(self, afi: int, keys: list[int]) -> Iterable[str]:
        return map(str.ljust, format_prefixes(afi, keys), repeat(self.widths[0]))


def _heading(engine: RouteEngine, name: str) -> str:
    head = engine.table_head(name)
    ecmp = "on" if head.get("isEcmpEnabled") else "off"
    attachments = ", ".join(head.get("attachments") or []) or "none"
    return (f"Route table {head['name']}  (import: {head.get('importDistribution') or 'none'}, ECMP {ecmp}, "
            f"used by: {attachments})\n")


def table_text(engine: RouteEngine, name: str) -> Iterator[str]:
    """One table: its heading line, then the aligned rules (or ``(no rules)``), every line ended."""
    yield _heading(engine, name)
    widths = _Widths()
    rules = False
    for text in rule_chunks(engine, name, widths):  # every chunk: the widths need them all
        rules = rules or bool(text)
        yield ""  # a pause for a caller that streams
    if not rules:
        yield "  (no rules)\n"
        return
    headers = (*HEADERS, *(RPC_HEADERS if widths.rpc else ()), STATUS)
    columns = widths.widths if widths.rpc else [*widths.widths[:5], widths.widths[7]]
    yield "  ".join(h.ljust(w) for h, w in zip(headers, columns, strict=True)).rstrip() + "\n"
    yield from rule_chunks(engine, name, _Lines(widths.widths, widths.rpc))


def _tables(engine: RouteEngine, names: tuple[str, ...]) -> Iterator[str]:
    if not names:
        yield "\n"
    for i, name in enumerate(names):
        if i:
            yield "\n"
        yield from table_text(engine, name)


def iter_text(plan: RoutePlan) -> Iterator[str]:
    """The plan's route dump as ``render.routes`` prints it, in pieces."""
    if not plan.multi:
        _, engine, names = plan.drgs[0]
        yield from _tables(engine, names)
        return
    if not plan.drgs:
        yield "(no route tables)\n"
    for drg, engine, names in plan.drgs:
        yield f"DRG {drg}\n\n"
        yield from _tables(engine, names)


__all__ = ["iter_text", "table_text"]
