"""Routes over an Established connection: the UPDATE receive path and the Adj-RIB-Out send path.

:class:`RouteExchange` is the half of a :class:`~controlplane.bgp.session.Peer` that deals in routes
rather than connections. It holds the neighbor's Adj-RIB-In and Adj-RIB-Out, the queues of actions
and events the transport drains, and the connection routes go over (``_established``, ``None``
while the session is down); the Peer's FSM sets that connection and resets the RIBs.

Receiving: a decoded UPDATE has already had RFC 7606 applied by the codec; here its warnings become
events, an End-of-RIB marker is reported, routes whose AS_PATH holds our AS are withdrawn instead
of installed (RFC 4271 s.9.1.2, counted in ``rejected``), and each family's announcements and
withdrawals go into the Adj-RIB-In and out as one ``RoutesReceived`` event. Families the session
did not negotiate are ignored with a warning. Whether a prefix limit is now exceeded is asked by
the Peer (:meth:`RouteExchange._over_limit`), since the answer ends the session.

Sending: ``advertise``/``withdraw`` edit the Adj-RIB-Out, ``flush`` packs what changed into UPDATEs
for the Established connection; the whole table goes out when a session comes up (then End-of-RIB)
and when the peer asks for it with ROUTE-REFRESH (RFC 2918).
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
from controlplane.prefix import AFI_IPV4, AFI_IPV6

__all__ = ["RouteExchange"]


class RouteExchange:
    """Adj-RIB-In, Adj-RIB-Out and the output queues of one neighbor."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.rib_in = AdjRibIn()
        self.rib_out = AdjRibOut()
        # Prefixes received but not installed, by reason (kept across resets, like a router's counters):
        # "asLoop" = our own AS in the AS_PATH (RFC 4271 s9.1.2).
        self.rejected: dict[str, int] = {"asLoop": 0}
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

    def _receive_update(self, conn: Connection, update: Update) -> bool:
        """Apply one UPDATE to the Adj-RIB-In; ``False`` for an End-of-RIB marker (no routes)."""
        name = self.config.name
        for error in update.errors:
            self._events.append(ev.PeerWarning(name, f"UPDATE error handled (RFC 7606): {error}"))
        eor = update.end_of_rib
        if eor is not None:
            self._events.append(ev.EndOfRib(name, eor[0], eor[1]))
            return False
        attributes = update.attributes
        if attributes is not None:
            attributes = self.rib_in.intern(attributes)
        looped = attributes is not None and not update.treat_as_withdraw and self._as_loop(attributes)
        withdraw_all = update.treat_as_withdraw or attributes is None or looped
        if looped:  # RFC 4271 s9.1.2: not installed; it replaces (withdraws) an earlier route
            self._count_loop(update)
        # IPv4 unicast in the classic fields.
        if update.withdrawn or update.nlri:
            if withdraw_all:
                self._apply(AFI_IPV4, (), None, update.withdrawn + update.nlri)
            else:
                self._apply(AFI_IPV4, update.nlri, attributes, update.withdrawn)
        self._receive_mp(conn, update, attributes, withdraw_all)
        return True

    def _receive_mp(
        self, conn: Connection, update: Update, attributes: PathAttributes | None, withdraw_all: bool
    ) -> None:
        """MP_UNREACH_NLRI, then MP_REACH_NLRI (RFC 4760), for families the session negotiated."""
        name = self.config.name
        families = conn.negotiated.families
        unreach = update.mp_unreach
        if unreach is not None and unreach.withdrawn:
            if (unreach.afi, unreach.safi) in families:
                self._apply(unreach.afi, (), None, unreach.withdrawn)
            else:
                self._events.append(ev.PeerWarning(name, f"MP_UNREACH for AFI {unreach.afi} "
                                                         f"SAFI {unreach.safi} not negotiated: ignored"))
        reach = update.mp_reach
        if reach is not None and reach.nlri:
            if (reach.afi, reach.safi) not in families:
                self._events.append(ev.PeerWarning(name, f"MP_REACH for AFI {reach.afi} "
                                                         f"SAFI {reach.safi} not negotiated: ignored"))
            elif withdraw_all:
                self._apply(reach.afi, (), None, reach.nlri)
            else:
                self._apply(reach.afi, reach.nlri, attributes, ())

    def _as_loop(self, attributes: PathAttributes) -> bool:
        """Whether our AS appears anywhere in the AS_PATH (any segment type)."""
        local = self.config.local_as
        return any(local in asns for _, asns in attributes.as_path)

    def _count_loop(self, update: Update) -> None:
        count = len(update.nlri) + (len(update.mp_reach.nlri) if update.mp_reach is not None else 0)
        if self.rejected["asLoop"] == 0:
            self._events.append(ev.PeerWarning(self.config.name, f"routes whose AS_PATH holds our AS "
                                               f"{self.config.local_as} are not installed "
                                               "(RFC 4271 s9.1.2 loop detection)"))
        self.rejected["asLoop"] += count

    def _apply(
        self,
        afi: int,
        announced: tuple[int, ...],
        attributes: PathAttributes | None,
        withdrawn: tuple[int, ...],
    ) -> None:
        self.rib_in.update(afi, announced, attributes, withdrawn)
        self._events.append(ev.RoutesReceived(self.config.name, afi, announced, attributes, withdrawn))

    def _over_limit(self) -> tuple[int, int] | None:
        """The first ``(afi, limit)`` whose Adj-RIB-In now holds more prefixes than the limit."""
        for afi, limit in self.config.max_prefixes.items():
            if self.rib_in.count(afi) > limit:
                return afi, limit
        return None

    # ---- ROUTE-REFRESH (RFC 2918, RFC 7313) ------------------------------------------------

    def _receive_refresh(self, conn: Connection, message: RouteRefresh, now: float) -> None:
        if message.subtype != RouteRefreshSubtype.NORMAL:
            return  # BoRR/EoRR markers of RFC 7313: nothing to do for a receiver without stale marking
        family = (message.afi, message.safi)
        self._events.append(ev.RouteRefreshReceived(self.config.name, message.afi, message.safi))
        if family not in conn.negotiated.families:
            return  # RFC 2918 s.4: ignore a family that was not negotiated
        self.flush(now)
        self._send_routes(conn, message.afi, self.rib_out.full_table(message.afi), [], now)

    def request_refresh(self, afi: int, now: float) -> bool:
        """Ask the peer to resend its routes (RFC 2918) when it supports it."""
        conn = self._established
        if conn is None or not conn.refresh:
            return False
        message = RouteRefresh(afi, SAFI_UNICAST, RouteRefreshSubtype.NORMAL)
        self._actions.append(Send(conn.id, encode(message, conn.negotiated)))
        return True
