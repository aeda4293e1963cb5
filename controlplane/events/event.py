"""The DRG's event: one shape for the log, ``Drg.events()``, ``drg events`` and MQTT.

A :class:`DrgEvent` has a :class:`EventType`, a wall-clock ``time``, an optional ``subject`` (the
attachment, session or table it concerns), in a daemon of several DRGs the ``drg`` it concerns (table
names repeat across DRGs), and a JSON-ready ``data`` dict with a ``summary``. The
router produces them; the bus (``events/bus.py``) fans them out. The data of advertisement and table
changes is a bounded sample (``advert_data``, ``table_data``): never one line per rule. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controlplane.engine.changes import AdvertDelta, TableDelta


class EventType(StrEnum):
    """Event types, as they appear in JSON (``type``) and in MQTT topics."""

    SESSION_STATE = "session-state"  # a BGP session changed state (RFC 4271 names)
    ROUTE_TABLE_CHANGE = "route-table-change"  # rules added/removed/changed in one DRG route table
    ADVERTISEMENT_CHANGE = "advertisement-change"  # what the DRG advertises to one peer changed
    CONFIG_APPLIED = "config-applied"
    CONFIG_REJECTED = "config-rejected"
    TUNNEL_STATE = "tunnel-state"  # IPSec over FastConnect tunnel up/down, with the reason (R47)
    PREFIX_LIMIT = "prefix-limit"  # a peer sent more prefixes than allowed (R58, R64)
    NOTIFICATION_SENT = "notification-sent"
    NOTIFICATION_RECEIVED = "notification-received"
    WARNING = "warning"



@dataclass(frozen=True, slots=True)
class DrgEvent:
    type: EventType
    subject: str | None
    data: dict[str, Any]
    time: float  # wall clock (seconds since the epoch), from the producer's clock
    drg: str | None = None  # in a daemon of several DRGs (drgs:): the DRG it concerns; None for the whole daemon
    _text: list[str] = field(default_factory=list, compare=False, repr=False)  # json_text(), once computed

    def to_json(self) -> dict[str, Any]:
        doc = {"type": self.type.value, "subject": self.subject, "time": round(self.time, 6), "data": self.data}
        if self.drg is not None:
            doc["drg"] = self.drg
        return doc

    def json_text(self) -> str:
        """``json.dumps(self.to_json())``, encoded once however many readers stream the event (the API's
        ``/v1/events``, the console): an event is immutable once published. The events of tables that
        share a store share one ``data`` dict (``table_data``), encoded once for all of them."""
        if not self._text:
            drg = "" if self.drg is None else ', "drg": ' + json.dumps(self.drg)
            self._text.append(f'{{"type": {json.dumps(self.type.value)}, "subject": {json.dumps(self.subject)}, '
                              f'"time": {json.dumps(round(self.time, 6))}, "data": {_data_text(self.data)}{drg}}}')
        return self._text[0]

    def line(self) -> str:
        """One human-readable log line."""
        subject = f" {self.subject}" if self.subject else ""
        if self.drg is not None:
            subject = f" {self.drg}/{self.subject}" if self.subject else f" {self.drg}"
        detail = self.data.get("summary")
        if detail is None:
            detail = " ".join(f"{k}={v}" for k, v in self.data.items())
        return f"{self.type.value}{subject}: {detail}"


_last_data: list[tuple[dict[str, Any], str]] = []  # the data dict encoded last, and its text


def _data_text(data: dict[str, Any]) -> str:
    """``json.dumps(data)``, remembered for the next event that carries the same dict."""
    if _last_data and _last_data[0][0] is data:
        return _last_data[0][1]
    text = json.dumps(data)
    _last_data[:] = [(data, text)]
    return text


# ---- the data of route events: bounded samples, never one line per rule -------------------------


SAMPLE = 4  # rules (or prefixes) rendered per route event when someone reads the events


def advert_data(advert: AdvertDelta, cap: int = SAMPLE) -> dict[str, Any]:
    """Event data of one advertisement delta: exact counts, the first ``cap`` prefixes each way (none
    with ``cap`` 0, when only the log reads it), and ``first``/``last`` as words for the log."""
    announce_count, withdraw_count = advert.counts()
    announced, withdrawn = advert.announced(cap), advert.withdrawn(cap)
    data: dict[str, Any] = {"announce": announced, "withdraw": withdrawn,
                            "announceCount": announce_count, "withdrawCount": withdraw_count}
    shown = ", ".join([f"+{p}" for p in advert.announced(4)] + [f"-{p}" for p in advert.withdrawn(4)])
    more = announce_count + withdraw_count - min(announce_count, 4) - min(withdraw_count, 4)
    data["summary"] = shown + (f" (+{more} more)" if more > 0 else "")
    data["first"], data["last"] = advert.edge_words()
    return data


def _words(change: dict[str, Any] | None) -> str | None:
    if change is None:
        return None
    rule = change["rule"]
    flag = " (conflict)" if rule["isConflict"] else ""
    return f"{change['op']} {rule['destination']} via {rule['nextHop']}{flag}"


def table_data(delta: TableDelta, cap: int = SAMPLE) -> dict[str, Any]:
    """Event data of one table delta: exact counts of added, removed and changed rules (no JSON built for
    them), JSON for a sample of at most ``cap`` rule changes (``complete`` says whether that is all of
    them; ``cap`` 0 when only the log reads the event), and the first and last change as words. Tables
    that share a store share their deltas' changes, so they share this data too (one dict, derived once:
    readers must not change it)."""
    memo = delta.memo()
    data: dict[str, Any] | None = memo.get(f"data/{cap}")
    if data is None:
        data = memo[f"data/{cap}"] = _table_data(delta, cap)
    return data


def _table_data(delta: TableDelta, cap: int) -> dict[str, Any]:
    counts = delta.counts()
    count = sum(counts.values())
    changes = delta.rule_changes(limit=cap) if cap else []
    first, last = delta.edge_changes()
    words = [w for w in map(_words, changes[:4] if changes else [first]) if w]
    more = count - len(words)
    summary = ", ".join(words) + (f" (+{more} more)" if more > 0 else "")
    return {"changes": changes, "count": count, "counts": counts, "complete": len(changes) == count,
            "summary": summary, "first": _words(first), "last": _words(last)}
