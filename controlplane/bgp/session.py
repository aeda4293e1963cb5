"""The sans-IO BGP-4 session of one neighbor: RFC 4271's FSM, timers and connection collisions.

A :class:`Peer` is driven by plain calls that carry the current time ``now`` (seconds, any
monotonic origin) and never imports asyncio, socket or time:

* ``start(now)`` / ``stop(now, ...)``             ManualStart / ManualStop (s.8.1.2)
* ``dial_result(conn, now, ok, addresses)``        our outgoing TCP connection succeeded or failed
* ``incoming_connection(now, addresses) -> conn``  the listener accepted a TCP connection from the peer
  (``addresses``: the connection's (local, remote) socket addresses, for the NEXT_HOP check)
* ``receive_data(conn, data, now)``                bytes read from connection ``conn``
* ``connection_lost(conn, now)``                   TCP closed under us
* ``handle_timers(now)``                           call at or after ``next_deadline()``
* ``advertise(...)`` / ``withdraw(...)``           change the Adj-RIB-Out; ``flush(now)`` sends it
* ``send_blocked(conn, now)`` / ``send_resumed``   the peer stopped / started again taking our bytes

After each call the transport drains ``take_actions()`` (Send / Close / Dial) and
``take_events()`` (for the daemon). A peer may hold two TCP connections at once (one it dialled,
one it accepted), each a :class:`~controlplane.bgp.connection.Connection` with its own
OpenSent/OpenConfirm/Established sub-state; connection collisions are resolved by BGP Identifier
as RFC 4271 s.6.8 says. The peer's own state (what ``drg sessions`` shows) is derived: the most
advanced connection, else Connect while dialling, Active while waiting to be dialled or to retry,
Idle when stopped or holding down after an error. This module is the FSM; the routes exchanged
once Established (RIBs, UPDATE receive path, sending) are the :class:`RouteExchange` it extends.

Backpressure and the SendHoldTimer of RFC 9687 (a peer that stops reading) are the
:class:`~controlplane.bgp.flow.FlowControl` layer between the two; the timer fires here.

Errors follow RFC 4271 s.6 and RFC 7606: any malformed input becomes a NOTIFICATION and a closed
connection, or a treat-as-withdraw / attribute-discard with a warning event; nothing raises. The
peer's OPEN is checked as RFC 4271 s.6.2 says, with RFC 6286 for the BGP Identifier: any non-zero
value (255.255.255.255 too), equal to ours only from an external peer; a collision between equal
Identifiers keeps the connection of the speaker with the larger AS (RFC 6286 s.2.3). Both sides
offering enhanced route refresh (RFC 7313) is recorded on the connection.
"""

from __future__ import annotations

from controlplane.bgp import outputs as ev
from controlplane.bgp.connection import Connection, router_id_int
from controlplane.bgp.constants import (
    AS_TRANS,
    BGP_VERSION,
    SAFI_UNICAST,
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    MessageType,
    OpenSubcode,
)
from controlplane.bgp.errors import BGPError
from controlplane.bgp.flow import FlowControl
from controlplane.bgp.messages import (
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    MultiprotocolCapability,
    Negotiated,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCapability,
    Update,
    decode_message,
    encode,
    encode_keepalive,
)
from controlplane.bgp.notification_text import SHUTDOWN_COMMUNICATION, notification_text
from controlplane.bgp.outputs import Close, Dial, Send, State
from controlplane.bgp.peer_config import PeerConfig
from controlplane.prefix import AFI_IPV4

__all__ = ["Peer", "PeerConfig"]

_OPEN_STATES = (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED)  # our OPEN is out: NOTIFY to close


