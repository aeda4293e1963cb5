"""What the sans-IO BGP core hands out: actions for the I/O layer and events for everyone else.

A :class:`~controlplane.bgp.session.Peer` never touches a socket or a clock. Each call into it
queues *actions* (send these bytes on connection N, close connection N, dial a new connection) and
*events* (state changed, routes received, NOTIFICATION sent ...). The asyncio transport drains
both after every call: it performs the actions and forwards the events to the daemon. Everything
here is a frozen dataclass, so tests compare them with ``==``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from controlplane.bgp.attributes import PathAttributes


class State(Enum):
    """The six states of RFC 4271 s.8.2.2, with the RFC's names."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


# ---- actions: for the transport -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    connection: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    connection: int


@dataclass(frozen=True, slots=True)
class Dial:
    """Open an outgoing TCP connection; report it with ``connection_made(connection, ...)``."""

    connection: int


Action = Send | Close | Dial


# ---- events: for the daemon -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    peer: str
    old: State
    new: State
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RoutesReceived:
    """One UPDATE's worth of changes for one address family (keys: controlplane.prefix)."""

    peer: str
    afi: int
    announced: tuple[int, ...]
    attributes: PathAttributes | None
    withdrawn: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndOfRib:
    peer: str
    afi: int
    safi: int


@dataclass(frozen=True, slots=True)
class NotificationSent:
    peer: str
    code: int
    subcode: int
    data: bytes
    text: str


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    peer: str
    code: int
    subcode: int
    data: bytes
    text: str


@dataclass(frozen=True, slots=True)
class PrefixLimitExceeded:
    peer: str
    afi: int
    limit: int


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived:
    peer: str
    afi: int
    safi: int


@dataclass(frozen=True, slots=True)
class PeerWarning:
    """Something worth a log line that changes nothing (RFC 7606 discards, odd hold times ...)."""

    peer: str
    text: str


@dataclass(frozen=True, slots=True)
class UpdateErrors:
    """UPDATEs whose routes were not installed or whose attributes were discarded, at most one report
    per ``PeerConfig.report_interval`` s: ``text`` says what and why for the latest one, ``suppressed``
    how many such UPDATEs went unreported since the previous report (the counters have them all)."""

    peer: str
    text: str
    suppressed: int = 0


Event = (
    StateChanged
    | RoutesReceived
    | EndOfRib
    | NotificationSent
    | NotificationReceived
    | PrefixLimitExceeded
    | RouteRefreshReceived
    | PeerWarning
    | UpdateErrors
)
