"""Routes over an Established connection: the UPDATE receive path and the Adj-RIB-Out send path.

:class:`RouteExchange` is the half of a :class:`~controlplane.bgp.session.Peer` that deals in routes
rather than connections. It holds the neighbor's Adj-RIB-In and Adj-RIB-Out, the queues of actions
and events the transport drains, and the connection routes go over (``_established``, ``None``
while the session is down); the Peer's FSM sets that connection and resets the RIBs.

Receiving: a decoded UPDATE has already had RFC 7606 applied by the codec. Here, once per UPDATE on
its shared attributes (never per prefix), the session's own checks run (:mod:`routecheck`: our AS in
the path, the leftmost AS on an external session, a NEXT_HOP that is our own address); routes the
codec or these checks reject are withdrawn instead of installed (an earlier route for the prefix is
replaced), and counted per reason in ``rejected`` (``drg sessions``: ``prefixesRejected``), discarded
attributes in ``discarded``. What and why goes out as an ``UpdateErrors`` event, at most one per
``report_interval`` s (the injected ``now`` of the caller: this module reads no clock), with the
count of those suppressed since the last one. End-of-RIB is reported; each family's announcements
and withdrawals go into the Adj-RIB-In and out as one ``RoutesReceived`` event. Families the
session did not negotiate are ignored (and reported the same way). Whether a prefix limit is now
exceeded is asked by the Peer (:meth:`RouteExchange._over_limit`), since the answer ends the session.

Sending: ``advertise``/``withdraw`` edit the Adj-RIB-Out, ``flush`` packs what changed into UPDATEs
for the Established connection; the whole table goes out when a session comes up (then End-of-RIB)
and when the peer asks for it with ROUTE-REFRESH (RFC 2918), between BoRR and EoRR when both sides
offered enhanced route refresh (RFC 7313 s.4). A BoRR from the peer marks its routes of the family
stale; routes it sends again are fresh; its EoRR withdraws those still stale. Unknown subtypes, and
BoRR / EoRR without the capability, are ignored (RFC 7313 s.5).
"""

from __future__ import annotations

from controlplane.bgp import outputs as ev
from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.connection import Connection
from controlplane.bgp.constants import SAFI_UNICAST, RouteRefreshSubtype
from controlplane.bgp.messages import (
    RouteRefresh,
    Update,
    encode,
    encode_end_of_rib,
    pack_announcements,
    pack_withdrawals,
)
from controlplane.bgp.outputs import Action, Event, Send
from controlplane.bgp.peer_config import PeerConfig
from controlplane.bgp.rib import AdjRibIn, AdjRibOut
from controlplane.bgp.routecheck import RouteChecks
from controlplane.prefix import AFI_IPV4, AFI_IPV6

__all__ = ["RouteExchange"]


