"""The DRG's heart, sans-IO: BGP events and configuration changes in; UPDATEs, session commands and events out.

A :class:`Router` owns the route engine and one sans-IO :class:`~controlplane.bgp.session.Peer` per
BGP session (one per VC peering family, R53, and one per BGP IPSec tunnel, R38). It never touches a
socket or a clock: the daemon feeds it the speaker's events (:meth:`Router.bgp_event`) and new
configurations (:meth:`Router.apply`), then drains :meth:`Router.take` and carries out each output in
order:

* :class:`AddSession` / :class:`RemoveSession`: register or forget a neighbor (removal sends Cease);
* :class:`StartSession` / :class:`StopSession`: a tunnel's session follows its tunnel (R47);
* :class:`Flush`: the Peer's Adj-RIB-Out changed (the router already called ``advertise``/``withdraw``
  on it); send the UPDATEs;
* :class:`~controlplane.events.event.DrgEvent`: log it and put it on the bus.

The loop is plain calls, no queues per route and no tasks: a BGP UPDATE becomes one engine call,
whose :class:`~controlplane.engine.changes.Changes` become Adj-RIB-Out edits on the other Peers and
one ``Flush`` per changed session. A tunnel's Peer is registered from the start but started only
while the engine reports the tunnel UP (its VC is Established and has a route to the CPE, R47);
when the tunnel goes down the session is stopped with a Cease and the engine withdraws its routes.
Outputs produced while the daemon carries out earlier ones (a stopped session reports its state
change at once) are appended, so the daemon's drain loop sees one ordered stream.

An RPC whose peer DRG runs in another daemon has a BGP session too (R109); what it sends and receives
is the work of :class:`~controlplane.router.rpc_sessions.RpcSessions` (``self.rpc``), called at the marked places.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from controlplane.bgp import outputs as bgp
from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import SAFI_UNICAST, CeaseSubcode, SegmentType
from controlplane.bgp.outputs import State
from controlplane.bgp.session import Peer, PeerConfig
from controlplane.config.effective import EffBgp, EffectiveConfig, build_effective
from controlplane.config.schema import AttachmentType, DrgConfig
from controlplane.engine.changes import Changes
from controlplane.engine.engine import RouteEngine
from controlplane.events.event import SAMPLE, DrgEvent, EventType, advert_data, table_data
from controlplane.prefix import AFI_IPV4
from controlplane.router.rpc_sessions import RpcSessions


@dataclass(frozen=True, slots=True)
class AddSession:
    """Register a neighbor for ``peer`` at ``address:port`` (its socket address), started or not."""

    peer: Peer
    address: str
    port: int
    md5_key: str | None
    start: bool


@dataclass(frozen=True, slots=True)
class RemoveSession:
    """Close the session with Cease/``subcode`` and forget the neighbor."""

    name: str
    subcode: int
    communication: str


@dataclass(frozen=True, slots=True)
class StartSession:
    name: str


@dataclass(frozen=True, slots=True)
class StopSession:
    name: str
    subcode: int
    communication: str


@dataclass(frozen=True, slots=True)
class Flush:
    """The session's Adj-RIB-Out changed: send its pending UPDATEs."""

    name: str


Output = AddSession | RemoveSession | StartSession | StopSession | Flush | DrgEvent


def as_path_tuple(segments: tuple[tuple[int, tuple[int, ...]], ...]) -> tuple[int | tuple[int, ...], ...]:
    """AS_PATH segments -> the engine's flat form (AS_SET as a nested tuple)."""
    out: list[int | tuple[int, ...]] = []
    for seg_type, asns in segments:
        if seg_type == SegmentType.AS_SET:
            out.append(tuple(asns))
        else:
            out.extend(asns)
    return tuple(out)


# OCI's session rules, which the generic BGP core takes as PeerConfig parameters.
OCI_HOLD_RANGE: Final = (18, 180)  # R55: the hold times OCI supports; others draw a warning
OCI_HOLD_RANGE_LABEL: Final = f"OCI's {OCI_HOLD_RANGE[0]}-{OCI_HOLD_RANGE[1]} s (R55)"
OCI_PREFIX_LIMIT_RESTART: Final = 30.0  # R58: after a prefix-limit Cease the session may come up again after 30 s
OCI_PREFIX_LIMIT_LABEL: Final = "R58"


