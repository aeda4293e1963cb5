"""One TCP connection of a BGP session: its sub-state, its timers and its receive buffer.

A :class:`~controlplane.bgp.session.Peer` may hold two connections at once (one it dialled, one it
accepted) until the collision rules of RFC 4271 s.6.8 keep one. Each :class:`Connection` carries
what belongs to that TCP stream alone: whether we dialled it, its FSM sub-state (Connect, OpenSent,
OpenConfirm, Established), its local and remote socket addresses when the transport gave them, what
its OPEN exchange negotiated (capabilities, hold time, the peer's BGP Identifier, enhanced route
refresh), the session's route checks with those addresses (:mod:`routecheck`, set when it is
Established), its hold and keepalive deadlines, and the octets of a message not yet complete.

:meth:`Connection.frames` turns the octets read from the socket into whole messages: it checks each
header (a ``BGPError`` if bad), yields ``(type, body)`` and keeps a trailing partial message for the
next read. The connection never sends anything itself; the Peer does.

Flow control (RFC 9687, the Send Hold Timer): the transport reports when the peer stops taking our
bytes (its write buffer passed the high-water mark) and when it takes them again. While blocked,
``send_hold_deadline`` runs: the Peer defers its Adj-RIB-Out flushes (``flush_deferred``) and the
ROUTE-REFRESH answers it owes (``refresh_deferred``) instead of queueing more UPDATE bytes, and
closes the connection with NOTIFICATION 8 (Send Hold Timer Expired) when the deadline passes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Final

from controlplane.bgp.capabilities import Negotiated
from controlplane.bgp.constants import HEADER_LEN
from controlplane.bgp.messages import parse_header
from controlplane.bgp.outputs import State
from controlplane.bgp.routecheck import RouteChecks

__all__ = ["LARGE_HOLD_TIME", "SEND_HOLD_TIME_DEFAULT", "Connection", "router_id_int"]

LARGE_HOLD_TIME: Final = 240.0  # RFC 4271 s.8: hold timer while waiting for the peer's OPEN
SEND_HOLD_TIME_DEFAULT: Final = 480.0  # RFC 9687 s.3's suggested SendHoldTime, used when the hold time is 0


def router_id_int(text: str) -> int:
    """A BGP Identifier in dotted-quad form as the 32-bit number collisions compare."""
    return int(ipaddress.IPv4Address(text))


class Connection:
    """One TCP connection: ``id`` is how the transport names it in actions and inputs."""

    __slots__ = (
        "addresses",
        "buffer",
        "checks",
        "enhanced_refresh",
        "flush_deferred",
        "hold_deadline",
        "hold_time",
        "id",
        "keepalive_deadline",
        "negotiated",
        "outgoing",
        "peer_id",
        "refresh",
        "refresh_deferred",
        "refreshed",
        "send_hold_deadline",
        "state",
    )

    def __init__(self, conn_id: int, outgoing: bool) -> None:
        self.id = conn_id
        self.outgoing = outgoing
        self.state = State.CONNECT if outgoing else State.OPEN_SENT
        self.buffer = b""
        self.negotiated = Negotiated()
        self.hold_time = 0
        self.hold_deadline: float | None = None
        self.keepalive_deadline: float | None = None
        self.peer_id = 0
        self.refresh = False
        self.enhanced_refresh = False  # both OPENs offered enhanced route refresh (RFC 7313)
        self.addresses: tuple[str, str] | None = None  # (local, remote) socket addresses, when known
        self.checks = RouteChecks(0, 0)  # the session's route checks with this connection's addresses
        self.send_hold_deadline: float | None = None  # RFC 9687: set while the peer does not read
        self.flush_deferred = False  # an Adj-RIB-Out flush is owed once the peer reads again
        self.refresh_deferred: set[tuple[int, int]] = set()  # ROUTE-REFRESH answers owed, by (AFI, SAFI)
        self.refreshed: dict[tuple[int, int], int] = {}  # ROUTE-REFRESH answers per family in the current read

    def frames(self, data: bytes) -> Iterator[tuple[int, memoryview]]:
        """The complete messages in what was buffered plus ``data``, as ``(type, body)``.

        Each header is checked against the message size negotiated so far (it grows once the OPENs
        agree on extended messages). Once the caller has taken every message, the incomplete rest
        is buffered for the next read; a caller that stops early (the connection was dropped) or
        an error leaves the buffer alone.
        """
        if self.buffer:
            data = self.buffer + data
        offset = 0
        size = len(data)
        view = memoryview(data)  # over immutable bytes: slices handed to the codec stay valid
        while size - offset >= HEADER_LEN:
            length, msg_type = parse_header(view[offset : offset + HEADER_LEN], self.negotiated.max_message_len)
            if size - offset < length:
                break
            body = view[offset + HEADER_LEN : offset + length]
            offset += length
            yield msg_type, body
        self.buffer = data[offset:] if offset < size else b""

    def keepalive_interval(self) -> float:
        return max(self.hold_time / 3.0, 1.0)

    def restart_hold(self, now: float) -> None:
        """A message arrived: the hold timer starts over (unless the hold time is 0)."""
        if self.hold_time:
            self.hold_deadline = now + self.hold_time

    def await_open(self, now: float) -> None:
        """Our OPEN is sent: wait for the peer's with the large hold timer, no keepalives yet."""
        self.hold_deadline = now + LARGE_HOLD_TIME
        self.keepalive_deadline = None

    def start_timers(self, hold: int, now: float) -> None:
        """The OPENs agreed on ``hold`` s: run both timers, or neither when it is 0."""
        self.hold_time = hold
        if hold:
            self.hold_deadline = now + hold
            self.keepalive_deadline = now + self.keepalive_interval()
        else:
            self.hold_deadline = self.keepalive_deadline = None

    @property
    def send_blocked(self) -> bool:
        return self.send_hold_deadline is not None

    def block_send(self, now: float) -> None:
        """The peer stopped reading: the SendHoldTimer runs for the negotiated hold time (RFC 9687)."""
        if self.send_hold_deadline is None:
            self.send_hold_deadline = now + (self.hold_time or SEND_HOLD_TIME_DEFAULT)