class RouteExchange:
    """Adj-RIB-In, Adj-RIB-Out and the output queues of one neighbor."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.rib_in = AdjRibIn()
        self.rib_out = AdjRibOut()
        # Prefixes received but not installed, by reason (kept across resets, like a router's counters):
        # "asLoop" = our own AS in the AS_PATH (RFC 4271 s9.1.2), always shown; the others (see
        # attrvalues and routecheck) appear once they happen. Discarded attributes, by attribute name.
        self.rejected: dict[str, int] = {"asLoop": 0}
        self.discarded: dict[str, int] = {}
        self.checks = RouteChecks(config.local_as, config.peer_as, self._own_addresses())  # per connection: + socket
        self._report_next = float("-inf")
        self._suppressed = 0
        self._stale: dict[int, set[int]] = {}  # afi -> keys marked stale by the peer's BoRR (RFC 7313)
        self._actions: list[Action] = []
        self._events: list[Event] = []
        self._established: Connection | None = None

    # ---- outputs ---------------------------------------------------------------------------

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # ---- Adj-RIB-Out -----------------------------------------------------------------------

    def advertise(self, afi: int, keys: list[int] | tuple[int, ...], attributes: PathAttributes) -> None:
        self.rib_out.set(afi, keys, attributes)

    def withdraw(self, afi: int, keys: list[int] | tuple[int, ...]) -> None:
        self.rib_out.remove(afi, keys)

    def flush(self, now: float) -> None:
        """Send what changed in the Adj-RIB-Out since the last flush (only when Established)."""
        conn = self._established
        if conn is None:
            return
        for afi, safi in sorted(conn.negotiated.families):
            if safi != SAFI_UNICAST:
                continue
            announce, withdraw = self.rib_out.take_changes(afi)
            self._send_routes(conn, afi, announce, withdraw, now)

    def _send_routes(
        self,
        conn: Connection,
        afi: int,
        announce: dict[PathAttributes, list[int]],
        withdraw: list[int],
        now: float,
    ) -> None:
        negotiated = conn.negotiated
        sent = False
        if withdraw:
            for message in pack_withdrawals(afi, withdraw, negotiated):
                self._actions.append(Send(conn.id, message))
                sent = True
        default_hop = self.config.next_hop_ipv4 if afi == AFI_IPV4 else self.config.next_hop_ipv6
        for attributes, keys in announce.items():
            next_hop = attributes.next_hop if afi == AFI_IPV4 and attributes.next_hop else default_hop
            for message in pack_announcements(afi, keys, attributes, negotiated, next_hop):
                self._actions.append(Send(conn.id, message))
                sent = True
        if sent and conn.hold_time:
            conn.keepalive_deadline = now + conn.keepalive_interval()

    def _send_full_table(self, conn: Connection, now: float, eor: bool) -> None:
        for afi, safi in sorted(conn.negotiated.families):
            if safi != SAFI_UNICAST or afi not in (AFI_IPV4, AFI_IPV6):
                continue
            self._send_routes(conn, afi, self.rib_out.full_table(afi), [], now)
            if eor:
                self._actions.append(Send(conn.id, encode_end_of_rib(afi, safi, conn.negotiated)))

    # ---- UPDATE receive path ---------------------------------------------------------------

    def _own_addresses(self) -> list[str]:
        """The addresses the DRG answers to on this session: its emulated Oracle addresses."""
        return [self.config.next_hop_ipv4, self.config.next_hop_ipv6]

    def _receive_update(self, conn: Connection, update: Update, now: float) -> bool:
        """Apply one UPDATE to the Adj-RIB-In; ``False`` for an End-of-RIB marker (no routes)."""
        eor = update.end_of_rib
        if eor is not None:
            if update.errors:
                self._report(now, f"UPDATE error handled (RFC 7606): {'; '.join(update.errors)}")
            self._events.append(ev.EndOfRib(self.config.name, eor[0], eor[1]))
            return False
        attributes = update.attributes
        if attributes is not None:
            attributes = self.rib_in.intern(attributes)
        verdict = None
        if update.treat_as_withdraw:
            verdict = (update.reason or "malformed", "; ".join(update.errors))
        elif attributes is not None:
            verdict = conn.checks.verdict(update, attributes)
        for name in update.discarded:
            self.discarded[name] = self.discarded.get(name, 0) + 1
        if verdict is not None:
            self._reject(update, verdict, now)
        elif update.errors:
            self._report(now, f"UPDATE error handled (RFC 7606): {'; '.join(update.errors)}")
        withdraw_all = verdict is not None or attributes is None
        # IPv4 unicast in the classic fields.
        if update.withdrawn or update.nlri:
            if withdraw_all:
                self._apply(AFI_IPV4, (), None, update.withdrawn + update.nlri)
            else:
                self._apply(AFI_IPV4, update.nlri, attributes, update.withdrawn)
        self._receive_mp(conn, update, attributes, withdraw_all, now)
        return True

    def _reject(self, update: Update, verdict: tuple[str, str], now: float) -> None:
        """The UPDATE's routes are treated as withdrawn: count them under the reason, and say why."""
        reason, why = verdict
        count = len(update.nlri) + (len(update.mp_reach.nlri) if update.mp_reach is not None else 0)
        if count:
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        self._report(now, f"{count} route(s) not installed ({reason}): {why}")

    def _report(self, now: float, text: str) -> None:
        """One ``UpdateErrors`` event per ``report_interval`` s at most; the rest are counted in it."""
        if now < self._report_next:
            self._suppressed += 1
            return
        self._report_next = now + self.config.report_interval
        self._events.append(ev.UpdateErrors(self.config.name, text, self._suppressed))
        self._suppressed = 0

    def _receive_mp(
        self, conn: Connection, update: Update, attributes: PathAttributes | None, withdraw_all: bool, now: float
    ) -> None:
        """MP_UNREACH_NLRI, then MP_REACH_NLRI (RFC 4760), for families the session negotiated."""
        families = conn.negotiated.families
        unreach = update.mp_unreach
        if unreach is not None and unreach.withdrawn:
            if (unreach.afi, unreach.safi) in families:
                self._apply(unreach.afi, (), None, unreach.withdrawn)
            else:
                self._report(now, f"MP_UNREACH for AFI {unreach.afi} SAFI {unreach.safi} not negotiated: ignored")
        reach = update.mp_reach
        if reach is not None and reach.nlri:
            if (reach.afi, reach.safi) not in families:
                self._report(now, f"MP_REACH for AFI {reach.afi} SAFI {reach.safi} not negotiated: ignored")
            elif withdraw_all:
                self._apply(reach.afi, (), None, reach.nlri)
            else:
                self._apply(reach.afi, reach.nlri, attributes, ())

    def _apply(
        self,
        afi: int,
        announced: tuple[int, ...],
        attributes: PathAttributes | None,
        withdrawn: tuple[int, ...],
    ) -> None:
        self.rib_in.update(afi, announced, attributes, withdrawn)
        if self._stale:
            stale = self._stale.get(afi)
            if stale is not None:  # a refresh is under way: what the peer sends again is fresh
                stale.difference_update(announced)
        self._events.append(ev.RoutesReceived(self.config.name, afi, announced, attributes, withdrawn))

    def _over_limit(self) -> tuple[int, int] | None:
        """The first ``(afi, limit)`` whose Adj-RIB-In now holds more prefixes than the limit."""
        for afi, limit in self.config.max_prefixes.items():
            if self.rib_in.count(afi) > limit:
                return afi, limit
        return None

    # ---- ROUTE-REFRESH (RFC 2918, RFC 7313) ------------------------------------------------

    def _receive_refresh(self, conn: Connection, message: RouteRefresh, now: float) -> None:
        family = (message.afi, message.safi)
        subtype = message.subtype
        if subtype in (RouteRefreshSubtype.BEGINNING_OF_ROUTE_REFRESH, RouteRefreshSubtype.END_OF_ROUTE_REFRESH):
            if conn.enhanced_refresh and family in conn.negotiated.families and message.afi in self.rib_in.routes:
                self._refresh_marker(message.afi, subtype == RouteRefreshSubtype.BEGINNING_OF_ROUTE_REFRESH)
            return
        if subtype != RouteRefreshSubtype.NORMAL:
            return  # RFC 7313 s.5: an unknown subtype is ignored
        self._events.append(ev.RouteRefreshReceived(self.config.name, message.afi, message.safi))
        if family not in conn.negotiated.families:
            return  # RFC 2918 s.4: ignore a family that was not negotiated
        self.flush(now)
        marked = conn.enhanced_refresh
        if marked:
            self._send_marker(conn, message.afi, RouteRefreshSubtype.BEGINNING_OF_ROUTE_REFRESH)
        self._send_routes(conn, message.afi, self.rib_out.full_table(message.afi), [], now)
        if marked:
            self._send_marker(conn, message.afi, RouteRefreshSubtype.END_OF_ROUTE_REFRESH)

    def _send_marker(self, conn: Connection, afi: int, subtype: int) -> None:
        self._actions.append(Send(conn.id, encode(RouteRefresh(afi, SAFI_UNICAST, subtype), conn.negotiated)))

    def _refresh_marker(self, afi: int, begin: bool) -> None:
        """BoRR: every route of the family is stale until sent again. EoRR: the stale ones are withdrawn
        (an EoRR without a BoRR changes nothing)."""
        if begin:
            self._stale[afi] = set(self.rib_in.routes[afi])
            return
        stale = self._stale.pop(afi, None)
        if stale:
            routes = self.rib_in.routes[afi]
            gone = tuple(key for key in stale if key in routes)
            if gone:
                self._apply(afi, (), None, gone)

    def request_refresh(self, afi: int, now: float) -> bool:
        """Ask the peer to resend its routes (RFC 2918) when it supports it."""
        conn = self._established
        if conn is None or not conn.refresh:
            return False
        message = RouteRefresh(afi, SAFI_UNICAST, RouteRefreshSubtype.NORMAL)
        self._actions.append(Send(conn.id, encode(message, conn.negotiated)))
        return True