def peer_config(session: EffBgp, effective: EffectiveConfig) -> PeerConfig:
    """The BGP core's view of one session: a VC session negotiates its own family only (R53); a
    tunnel's both, IPv6 routes with the IPv4-mapped next hop. OCI's hold-time range (R55) and
    prefix-limit hold-down (R58) are passed in; the hold time offered is the session's own."""
    oracle = session.oracle_ip
    v6 = ":" in oracle
    return PeerConfig(
        name=session.session,
        local_as=effective.asn,
        peer_as=session.customer_asn,
        router_id=effective.router_id,  # an IPv4 address (schema check of DrgConfig)
        connect=session.connect,
        hold_time=session.hold_time,
        hold_range=OCI_HOLD_RANGE,
        hold_range_label=OCI_HOLD_RANGE_LABEL,
        prefix_limit_restart=OCI_PREFIX_LIMIT_RESTART,
        prefix_limit_label=OCI_PREFIX_LIMIT_LABEL,
        max_prefixes={afi: session.max_prefixes[afi - 1] for afi in session.families},
        families=tuple((afi, SAFI_UNICAST) for afi in session.families),
        next_hop_ipv4="0.0.0.0" if v6 else oracle,
        next_hop_ipv6=oracle if v6 else f"::ffff:{oracle}",
    )


def _session_key(session: EffBgp, effective: EffectiveConfig) -> tuple[Any, ...]:
    """What a session is made of: when it changes, the session is re-created."""
    return (peer_config(session, effective), session.peer, session.peer_port, session.md5_key)


