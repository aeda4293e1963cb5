"""The sans-IO BGP-4 session of one neighbor: RFC 4271's FSM, timers, collisions and RIBs.

A :class:`Peer` is driven by plain calls that carry the current time ``now`` (seconds, any
monotonic origin) and never imports asyncio, socket or time:

* ``start(now)`` / ``stop(now, ...)``             ManualStart / ManualStop (s.8.1.2)
* ``dial_result(conn, now, ok)``                   our outgoing TCP connection succeeded or failed
* ``incoming_connection(now) -> conn``             the listener accepted a TCP connection from the peer
* ``receive_data(conn, data, now)``                bytes read from connection ``conn``
* ``connection_lost(conn, now)``                   TCP closed under us
* ``handle_timers(now)``                           call at or after ``next_deadline()``
* ``advertise(...)`` / ``withdraw(...)``           change the Adj-RIB-Out; ``flush(now)`` sends it

After each call the transport drains ``take_actions()`` (Send / Close / Dial) and
``take_events()`` (for the daemon). A peer may hold two TCP connections at once (one it dialled,
one it accepted); each carries its own OpenSent/OpenConfirm/Established sub-state, and connection
collisions are resolved by BGP Identifier as RFC 4271 s.6.8 says. The peer's own state (what
``drg sessions`` shows) is derived: the most advanced connection, else Connect while dialling,
Active while waiting to be dialled or to retry, Idle when stopped or holding down after an error.

Errors follow RFC 4271 s.6 and RFC 7606: any malformed input becomes a NOTIFICATION and a closed
connection, or a treat-as-withdraw / attribute-discard with a warning event; nothing raises.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from controlplane.bgp import outputs as ev
from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import AS_TRANS, HEADER_LEN, MessageType
from controlplane.bgp.errors import BGPError
from controlplane.bgp.messages import (
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
    encode_end_of_rib,
    encode_keepalive,
    pack_announcements,
    pack_withdrawals,
    parse_header,
)
from controlplane.bgp.notification_text import notification_text
from controlplane.bgp.outputs import Action, Close, Dial, Event, Send, State
from controlplane.bgp.rib import AdjRibIn, AdjRibOut
from controlplane.prefix import AFI_IPV4, AFI_IPV6

SAFI_UNICAST = 1
LARGE_HOLD_TIME = 240.0  # RFC 4271 s.8: hold timer while waiting for the peer's OPEN
OCI_HOLD_RANGE = (18, 180)  # R55: OCI's supported hold times


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Everything the core needs to know about one neighbor (built by the daemon from the config)."""

    name: str
    local_as: int
    peer_as: int
    router_id: str
    connect: str = "passive"  # passive | active | both (product.md)
    hold_time: int = 30  # R55: OCI offers 30 s
    connect_retry_time: float = 5.0
    idle_hold_time: float = 1.0  # before an automatic restart after an error
    prefix_limit_restart: float = 30.0  # R58: the session may come up again after 30 s
    max_prefixes: dict[int, int] = field(default_factory=dict)  # afi -> limit (R58, R64)
    families: tuple[tuple[int, int], ...] = ((AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST))
    next_hop_ipv4: str = "0.0.0.0"
    next_hop_ipv6: str = "::"
    extended_message: bool = True
    graceful_restart_time: int = 0

    @property
    def accepts_incoming(self) -> bool:
        return self.connect in ("passive", "both")

    @property
    def dials(self) -> bool:
        return self.connect in ("active", "both")


