"""Backpressure from the transport into a session: a peer that stops reading (RFC 9687, Send Hold Timer).

:class:`FlowControl` sits between :class:`~controlplane.bgp.exchange.RouteExchange` (routes) and
:class:`~controlplane.bgp.session.Peer` (the FSM). The transport reports, per connection, when the
peer stops taking our bytes (``send_blocked``: its write buffer passed the high-water mark, e.g. a
zero TCP window) and when it takes them again (``send_resumed``: the buffer fell to the low mark).

While a connection is blocked nothing new is queued for it beyond what is already in flight:

* ``flush`` is deferred: the Adj-RIB-Out is state, so announcements and withdrawals coalesce there
  (a prefix changed a thousand times is sent once, as it then is) and go out in one flush on resume;
* a ROUTE-REFRESH (RFC 2918) is answered on resume, once per family however often it was asked;
  more than ``REFRESHES_PER_READ`` of one family in one read are answered only that often (the answer
  is the same table), so a flood cannot queue more than that before the transport reports the
  high-water mark;
* KEEPALIVEs and NOTIFICATIONs still go out (19-21 octets, a few per hold time).

Why a timer of its own: a peer that keeps sending KEEPALIVEs but never reads never trips our Hold
Timer (RFC 4271 s.4.4 restarts it on every message received), so the session would stay
Established forever while our side holds its bytes. RFC 9687 adds the SendHoldTimer for exactly
this: it runs while we cannot send, and on expiry the speaker attempts a NOTIFICATION with error
code 8 (Send Hold Timer Expired) and closes the connection. Its length is local policy; here it is
the negotiated hold time (as OpenBGPD does), or RFC 9687's suggested 8 minutes when the hold time
is 0. The Peer fires it in ``handle_timers``.
"""

from __future__ import annotations

from controlplane.bgp.connection import Connection
from controlplane.bgp.constants import RouteRefreshSubtype
from controlplane.bgp.exchange import RouteExchange
from controlplane.bgp.messages import RouteRefresh

__all__ = ["REFRESHES_PER_READ", "FlowControl"]

REFRESHES_PER_READ = 2  # ROUTE-REFRESH answers per family and socket read; more in one read are a flood


class FlowControl(RouteExchange):
    """Deferral of UPDATE output while a connection is send-blocked; the Peer owns the connections."""

    _connections: dict[int, Connection]

    def send_blocked(self, conn_id: int, now: float) -> None:
        """The transport's buffer for ``conn_id`` passed its high-water mark: the SendHoldTimer runs."""
        conn = self._connections.get(conn_id)
        if conn is not None:
            conn.block_send(now)

    def send_resumed(self, conn_id: int, now: float) -> None:
        """The peer reads again: the SendHoldTimer stops and what was deferred goes out, coalesced."""
        conn = self._connections.get(conn_id)
        if conn is None or conn.send_hold_deadline is None:
            return
        conn.send_hold_deadline = None
        if conn.flush_deferred:
            conn.flush_deferred = False
            self.flush(now)
        owed, conn.refresh_deferred = conn.refresh_deferred, set()
        for afi, safi in sorted(owed):
            super()._receive_refresh(conn, RouteRefresh(afi, safi, RouteRefreshSubtype.NORMAL), now)

    def flush(self, now: float) -> None:
        conn = self._established
        if conn is not None and conn.send_blocked:
            conn.flush_deferred = True  # the Adj-RIB-Out keeps the changes: nothing queues meanwhile
            return
        super().flush(now)

    def _receive_refresh(self, conn: Connection, message: RouteRefresh, now: float) -> None:
        if message.subtype == RouteRefreshSubtype.NORMAL:
            family = (message.afi, message.safi)
            if conn.send_blocked:
                conn.refresh_deferred.add(family)  # one full table per family, later
                return
            answered = conn.refreshed.get(family, 0)
            if answered >= REFRESHES_PER_READ:
                return  # a flood: answered already in this read with the same table (nothing changed since)
            conn.refreshed[family] = answered + 1
        super()._receive_refresh(conn, message, now)
