"""The DRG's event: one shape for the log, ``Drg.events()``, ``drg events`` and MQTT.

A :class:`DrgEvent` has a :class:`EventType`, a wall-clock ``time``, an optional ``subject`` (the
attachment, session or table it concerns), in a daemon of several DRGs the ``drg`` it concerns (table
names repeat across DRGs), and a JSON-ready ``data`` dict with a ``summary``. The
router produces them; the bus (``events/bus.py``) fans them out. The data of advertisement and table
changes is a bounded sample (``advert_data``, ``table_data``): never one line per rule. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controlplane.engine.changes import TableDelta


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

    def to_json(self) -> dict[str, Any]:
        doc = {"type": self.type.value, "subject": self.subject, "time": round(self.time, 6), "data": self.data}
        if self.drg is not None:
            doc["drg"] = self.drg
        return doc

    def line(self) -> str:
        """One human-readable log line."""
        subject = f" {self.subject}" if self.subject else ""
        if self.drg is not None:
            subject = f" {self.drg}/{self.subject}" if self.subject else f" {self.drg}"
        detail = self.data.get("summary")
        if detail is None:
            detail = " ".join(f"{k}={v}" for k, v in self.data.items())
        return f"{self.type.value}{subject}: {detail}"


# ---- the data of route events: bounded samples, never one line per rule -------------------------


def advert_data(announced: list[str], withdrawn: list[str], cap: int = 256) -> dict[str, Any]:
    data: dict[str, Any] = {"announce": announced[:cap], "withdraw": withdrawn[:cap],
                            "announceCount": len(announced), "withdrawCount": len(withdrawn)}
    shown = ", ".join([f"+{p}" for p in announced[:4]] + [f"-{p}" for p in withdrawn[:4]])
    more = len(announced) + len(withdrawn) - min(len(announced), 4) - min(len(withdrawn), 4)
    data["summary"] = shown + (f" (+{more} more)" if more > 0 else "")
    return data


def table_data(delta: TableDelta, cap: int = 256) -> dict[str, Any]:
    """Event data of one table delta. JSON is built for at most ``cap`` rule changes, so a
    million-route import does not render a million rules for the log; when the sample is cut,
    ``complete`` is false and ``count`` is a lower bound (one change per changed destination)."""
    complete = len(delta) <= cap
    changes = delta.rule_changes(limit=None if complete else cap)
    count = len(changes) if complete else max(len(delta), len(changes) + 1)
    words = []
    for change in changes[:4]:
        rule = change["rule"]
        flag = " (conflict)" if rule["isConflict"] else ""
        words.append(f"{change['op']} {rule['destination']} via {rule['nextHop']}{flag}")
    more = count - len(words)
    summary = ", ".join(words) + (f" (+{more}{'' if complete else ' or more'} more)" if more > 0 else "")
    return {"changes": changes, "count": count, "complete": complete, "summary": summary}
