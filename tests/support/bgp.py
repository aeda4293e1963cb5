"""In-memory plumbing for sans-IO session tests: two Peers joined by a fake wire and a fake clock.

``Link`` plays the transport for both sides: it performs their Dial/Send/Close actions by moving
bytes between them, and records every byte stream and event, so tests drive hold timers,
keepalives and collisions in microseconds of real time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from controlplane.bgp.messages import Message, Negotiated, decode_message, parse_header
from controlplane.bgp.outputs import Close, Dial, Event, NotificationSent, Send, State, StateChanged
from controlplane.bgp.session import Peer, PeerConfig


class PeerOptions(TypedDict, total=False):
    """The optional fields of :class:`PeerConfig` a test may set."""

    connect: str
    hold_time: int
    connect_retry_time: float
    idle_hold_time: float
    prefix_limit_restart: float
    prefix_limit_label: str
    hold_range: tuple[int, int] | None
    hold_range_label: str
    max_prefixes: dict[int, int]
    families: tuple[tuple[int, int], ...]
    next_hop_ipv4: str
    next_hop_ipv6: str
    extended_message: bool
    enhanced_route_refresh: bool
    graceful_restart_time: int
    report_interval: float


def config(name: str, local_as: int, peer_as: int, router_id: str, **kw: Unpack[PeerOptions]) -> PeerConfig:
    return PeerConfig(name=name, local_as=local_as, peer_as=peer_as, router_id=router_id, **kw)


def split_messages(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        length, msg_type = parse_header(data[:19], 65535)
        out.append((msg_type, data[19:length]))
        data = data[length:]
    return out


def decode_all(data: bytes, negotiated: Negotiated | None = None) -> list[Message]:
    neg = negotiated or Negotiated(asn4=True, extended_message=True, families=frozenset({(1, 1), (2, 1)}))
    return [decode_message(t, body, neg) for t, body in split_messages(data)]


@dataclass
class Side:
    peer: Peer
    events: list[Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # every Send, in order
    closed: list[int] = field(default_factory=list)


class Link:
    """Two peers, a clock, and the TCP connections between them."""

    def __init__(self, a: Peer, b: Peer) -> None:
        self.now = 0.0
        self.a = Side(a)
        self.b = Side(b)
        # (side name, conn id) -> (other side name, other conn id)
        self.pairs: dict[tuple[str, int], tuple[str, int]] = {}
        self.refuse_dials = False
        self.cut = False  # when True, bytes are dropped (a silent peer)

    def side(self, name: str) -> Side:
        return self.a if name == "a" else self.b

    def other(self, name: str) -> str:
        return "b" if name == "a" else "a"

    def run(self, rounds: int = 50) -> None:
        """Move actions until nothing is left to do."""
        for _ in range(rounds):
            if not (self._pump("a") | self._pump("b")):
                return

    def _pump(self, name: str) -> bool:
        side = self.side(name)
        actions = side.peer.take_actions()
        side.events += side.peer.take_events()
        for action in actions:
            if isinstance(action, Dial):
                if self.refuse_dials:
                    side.peer.dial_result(action.connection, self.now, False)
                    continue
                remote = self.side(self.other(name))
                remote_id = remote.peer.incoming_connection(self.now)
                self.pairs[(name, action.connection)] = (self.other(name), remote_id)
                self.pairs[(self.other(name), remote_id)] = (name, action.connection)
                side.peer.dial_result(action.connection, self.now, True)
            elif isinstance(action, Send):
                side.sent.append(action.data)
                target = self.pairs.get((name, action.connection))
                if target is not None and not self.cut:
                    self.side(target[0]).peer.receive_data(target[1], action.data, self.now)
            elif isinstance(action, Close):
                side.closed.append(action.connection)
                target = self.pairs.pop((name, action.connection), None)
                if target is not None:
                    self.pairs.pop(target, None)
                    self.side(target[0]).peer.connection_lost(target[1], self.now)
        return bool(actions)

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move the clock forward, firing timers on both sides as they fall due."""
        end = self.now + seconds
        while self.now < end:
            deadlines = [d for d in (self.a.peer.next_deadline(), self.b.peer.next_deadline()) if d is not None]
            nxt = min([end, *deadlines]) if deadlines else end
            self.now = max(nxt, self.now)
            self.a.peer.handle_timers(self.now)
            self.b.peer.handle_timers(self.now)
            self.run()
            if nxt == end:
                break

    def notifications(self, name: str) -> list[tuple[int, int]]:
        return [(e.code, e.subcode) for e in self.side(name).events if isinstance(e, NotificationSent)]

    def states(self, name: str) -> list[State]:
        return [e.new for e in self.side(name).events if isinstance(e, StateChanged)]
