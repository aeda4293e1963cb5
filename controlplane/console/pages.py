"""One route table of ``drg routes --json``, filtered by prefix and cut into pages for the console.

A 100,000-rule table must stay usable in a browser: the page asks for ``limit`` rules from ``offset``
of the rules that match its filter, and never gets the whole table. :class:`RulePages` computes the
table's document with the daemon's own query (``routes_json``) and keeps it while nothing changed
(the event count of ``status()`` is the same; the console's own event stream makes the daemon publish
every route change) and for at most ``ttl`` seconds, so paging through a large table costs one query,
not one per page. The query runs on the daemon's event loop (about a second for 100,000 rules on a
2-core machine), so while routes churn a table is recomputed at most once per ``DUTY`` times the cost
of its last computation: a page from that window says ``"fresh": false`` with ``retryAfterMs``, when
the page asks again, and the console never takes more than a fifth of the loop from BGP. Filters (:func:`matching`):

* empty: every rule;
* an address or CIDR (``10.1.0.0/16``, ``10.1.2.3``): the rules whose destination lies inside it or
  covers it (same family), i.e. what a packet to that block could match;
* any other text: the rules whose destination starts with it (``10.1.`` while typing).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_LIMIT = 500  # rules per page, at most
DUTY = 4.0  # a changed table is recomputed no sooner than DUTY x its last computation's cost


class RoutesTarget(Protocol):
    def status(self) -> dict[str, Any]: ...
    def routes_json(self, table: str | None, attachment: str | None, drg: str | None) -> dict[str, Any]: ...


Net = tuple[int, int, int]  # (IP version, first address as int, prefix length)


def _block(text: str) -> Net | None:
    """An address or CIDR as a block (strict parsing: what a person typed)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), net.prefixlen


def _net(destination: str) -> Net | None:
    """A rule's destination (canonical CIDR) as a block; IPv4 through inet_aton (100,000 in a fraction of a second)."""
    addr, _, length = destination.partition("/")
    if addr.count(".") == 3 and length.isdigit() and int(length) <= 32:
        try:
            value = int.from_bytes(socket.inet_aton(addr), "big")
        except OSError:
            return None
        bits = int(length)
        return 4, value >> (32 - bits) << (32 - bits), bits
    return _block(destination)


def _overlaps(a: Net, b: Net) -> bool:
    """Whether one block contains the other (CIDR blocks either nest or are disjoint)."""
    if a[0] != b[0]:
        return False
    bits = 32 if a[0] == 4 else 128
    shorter = min(a[2], b[2])
    shift = bits - shorter
    return a[1] >> shift == b[1] >> shift


def wanted_block(text: str) -> Net | None:
    """The block a filter names, when it is a whole address or CIDR; None for a partial prefix."""
    text = text.strip()
    if "/" not in text and text.count(".") != 3 and ":" not in text:
        return None
    return _block(text)


def matching(rules: list[dict[str, Any]], nets: Callable[[], list[Net | None]], text: str) -> list[dict[str, Any]]:
    """The rules a filter keeps (see the module docstring); ``nets`` parses the destinations, when needed."""
    text = text.strip()
    if not text:
        return rules
    block = wanted_block(text)
    if block is None:
        return [r for r in rules if r["destination"].startswith(text)]
    return [r for r, n in zip(rules, nets(), strict=True) if n is not None and _overlaps(n, block)]


@dataclass
class _Cached:
    events: int
    at: float
    cost: float  # seconds the query took
    doc: dict[str, Any]  # the table's document from routes_json, with its "drg" when the daemon has several
    nets: list[Net | None] = field(default_factory=list)  # parsed destinations, filled on the first CIDR filter


class RulePages:
    """Pages of one table's rules for the console (``GET /console/api/routes``)."""

    def __init__(self, target: RoutesTarget, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str | None, str], _Cached] = {}

    def _table(self, table: str, drg: str | None) -> tuple[_Cached, float | None]:
        """The table and, when it may be out of date, in how many seconds to ask again."""
        events = int(self.target.status().get("events", 0))
        now = self.clock()
        cached = self._cache.get((drg, table))
        if cached is not None:
            age = now - cached.at
            if cached.events == events and age < self.ttl:
                return cached, None
            if age < DUTY * cached.cost:
                return cached, DUTY * cached.cost - age
        doc = self.target.routes_json(table, None, drg)
        cost = self.clock() - now
        if "drgs" in doc:  # a multi-DRG daemon: the table of the one DRG that has it (drg= when several do)
            if len(doc["drgs"]) != 1:
                raise ValueError(f"route table {table!r} is in several DRGs; say which with drg=")
            item = doc["drgs"][0]
            found = {**item["routeTables"][0], "drg": item["drg"]}
        else:
            found = doc["routeTables"][0]
        self._cache = {(drg, table): _Cached(events, now, cost, found)}  # one table at a time: bounded memory
        return self._cache[(drg, table)], None

    def page(self, table: str, drg: str | None, text: str, offset: int, limit: int) -> dict[str, Any]:
        """``limit`` matching rules from ``offset``, with the table's header and the counts."""
        cached, retry = self._table(table, drg)
        rules: list[dict[str, Any]] = cached.doc["rules"]

        def nets() -> list[Net | None]:
            if len(cached.nets) != len(rules):
                cached.nets = [_net(r["destination"]) for r in rules]
            return cached.nets

        matched = matching(rules, nets, text)
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, max(0, len(matched) - 1)))
        header = {k: v for k, v in cached.doc.items() if k != "rules"}
        return {"table": header, "filter": text, "total": len(rules), "matched": len(matched), "offset": offset,
                "limit": limit, "rules": matched[offset:offset + limit], "fresh": retry is None,
                "retryAfterMs": None if retry is None else int(retry * 1000) + 1}