class _Connection:
    __slots__ = (
        "buffer",
        "hold_deadline",
        "hold_time",
        "id",
        "keepalive_deadline",
        "negotiated",
        "outgoing",
        "peer_id",
        "refresh",
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


def _router_id_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


class Peer:
    """One configured neighbor: FSM, timers, Adj-RIB-In and Adj-RIB-Out."""

    def __init__(self, config: PeerConfig) -> None:
        self.config = config
        self.rib_in = AdjRibIn()
        self.rib_out = AdjRibOut()
        self.started = False
        self.established_at: float | None = None
        self.last_error: str | None = None
        self.negotiated: Negotiated | None = None
        # Prefixes received but not installed, by reason (kept across resets, like a router's counters):
        # "asLoop" = our own AS in the AS_PATH (RFC 4271 s9.1.2).
        self.rejected: dict[str, int] = {"asLoop": 0}
        self._connections: dict[int, _Connection] = {}
        self._next_id = 1
        self._restart_at: float | None = None  # automatic restart after an error (idle hold)
        self._retry_at: float | None = None  # ConnectRetryTimer
        self._actions: list[Action] = []
        self._events: list[Event] = []
        self._state = State.IDLE
        self._established: _Connection | None = None
        self._local_id = _router_id_int(config.router_id)

    # ---- outputs ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def take_actions(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        deadlines = [self._restart_at, self._retry_at]
        for conn in self._connections.values():
            deadlines.append(conn.hold_deadline)
            deadlines.append(conn.keepalive_deadline)
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

    def stop(self, now: float, subcode: int = 2, communication: str = "") -> None:
        """ManualStop: Cease (RFC 4486 ``subcode``, default Administrative Shutdown) with an RFC 9003
        shutdown communication, then Idle until ``start`` again."""
        self.started = False
        self._restart_at = None
        self._retry_at = None
        data = b""
        if subcode in (2, 4):  # RFC 9003: Administrative Shutdown / Reset carry a message
            text = communication.encode()[:255]
            data = bytes([len(text)]) + text
        for conn in list(self._connections.values()):
            if conn.state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
                self._notify(conn, 6, subcode, data)
            self._drop(conn, now, reason=communication or "administrative stop", restart=False)
        self._update_state(now, communication or None)

    def _begin(self, now: float) -> None:
        if self.config.dials and not self._connections:
            self._dial()
        self._update_state(now)

    def _dial(self) -> None:
        conn = _Connection(self._new_id(), outgoing=True)
        self._connections[conn.id] = conn
        self._retry_at = None
        self._actions.append(Dial(conn.id))

    def _new_id(self) -> int:
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    # ---- transport inputs ------------------------------------------------------------------

    def dial_result(self, conn_id: int, now: float, ok: bool) -> None:
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
        self._send_open(conn, now)
        self._update_state(now)

    def incoming_connection(self, now: float) -> int:
        """A TCP connection from this peer's address was accepted; returns its connection id.

        Refused (Cease 6/5, Connection Rejected, RFC 4486) when the peer is stopped, configured
        ``active`` only, Idle while holding down after an error (e.g. the 30 s of R58), or already
        has an incoming connection in progress."""
        conn = _Connection(self._new_id(), outgoing=False)
        busy = any(not c.outgoing for c in self._connections.values())
        restart_at = self._restart_at
        holding = restart_at is not None and now < restart_at
        if not self.started or not self.config.accepts_incoming or busy or holding:
            why = "not started" if not self.started else "does not accept connections"
            if busy:
                why = "already has an incoming connection"
            elif restart_at is not None and holding:
                why = f"Idle for {restart_at - now:.0f} s more after: {self.last_error}"
            self._actions.append(Send(conn.id, encode(Notification(6, 5, b""), Negotiated())))
            self._actions.append(Close(conn.id))
            self._events.append(
                ev.NotificationSent(self.config.name, 6, 5, b"", f"Cease/Connection Rejected: peer {why}")
            )
            return conn.id
        self._connections[conn.id] = conn
        self._retry_at = None
        self._send_open(conn, now)
        self._update_state(now)
        return conn.id

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
        if conn.buffer:
            data = conn.buffer + data
        offset = 0
        size = len(data)
        view = memoryview(data)  # over immutable bytes: slices handed to the codec stay valid
        try:
            while size - offset >= HEADER_LEN and conn.id in self._connections:
                length, msg_type = parse_header(
                    view[offset : offset + HEADER_LEN], conn.negotiated.max_message_len
                )
                if size - offset < length:
                    break
                body = view[offset + HEADER_LEN : offset + length]
                offset += length
                self._receive_message(conn, msg_type, body, now)
        except BGPError as error:
            self._error(conn, now, error)
            self._update_state(now)
            return
        except Exception as exc:  # a bug must not take the daemon down: reset this session only
            self._events.append(ev.PeerWarning(self.config.name, f"internal error: {exc!r}"))
            self._error(conn, now, BGPError(6, 0, b"", f"internal error: {exc!r}"))
            self._update_state(now)
            return
        conn.buffer = data[offset:] if offset < size else b""
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
            if conn.hold_deadline is not None and now >= conn.hold_deadline:
                self._notify(conn, 4, 0, b"")
                self._drop(conn, now, reason="hold timer expired", restart=True)
                continue
            if conn.keepalive_deadline is not None and now >= conn.keepalive_deadline:
                self._actions.append(Send(conn.id, encode_keepalive()))
                conn.keepalive_deadline = now + self._keepalive_interval(conn)
        self._update_state(now)

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
        conn: _Connection,
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
            conn.keepalive_deadline = now + self._keepalive_interval(conn)

    def _send_full_table(self, conn: _Connection, now: float, eor: bool) -> None:
        for afi, safi in sorted(conn.negotiated.families):
            if safi != SAFI_UNICAST or afi not in (AFI_IPV4, AFI_IPV6):
                continue
            self._send_routes(conn, afi, self.rib_out.full_table(afi), [], now)
            if eor:
                self._actions.append(Send(conn.id, encode_end_of_rib(afi, safi, conn.negotiated)))

    # ---- message handling ------------------------------------------------------------------

    def _receive_message(self, conn: _Connection, msg_type: int, body: memoryview, now: float) -> None:
        state = conn.state
        if msg_type == MessageType.NOTIFICATION:
            message = decode_message(msg_type, body, conn.negotiated)
            assert isinstance(message, Notification)
            text = notification_text(message.code, message.subcode, message.data)
            self._events.append(
                ev.NotificationReceived(self.config.name, message.code, message.subcode, message.data, text)
            )
            # A NOTIFICATION is never answered (RFC 4271 s.6.1 ff.).
            self._drop(conn, now, reason=f"NOTIFICATION received: {text}", restart=True)
            return
        if state == State.OPEN_SENT:
            if msg_type != MessageType.OPEN:
                raise BGPError(5, 1, bytes([msg_type]), "unexpected message in OpenSent")
            message = decode_message(msg_type, body, conn.negotiated)
            assert isinstance(message, Open)
            self._receive_open(conn, message, now)
            return
        if state == State.OPEN_CONFIRM:
            if msg_type != MessageType.KEEPALIVE:
                raise BGPError(5, 2, bytes([msg_type]), "unexpected message in OpenConfirm")
            self._restart_hold(conn, now)
            self._establish(conn, now)
            return
        if state == State.ESTABLISHED:
            if msg_type == MessageType.UPDATE:
                self._restart_hold(conn, now)
                message = decode_message(msg_type, body, conn.negotiated)
                assert isinstance(message, Update)
                self._receive_update(conn, message, now)
            elif msg_type == MessageType.KEEPALIVE:
                self._restart_hold(conn, now)
            elif msg_type == MessageType.ROUTE_REFRESH:
                self._restart_hold(conn, now)
                message = decode_message(msg_type, body, conn.negotiated)
                assert isinstance(message, RouteRefresh)
                self._receive_refresh(conn, message, now)
            else:
                raise BGPError(5, 3, bytes([msg_type]), "unexpected message in Established")
            return
        raise BGPError(5, 0, b"", f"message in state {state.value}")

    def _receive_open(self, conn: _Connection, message: Open, now: float) -> None:
        cfg = self.config
        if message.version != 4:
            raise BGPError(2, 1, b"\x00\x04", f"unsupported version {message.version}")
        asn4 = next((c for c in message.capabilities if isinstance(c, FourOctetAsCapability)), None)
        peer_as = asn4.asn if asn4 is not None else message.my_as
        if message.my_as == 0 or peer_as == 0:
            raise BGPError(2, 2, b"", "peer AS 0 (RFC 7607)")
        if peer_as != cfg.peer_as:
            raise BGPError(2, 2, b"", f"peer AS {peer_as}, expected {cfg.peer_as}")
        if asn4 is not None and message.my_as != AS_TRANS and message.my_as != peer_as:
            raise BGPError(2, 2, b"", f"My AS {message.my_as} does not match 4-octet AS {peer_as}")
        if message.hold_time in (1, 2):
            raise BGPError(2, 6, b"", f"hold time {message.hold_time} s is unacceptable")
        try:
            peer_id = _router_id_int(message.bgp_identifier)
        except ValueError:
            peer_id = 0
        if peer_id == 0 or peer_id == 0xFFFFFFFF:
            raise BGPError(2, 3, b"", f"bad BGP Identifier {message.bgp_identifier}")
        conn.peer_id = peer_id
        # Connection collision detection (RFC 4271 s.6.8).
        for other in list(self._connections.values()):
            if other is conn or other.state not in (State.OPEN_CONFIRM, State.ESTABLISHED):
                continue
            if other.state == State.ESTABLISHED:
                loser = conn
            else:
                keep_incoming = self._local_id < peer_id
                loser = conn if conn.outgoing == keep_incoming else other
            self._notify(loser, 6, 7, b"")
            self._drop(loser, now, reason="connection collision resolved", restart=False)
            if loser is conn:
                return
        hold = min(cfg.hold_time, message.hold_time)
        if hold and not OCI_HOLD_RANGE[0] <= hold <= OCI_HOLD_RANGE[1]:
            self._events.append(
                ev.PeerWarning(cfg.name, f"negotiated hold time {hold} s is outside OCI's 18-180 s (R55)")
            )
        peer_families = {
            (c.afi, c.safi) for c in message.capabilities if isinstance(c, MultiprotocolCapability)
        } or {(AFI_IPV4, SAFI_UNICAST)}
        conn.negotiated = Negotiated(
            asn4=asn4 is not None,
            extended_message=cfg.extended_message
            and any(isinstance(c, ExtendedMessageCapability) for c in message.capabilities),
            families=frozenset(peer_families & set(cfg.families)),
        )
        conn.refresh = any(isinstance(c, RouteRefreshCapability) for c in message.capabilities)
        conn.hold_time = hold
        conn.state = State.OPEN_CONFIRM
        self._actions.append(Send(conn.id, encode_keepalive()))
        if hold:
            conn.hold_deadline = now + hold
            conn.keepalive_deadline = now + self._keepalive_interval(conn)
        else:
            conn.hold_deadline = conn.keepalive_deadline = None
        self._update_state(now)

    def _establish(self, conn: _Connection, now: float) -> None:
        conn.state = State.ESTABLISHED
        self._established = conn
        self.negotiated = conn.negotiated
        self.established_at = now
        self.last_error = None
        self._update_state(now)
        self._send_full_table(conn, now, eor=True)

    def _receive_update(self, conn: _Connection, update: Update, now: float) -> None:
        name = self.config.name
        for error in update.errors:
            self._events.append(ev.PeerWarning(name, f"UPDATE error handled (RFC 7606): {error}"))
        eor = update.end_of_rib
        if eor is not None:
            self._events.append(ev.EndOfRib(name, eor[0], eor[1]))
            return
        attributes = update.attributes
        if attributes is not None:
            attributes = self.rib_in.intern(attributes)
        looped = attributes is not None and not update.treat_as_withdraw and self._as_loop(attributes)
        withdraw_all = update.treat_as_withdraw or attributes is None or looped
        if looped:  # RFC 4271 s9.1.2: not installed; it replaces (withdraws) an earlier route
            count = len(update.nlri) + (len(update.mp_reach.nlri) if update.mp_reach is not None else 0)
            if self.rejected["asLoop"] == 0:
                self._events.append(ev.PeerWarning(name, f"routes whose AS_PATH holds our AS {self.config.local_as} "
                                                         "are not installed (RFC 4271 s9.1.2 loop detection)"))
            self.rejected["asLoop"] += count
        families = conn.negotiated.families
        # IPv4 unicast in the classic fields.
        if update.withdrawn or update.nlri:
            if withdraw_all:
                self._apply(AFI_IPV4, (), None, update.withdrawn + update.nlri)
            else:
                self._apply(AFI_IPV4, update.nlri, attributes, update.withdrawn)
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
        if not self._check_limits(conn, now):
            return

    def _as_loop(self, attributes: PathAttributes) -> bool:
        """Whether our AS appears anywhere in the AS_PATH (any segment type)."""
        local = self.config.local_as
        return any(local in asns for _, asns in attributes.as_path)

    def _apply(
        self,
        afi: int,
        announced: tuple[int, ...],
        attributes: PathAttributes | None,
        withdrawn: tuple[int, ...],
    ) -> None:
        self.rib_in.update(afi, announced, attributes, withdrawn)
        self._events.append(ev.RoutesReceived(self.config.name, afi, announced, attributes, withdrawn))

    def _check_limits(self, conn: _Connection, now: float) -> bool:
        for afi, limit in self.config.max_prefixes.items():
            if self.rib_in.count(afi) > limit:
                # R58: Cease 6/1 with AFI, SAFI and the limit (RFC 4486 s.4), routes withdrawn,
                # back up after 30 s.
                self._events.append(ev.PrefixLimitExceeded(self.config.name, afi, limit))
                data = afi.to_bytes(2, "big") + bytes([SAFI_UNICAST]) + limit.to_bytes(4, "big")
                self._notify(conn, 6, 1, data)
                self._drop(conn, now, reason=f"prefix limit {limit} exceeded (R58)", restart=True,
                           hold_down=self.config.prefix_limit_restart)
                return False
        return True

    def _receive_refresh(self, conn: _Connection, message: RouteRefresh, now: float) -> None:
        if message.subtype != 0:
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
        self._actions.append(Send(conn.id, encode(RouteRefresh(afi, SAFI_UNICAST, 0), conn.negotiated)))
        return True

    # ---- helpers ---------------------------------------------------------------------------

    def _send_open(self, conn: _Connection, now: float) -> None:
        cfg = self.config
        caps: list[object] = [MultiprotocolCapability(afi, safi) for afi, safi in cfg.families]
        caps += [RouteRefreshCapability(), FourOctetAsCapability(cfg.local_as)]
        if cfg.extended_message:
            caps.append(ExtendedMessageCapability())
        caps.append(GracefulRestartCapability(0, cfg.graceful_restart_time, ()))
        message = Open(
            version=4,
            my_as=cfg.local_as if cfg.local_as <= 0xFFFF else AS_TRANS,
            hold_time=cfg.hold_time,
            bgp_identifier=cfg.router_id,
            capabilities=tuple(caps),  # type: ignore[arg-type]
        )
        self._actions.append(Send(conn.id, encode(message, Negotiated())))
        conn.hold_deadline = now + LARGE_HOLD_TIME
        conn.keepalive_deadline = None

    def _keepalive_interval(self, conn: _Connection) -> float:
        return max(conn.hold_time / 3.0, 1.0)

    def _restart_hold(self, conn: _Connection, now: float) -> None:
        if conn.hold_time:
            conn.hold_deadline = now + conn.hold_time

    def _notify(self, conn: _Connection, code: int, subcode: int, data: bytes) -> None:
        self._actions.append(Send(conn.id, encode(Notification(code, subcode, data), conn.negotiated)))
        text = notification_text(code, subcode, data)
        self._events.append(ev.NotificationSent(self.config.name, code, subcode, data, text))

    def _error(self, conn: _Connection, now: float, error: BGPError) -> None:
        if conn.id not in self._connections:
            return
        self._notify(conn, error.code, error.subcode, error.data)
        self._drop(conn, now, reason=str(error), restart=True)

    def _drop(
        self, conn: _Connection, now: float, reason: str, restart: bool, hold_down: float | None = None
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