class Peer(FlowControl):
    """One configured neighbor: FSM, timers, Adj-RIB-In and Adj-RIB-Out."""

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        self.started = False
        self.established_at: float | None = None
        self.last_error: str | None = None
        self.negotiated: Negotiated | None = None
        self._connections: dict[int, Connection] = {}
        self._next_id = 1
        self._restart_at: float | None = None  # automatic restart after an error (idle hold)
        self._retry_at: float | None = None  # ConnectRetryTimer
        self._state = State.IDLE
        self._local_id = router_id_int(config.router_id)

    @property
    def state(self) -> State:
        return self._state

    def next_deadline(self) -> float | None:
        deadlines = [self._restart_at, self._retry_at]
        for conn in self._connections.values():
            deadlines.append(conn.hold_deadline)
            deadlines.append(conn.keepalive_deadline)
            deadlines.append(conn.send_hold_deadline)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    # ---- administrative inputs ---------------------------------------------------------------

    def start(self, now: float) -> None:
        """ManualStart: listen (passive), dial (active) or both."""
        if self.started:
            return
        self.started = True
        self._restart_at = None
        self._begin(now)

    def stop(self, now: float, subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, communication: str = "") -> None:
        """ManualStop: Cease (RFC 4486 ``subcode``, default Administrative Shutdown) with an RFC 9003
        shutdown communication, then Idle until ``start`` again."""
        self.started = False
        self._restart_at = None
        self._retry_at = None
        data = b""
        if subcode in SHUTDOWN_COMMUNICATION:  # RFC 9003: Administrative Shutdown / Reset carry a message
            text = communication.encode()[:255]
            data = bytes([len(text)]) + text
        for conn in list(self._connections.values()):
            if conn.state in _OPEN_STATES:
                self._notify(conn, ErrorCode.CEASE, subcode, data)
            self._drop(conn, now, reason=communication or "administrative stop", restart=False)
        self._update_state(now, communication or None)

    def _begin(self, now: float) -> None:
        if self.config.dials and not self._connections:
            self._dial()
        self._update_state(now)

    def _dial(self) -> None:
        conn = Connection(self._new_id(), outgoing=True)
        self._connections[conn.id] = conn
        self._retry_at = None
        self._actions.append(Dial(conn.id))

    def _new_id(self) -> int:
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    # ---- transport inputs ------------------------------------------------------------------

    def dial_result(self, conn_id: int, now: float, ok: bool, addresses: tuple[str, str] | None = None) -> None:
        conn = self._connections.get(conn_id)
        if conn is None:
            if ok:
                self._actions.append(Close(conn_id))
            return
        if not ok:
            del self._connections[conn_id]
            if self.started:
                self._retry_at = now + self.config.connect_retry_time
            self._update_state(now)
            return
        conn.state = State.OPEN_SENT
        conn.addresses = addresses
        self._send_open(conn, now)
        self._update_state(now)

    def incoming_connection(self, now: float, addresses: tuple[str, str] | None = None) -> int:
        """A TCP connection from this peer's address was accepted; returns its connection id.

        Refused (Cease 6/5, Connection Rejected, RFC 4486) when the peer is stopped, configured
        ``active`` only, Idle while holding down after an error (e.g. after a prefix limit), or
        already has an incoming connection in progress."""
        conn = Connection(self._new_id(), outgoing=False)
        why = self._refusal(now)
        if why is not None:
            rejected = CeaseSubcode.CONNECTION_REJECTED
            self._actions.append(Send(conn.id, encode(Notification(ErrorCode.CEASE, rejected, b""), Negotiated())))
            self._actions.append(Close(conn.id))
            self._events.append(ev.NotificationSent(self.config.name, ErrorCode.CEASE, rejected, b"",
                                                    f"Cease/Connection Rejected: peer {why}"))
            return conn.id
        self._connections[conn.id] = conn
        conn.addresses = addresses
        self._retry_at = None
        self._send_open(conn, now)
        self._update_state(now)
        return conn.id

    def _refusal(self, now: float) -> str | None:
        """Why an incoming connection is refused now, or ``None`` when it is accepted."""
        busy = any(not c.outgoing for c in self._connections.values())
        restart_at = self._restart_at
        holding = restart_at is not None and now < restart_at
        if self.started and self.config.accepts_incoming and not busy and not holding:
            return None
        why = "not started" if not self.started else "does not accept connections"
        if busy:
            why = "already has an incoming connection"
        elif restart_at is not None and holding:
            why = f"Idle for {restart_at - now:.0f} s more after: {self.last_error}"
        return why

    def connection_lost(self, conn_id: int, now: float) -> None:
        conn = self._connections.get(conn_id)
        if conn is None:
            return
        self._drop(conn, now, reason="TCP connection closed by the peer", restart=True)
        self._update_state(now)

    def receive_data(self, conn_id: int, data: bytes, now: float) -> None:
        conn = self._connections.get(conn_id)
        if conn is None:
            return
        conn.refreshed.clear()
        try:
            for msg_type, body in conn.frames(data):
                self._receive_message(conn, msg_type, body, now)
                if conn.id not in self._connections:
                    break  # dropped by that message: the rest of the data is not read
        except BGPError as error:
            self._error(conn, now, error)
        except Exception as exc:  # a bug must not take the daemon down: reset this session only
            self._events.append(ev.PeerWarning(self.config.name, f"internal error: {exc!r}"))
            self._error(conn, now, BGPError(ErrorCode.CEASE, CeaseSubcode.UNSPECIFIC, b"", f"internal error: {exc!r}"))
        self._update_state(now)

    def handle_timers(self, now: float) -> None:
        if self._restart_at is not None and now >= self._restart_at:
            self._restart_at = None
            if self.started:
                self._begin(now)
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            if self.started and self.config.dials and not self._connections:
                self._dial()
        for conn in list(self._connections.values()):
            if conn.send_hold_deadline is not None and now >= conn.send_hold_deadline:
                self._notify(conn, ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0, b"")  # RFC 9687 s.4: attempt it
                self._drop(conn, now, reason="send hold timer expired: the peer does not read", restart=True)
                continue
            if conn.hold_deadline is not None and now >= conn.hold_deadline:
                self._notify(conn, ErrorCode.HOLD_TIMER_EXPIRED, 0, b"")
                self._drop(conn, now, reason="hold timer expired", restart=True)
                continue
            if conn.keepalive_deadline is not None and now >= conn.keepalive_deadline:
                self._actions.append(Send(conn.id, encode_keepalive()))
                conn.keepalive_deadline = now + conn.keepalive_interval()
        self._update_state(now)

    # ---- message handling ------------------------------------------------------------------

    def _receive_message(self, conn: Connection, msg_type: int, body: memoryview, now: float) -> None:
        state = conn.state
        if msg_type == MessageType.NOTIFICATION:
            self._receive_notification(conn, body, now)
        elif state == State.OPEN_SENT:
            if msg_type != MessageType.OPEN:
                raise BGPError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT, bytes([msg_type]),
                               "unexpected message in OpenSent")
            message = decode_message(msg_type, body, conn.negotiated)
            assert isinstance(message, Open)
            self._receive_open(conn, message, now)
        elif state == State.OPEN_CONFIRM:
            if msg_type != MessageType.KEEPALIVE:
                raise BGPError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM, bytes([msg_type]),
                               "unexpected message in OpenConfirm")
            conn.restart_hold(now)
            self._establish(conn, now)
        elif state == State.ESTABLISHED:
            self._receive_established(conn, msg_type, body, now)
        else:
            raise BGPError(ErrorCode.FSM, FsmSubcode.UNSPECIFIED, b"", f"message in state {state.value}")

    def _receive_notification(self, conn: Connection, body: memoryview, now: float) -> None:
        message = decode_message(MessageType.NOTIFICATION, body, conn.negotiated)
        assert isinstance(message, Notification)
        text = notification_text(message.code, message.subcode, message.data)
        self._events.append(
            ev.NotificationReceived(self.config.name, message.code, message.subcode, message.data, text)
        )
        # A NOTIFICATION is never answered (RFC 4271 s.6.1 ff.).
        self._drop(conn, now, reason=f"NOTIFICATION received: {text}", restart=True)

    def _receive_established(self, conn: Connection, msg_type: int, body: memoryview, now: float) -> None:
        if msg_type == MessageType.UPDATE:
            conn.restart_hold(now)
            message = decode_message(msg_type, body, conn.negotiated)
            assert isinstance(message, Update)
            if self._receive_update(conn, message, now):
                self._check_limits(conn, now)
        elif msg_type == MessageType.KEEPALIVE:
            conn.restart_hold(now)
        elif msg_type == MessageType.ROUTE_REFRESH:
            conn.restart_hold(now)
            message = decode_message(msg_type, body, conn.negotiated)
            assert isinstance(message, RouteRefresh)
            self._receive_refresh(conn, message, now)
        else:
            raise BGPError(ErrorCode.FSM, FsmSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED, bytes([msg_type]),
                           "unexpected message in Established")

    def _receive_open(self, conn: Connection, message: Open, now: float) -> None:
        asn4, conn.peer_id = self._check_open(message)
        if not self._resolve_collision(conn, now):
            return
        cfg = self.config
        hold = min(cfg.hold_time, message.hold_time)
        warning = cfg.hold_time_warning(hold)
        if warning is not None:
            self._events.append(ev.PeerWarning(cfg.name, warning))
        peer_families = {
            (c.afi, c.safi) for c in message.capabilities if isinstance(c, MultiprotocolCapability)
        } or {(AFI_IPV4, SAFI_UNICAST)}
        conn.negotiated = Negotiated(
            asn4=asn4,
            extended_message=cfg.extended_message
            and any(isinstance(c, ExtendedMessageCapability) for c in message.capabilities),
            families=frozenset(peer_families & set(cfg.families)),
            ibgp=cfg.local_as == cfg.peer_as,  # an internal peer: LOCAL_PREF crosses (RFC 4271 s.5.1.5)
        )
        conn.refresh = any(isinstance(c, RouteRefreshCapability) for c in message.capabilities)
        conn.enhanced_refresh = cfg.enhanced_route_refresh and any(
            isinstance(c, EnhancedRouteRefreshCapability) for c in message.capabilities)
        conn.state = State.OPEN_CONFIRM
        self._actions.append(Send(conn.id, encode_keepalive()))
        conn.start_timers(hold, now)
        self._update_state(now)

    def _check_open(self, message: Open) -> tuple[bool, int]:
        """RFC 4271 s.6.2 on the peer's OPEN (raises ``BGPError``): whether it speaks 4-octet AS,
        and its BGP Identifier as a number."""
        if message.version != BGP_VERSION:
            raise BGPError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                           BGP_VERSION.to_bytes(2, "big"), f"unsupported version {message.version}")
        asn4 = next((c for c in message.capabilities if isinstance(c, FourOctetAsCapability)), None)
        peer_as = asn4.asn if asn4 is not None else message.my_as
        bad_as = OpenSubcode.BAD_PEER_AS
        if message.my_as == 0 or peer_as == 0:
            raise BGPError(ErrorCode.OPEN_MESSAGE, bad_as, b"", "peer AS 0 (RFC 7607)")
        if peer_as != self.config.peer_as:
            raise BGPError(ErrorCode.OPEN_MESSAGE, bad_as, b"", f"peer AS {peer_as}, expected {self.config.peer_as}")
        if asn4 is not None and message.my_as != AS_TRANS and message.my_as != peer_as:
            raise BGPError(ErrorCode.OPEN_MESSAGE, bad_as, b"",
                           f"My AS {message.my_as} does not match 4-octet AS {peer_as}")
        if message.hold_time in (1, 2):
            raise BGPError(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNACCEPTABLE_HOLD_TIME, b"",
                           f"hold time {message.hold_time} s is unacceptable")
        try:
            peer_id = router_id_int(message.bgp_identifier)
        except ValueError:
            peer_id = 0
        internal = self.config.local_as == self.config.peer_as
        if peer_id == 0 or (internal and peer_id == self._local_id):  # RFC 6286 s.2.2
            why = "0" if peer_id == 0 else f"{message.bgp_identifier}, ours, from an internal peer"
            raise BGPError(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_BGP_IDENTIFIER, b"", f"bad BGP Identifier {why}")
        return asn4 is not None, peer_id

    def _resolve_collision(self, conn: Connection, now: float) -> bool:
        """Connection collision detection (RFC 4271 s.6.8) for ``conn``, whose OPEN just arrived:
        an Established connection always wins; between two in OpenConfirm, the one initiated by
        the speaker with the higher BGP Identifier. Returns whether ``conn`` survives."""
        for other in list(self._connections.values()):
            if other is conn or other.state not in (State.OPEN_CONFIRM, State.ESTABLISHED):
                continue
            if other.state == State.ESTABLISHED:
                loser = conn
            else:
                keep_incoming = self._local_id < conn.peer_id
                if self._local_id == conn.peer_id:  # RFC 6286 s.2.3: the larger AS's connection wins
                    keep_incoming = self.config.local_as < self.config.peer_as
                loser = conn if conn.outgoing == keep_incoming else other
            self._notify(loser, ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION, b"")
            self._drop(loser, now, reason="connection collision resolved", restart=False)
            if loser is conn:
                return False
        return True

    def _establish(self, conn: Connection, now: float) -> None:
        conn.state = State.ESTABLISHED
        conn.checks = self.checks.with_addresses(self._own_addresses(), conn.addresses)
        self._established = conn
        self.negotiated = conn.negotiated
        self.established_at = now
        self.last_error = None
        self._update_state(now)
        self._send_full_table(conn, now, eor=True)

    def _check_limits(self, conn: Connection, now: float) -> None:
        """Too many prefixes: Cease 6/1 with AFI, SAFI and the limit (RFC 4486 s.4), routes withdrawn,
        and Idle for ``prefix_limit_restart`` s."""
        over = self._over_limit()
        if over is None:
            return
        afi, limit = over
        self._events.append(ev.PrefixLimitExceeded(self.config.name, afi, limit))
        data = afi.to_bytes(2, "big") + bytes([SAFI_UNICAST]) + limit.to_bytes(4, "big")
        self._notify(conn, ErrorCode.CEASE, CeaseSubcode.MAXIMUM_NUMBER_OF_PREFIXES_REACHED, data)
        self._drop(conn, now, reason=self.config.prefix_limit_reason(limit), restart=True,
                   hold_down=self.config.prefix_limit_restart)

    # ---- helpers ---------------------------------------------------------------------------

    def _send_open(self, conn: Connection, now: float) -> None:
        cfg = self.config
        caps: list[object] = [MultiprotocolCapability(afi, safi) for afi, safi in cfg.families]
        caps += [RouteRefreshCapability(), FourOctetAsCapability(cfg.local_as)]
        if cfg.enhanced_route_refresh:
            caps.append(EnhancedRouteRefreshCapability())
        if cfg.extended_message:
            caps.append(ExtendedMessageCapability())
        caps.append(GracefulRestartCapability(0, cfg.graceful_restart_time, ()))
        message = Open(
            version=BGP_VERSION,
            my_as=cfg.local_as if cfg.local_as <= 0xFFFF else AS_TRANS,
            hold_time=cfg.hold_time,
            bgp_identifier=cfg.router_id,
            capabilities=tuple(caps),  # type: ignore[arg-type]
        )
        self._actions.append(Send(conn.id, encode(message, Negotiated())))
        conn.await_open(now)

    def _notify(self, conn: Connection, code: int, subcode: int, data: bytes) -> None:
        self._actions.append(Send(conn.id, encode(Notification(code, subcode, data), conn.negotiated)))
        text = notification_text(code, subcode, data)
        self._events.append(ev.NotificationSent(self.config.name, code, subcode, data, text))

    def _error(self, conn: Connection, now: float, error: BGPError) -> None:
        if conn.id not in self._connections:
            return
        self._notify(conn, error.code, error.subcode, error.data)
        self._drop(conn, now, reason=str(error), restart=True)

    def _drop(
        self, conn: Connection, now: float, reason: str, restart: bool, hold_down: float | None = None
    ) -> None:
        """Close one connection; if it was the established one, the session is down."""
        self._connections.pop(conn.id, None)
        self._actions.append(Close(conn.id))
        was_established = conn is self._established
        if was_established:
            self._established = None
            self.negotiated = None
            self.established_at = None
            self.rib_in.clear()
            self._stale.clear()
            self.rib_out.mark_all_unsent()
        if restart:
            self.last_error = reason
        if was_established or (restart and not self._connections):
            # Idle, then an automatic restart (RFC 4271 s.8.1.1 AutomaticStart after IdleHoldTime).
            for other in list(self._connections.values()):
                self._connections.pop(other.id, None)
                self._actions.append(Close(other.id))
            if self.started:
                self._restart_at = now + (hold_down if hold_down is not None else self.config.idle_hold_time)
            self._retry_at = None
            self._update_state(now, reason)

    def _update_state(self, now: float, reason: str | None = None) -> None:
        new = self._derive_state()
        if new != self._state:
            old, self._state = self._state, new
            self._events.append(ev.StateChanged(self.config.name, old, new, reason))

    def _derive_state(self) -> State:
        if self._established is not None:
            return State.ESTABLISHED
        states = {c.state for c in self._connections.values()}
        for state in (State.OPEN_CONFIRM, State.OPEN_SENT, State.CONNECT):
            if state in states:
                return state
        if not self.started or self._restart_at is not None:
            return State.IDLE
        return State.ACTIVE