class Router:
    """One DRG's routing: the engine, its BGP sessions' Peers, and the outputs for the daemon.

    ``clock`` gives the wall-clock time of events. ``detail`` says who reads per-change events (table
    and advertisement changes): None when nobody does (they are not built at all), 0 when only the log
    does (exact counts and the first and last change, no rule rendered), N for a sample of N rules per
    event (a million-route change never renders a million rules).
    """

    def __init__(self, config: DrgConfig, clock: Callable[[], float],
                 detail: Callable[[], int | None] = lambda: SAMPLE, drg: str | None = None) -> None:
        self.config = config
        self.drg = drg  # set in a daemon of several DRGs: every event names its DRG
        self._clock = clock  # wall clock for event times (injected: the router reads no clock itself)
        self.effective = build_effective(config)
        self.engine = RouteEngine(self.effective)
        self.peers: dict[str, Peer] = {}
        self.stopping = False  # sessions are closing for good: no route churn, no tunnel teardown noise
        self._detail = detail
        self._tunnels_up: set[str] = set()
        self._attr_cache: dict[tuple[tuple[int, ...], str], PathAttributes] = {}
        self._out: deque[Output] = deque()
        self.rpc = RpcSessions(self.effective)  # R109: RPC sessions to other daemons
        self.record_changes = False  # set while an RPC fabric reads take_changes (a daemon of several DRGs)
        self._changed: list[Changes] = []

    # ---- outputs ------------------------------------------------------------------------------------

    def take(self) -> list[Output]:
        """Everything produced since the last call, in order."""
        out = list(self._out)
        self._out.clear()
        return out

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any]) -> None:
        self._out.append(DrgEvent(kind, subject, data, self._clock(), self.drg))

    def take_changes(self) -> list[Changes]:
        """The engine's changes that touched route tables since the last call: what the daemon's RPC
        fabric reads to push this DRG's exports to its peers (R97, R109)."""
        changed = self._changed
        self._changed = []
        return changed

    def apply_changes(self, changes: Changes) -> None:
        """Changes of this DRG's engine computed outside the router (the RPC fabric's ``rpc_update``):
        tables, UPDATEs and events as for its own; not reported back by ``take_changes``."""
        self._apply_changes(changes, record=False)

    # ---- sessions -----------------------------------------------------------------------------------

    def session_names(self) -> list[str]:
        return [session.session for _, session in self.effective.bgp_sessions()]

    def start(self) -> None:
        """Register every session (VCs started, tunnels when UP), then offer the configuration's routes
        and report every tunnel's first state (a tunnel that starts DOWN says why, e.g. R40)."""
        for att, session in self.effective.bgp_sessions():
            self._add_session(session, start=att.type == AttachmentType.VIRTUAL_CIRCUIT)
        for name in self.rpc.specs:  # R109
            self._add_rpc_session(name)
        initial = self.engine.refresh()
        self._apply_changes(initial)
        for transition in initial.tunnels:
            if not transition.up:
                self.publish(EventType.TUNNEL_STATE, transition.tunnel, {
                    "state": "DOWN", "reason": transition.reason,
                    "summary": "DOWN" + (f": {transition.reason}" if transition.reason else "")})

    def _add_session(self, session: EffBgp, start: bool) -> Peer:
        peer = Peer(peer_config(session, self.effective))
        self.peers[session.session] = peer
        self._out.append(AddSession(peer, session.peer, session.peer_port, session.md5_key, start))
        return peer

    def _add_rpc_session(self, name: str) -> None:
        spec = self.rpc.specs[name]
        peer = self.peers[name] = Peer(spec.config)
        self._out.append(AddSession(peer, spec.address, spec.port, None, True))

    def _remove_session(self, name: str, subcode: int, communication: str) -> None:
        del self.peers[name]
        self._tunnels_up.discard(name)
        self._out.append(RemoveSession(name, subcode, communication))

    # ---- BGP -> engine --------------------------------------------------------------------------------

    def bgp_event(self, event: bgp.Event) -> None:
        """One event of the BGP core (from any session) into the engine."""
        engine = self.engine
        if self.stopping and not isinstance(event, bgp.StateChanged | bgp.NotificationSent):
            return  # closing for good: only the sessions' last words are reported
        if isinstance(event, bgp.RoutesReceived) and event.peer in self.rpc:  # R109
            changes, warning = self.rpc.receive(engine, event, self.peers[event.peer])
            if warning:
                self.publish(EventType.WARNING, event.peer, {"summary": warning})
            self._apply_changes(changes)
        elif isinstance(event, bgp.RoutesReceived):
            if event.withdrawn:
                self._apply_changes(engine.withdraw(event.peer, event.afi, event.withdrawn))
            if event.announced and event.attributes is not None:
                path = as_path_tuple(event.attributes.as_path)
                self._apply_changes(engine.announce(event.peer, event.afi, event.announced, path))
        elif isinstance(event, bgp.StateChanged):
            self._state_changed(event)
        elif isinstance(event, bgp.NotificationSent | bgp.NotificationReceived):
            kind = EventType.NOTIFICATION_SENT if isinstance(event, bgp.NotificationSent) \
                else EventType.NOTIFICATION_RECEIVED
            self.publish(kind, event.peer, {"code": event.code, "subcode": event.subcode,
                                            "data": event.data.hex(), "summary": event.text})
        elif isinstance(event, bgp.PrefixLimitExceeded):
            family = "ipv4" if event.afi == AFI_IPV4 else "ipv6"
            self.publish(EventType.PREFIX_LIMIT, event.peer, {
                "afi": family, "limit": event.limit,
                "summary": f"more than {event.limit} {family} prefixes (R58/R64): Cease 6/1, session down for 30 s"})
        elif isinstance(event, bgp.PeerWarning):
            self.publish(EventType.WARNING, event.peer, {"summary": event.text})
        elif isinstance(event, bgp.UpdateErrors):  # rate-limited by the Peer; the counters have them all
            more = f" (+{event.suppressed} more since the last report)" if event.suppressed else ""
            self.publish(EventType.WARNING, event.peer, {"summary": event.text + more, "suppressed": event.suppressed})

    def _state_changed(self, event: bgp.StateChanged) -> None:
        reason = f" ({event.reason})" if event.reason else ""
        self.publish(EventType.SESSION_STATE, event.peer, {
            "old": event.old.value, "new": event.new.value, "reason": event.reason,
            "summary": f"{event.old.value} -> {event.new.value}{reason}"})
        if self.stopping or event.peer not in self.peers:
            return  # closing for good, or a removed session's last words (its routes went with it)
        if event.peer in self.rpc:  # R109: an RPC session that goes down withdraws all it brought
            if event.old == State.ESTABLISHED and event.new != State.ESTABLISHED:
                self._apply_changes(self.engine.rpc_update(event.peer, []))
        elif event.new == State.ESTABLISHED:
            self._apply_changes(self.engine.set_session_established(event.peer, True))
        elif event.old == State.ESTABLISHED:
            self._apply_changes(self.engine.session_down(event.peer))
            self._apply_changes(self.engine.set_session_established(event.peer, False))

    # ---- engine -> BGP and events -------------------------------------------------------------------

    def _apply_changes(self, changes: Changes, record: bool = True) -> None:
        """Engine results -> Adj-RIB-Out edits and Flushes, tunnel sessions, events."""
        if record and self.record_changes and changes.tables:
            self._changed.append(changes)
        detail = self._detail()
        for name in self.rpc.export(self.engine, changes, self.peers):  # R109
            self._out.append(Flush(name))
        for advert in changes.advertisements:
            peer = self.peers.get(advert.attachment)
            if peer is not None:
                attrs = self._attributes(advert.as_path, advert.next_hop)
                for afi, keys in advert.withdraw.items():
                    peer.withdraw(afi, keys)
                for afi, keys in advert.announce.items():
                    peer.advertise(afi, keys, attrs)
                self._out.append(Flush(advert.attachment))
            if detail is not None:
                self.publish(EventType.ADVERTISEMENT_CHANGE, advert.attachment, advert_data(advert, detail))
        if detail is not None:
            for delta in changes.tables:
                self.publish(EventType.ROUTE_TABLE_CHANGE, delta.table, table_data(delta, detail))
        for transition in changes.tunnels:
            self._tunnel(transition.tunnel, transition.up, transition.reason)
        for warning in changes.warnings:
            self.publish(EventType.WARNING, None, {"summary": warning})

    def _attributes(self, as_path: tuple[int, ...], next_hop: str) -> PathAttributes:
        """Attributes of what the DRG sends (R36); an IPv6 next hop travels in MP_REACH only."""
        key = (as_path, next_hop)
        attrs = self._attr_cache.get(key)
        if attrs is None:
            address = next_hop.split("/")[0]
            attrs = self._attr_cache[key] = PathAttributes.make(
                as_path=list(as_path), next_hop=None if ":" in address else address)
        return attrs

    def _tunnel(self, name: str, up: bool, reason: str | None) -> None:
        """A tunnel's session follows the tunnel (R47)."""
        if up == (name in self._tunnels_up):
            return
        state = "UP" if up else "DOWN"
        self.publish(EventType.TUNNEL_STATE, name, {"state": state, "reason": reason,
                                                    "summary": state + (f": {reason}" if reason else "")})
        if up:
            self._tunnels_up.add(name)
            if name in self.peers:
                self._out.append(StartSession(name))
        else:
            self._tunnels_up.discard(name)
            if name in self.peers:
                self._out.append(StopSession(name, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                                             f"IPSec tunnel down: {reason or 'no reason given'}"))

    # ---- configuration changes ------------------------------------------------------------------------

    def apply(self, config: DrgConfig) -> tuple[list[str], Changes]:
        """Switch to a validated configuration; only sessions whose settings changed are touched (Cease
        6/6 Other Configuration Change; 6/3 Peer De-configured for a removed session). Returns what
        happened to sessions, and the engine's changes (already carried into outputs)."""
        old_effective = self.effective
        old = {s.session: s for _, s in old_effective.bgp_sessions()}
        self.config = config
        self.effective = build_effective(config)
        new = {s.session: (a, s) for a, s in self.effective.bgp_sessions()}
        old_rpc, self.rpc = self.rpc, RpcSessions(self.effective)  # R109: the routes of kept RPC sessions stay
        kept_rpc = old_rpc.kept(self.rpc)
        kept_peers = {n: self.peers[n] for n in kept_rpc if n in self.peers}
        changes = self.engine.apply_config(self.rpc.engine_view(self.effective, kept_peers))
        touched = self._rpc_sessions_removed(old_rpc, kept_rpc)
        for name in old:
            if name not in new:
                self._remove_session(name, CeaseSubcode.PEER_DE_CONFIGURED, "session removed from the configuration")
                touched.append(f"session {name} removed")
        for name, (att, session) in new.items():
            before = old.get(name)
            if before is not None and _session_key(before, old_effective) == _session_key(session, self.effective):
                continue
            if before is not None:
                self._remove_session(name, CeaseSubcode.OTHER_CONFIGURATION_CHANGE, "session settings changed")
            tunnel = att.type == AttachmentType.IPSEC_TUNNEL
            up = not tunnel or self.engine.tunnel_state(name)[0]
            peer = self._add_session(session, start=up)
            if tunnel and up:
                self._tunnels_up.add(name)
            self._load_rib_out(name, peer)
            touched.append(f"session {name} {'re-created' if before is not None else 'added'}")
        touched += self._rpc_sessions_added(old_rpc, kept_rpc)
        self._apply_changes(changes)
        return touched, changes

    def _rpc_sessions_removed(self, old: RpcSessions, kept: set[str]) -> list[str]:
        """RPC sessions (R109) gone from the configuration or whose settings changed are closed."""
        touched = []
        for name in old.specs:
            if name in kept:
                continue
            if name in self.rpc:
                self._remove_session(name, CeaseSubcode.OTHER_CONFIGURATION_CHANGE, "session settings changed")
            else:
                self._remove_session(name, CeaseSubcode.PEER_DE_CONFIGURED, "session removed from the configuration")
                touched.append(f"session {name} removed")
        return touched

    def _rpc_sessions_added(self, old: RpcSessions, kept: set[str]) -> list[str]:
        """New and re-created RPC sessions (R109); then every RPC session sends the RPC's whole export."""
        touched = []
        for name in self.rpc.specs:
            if name not in kept:
                self._add_rpc_session(name)
                touched.append(f"session {name} {'re-created' if name in old else 'added'}")
        for name in self.rpc.resync(self.engine, self.peers):
            self._out.append(Flush(name))
        return touched

    def _load_rib_out(self, name: str, peer: Peer) -> None:
        """A new session starts with the engine's whole advertisement for it (R33, R36)."""
        full = self.engine.adj_rib_out(name)
        attrs = self._attributes(full.as_path, full.next_hop)
        for afi, keys in full.announce.items():
            peer.advertise(afi, keys, attrs)
