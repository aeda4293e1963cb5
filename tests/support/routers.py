"""Several sans-IO Routers (one per daemon) joined over in-memory wires, without sockets or a real clock.

``Regions`` plays every daemon and the network at once, in the style of ``tests/test_router.py``'s
Fabric: each router's AddSession of a VC or tunnel gets an on-prem customer Peer over a ``Link``; an
RPC session (R109) is paired with the RPC session of the peer DRG's router (``peer: {drg, attachment,
remote}``) over one ``Link`` between the two routers' Peers. Outputs and events are carried until
nothing moves; started sessions get up to 30 s of their own clock to come up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.outputs import Event, RoutesReceived, State
from controlplane.bgp.session import Peer, PeerConfig
from controlplane.events.event import DrgEvent
from controlplane.prefix import AFI_IPV4, parse_prefix
from controlplane.router.router import AddSession, Flush, RemoveSession, Router, StartSession, StopSession
from tests.support.bgp import Link
from tests.support.factory import config

CLOCK = 1_800_000_000.0
End = tuple[str, str]  # (DRG, session)


@dataclass
class Wire:
    """A Link and which router owns each side ("a", "b"); a customer's side is None."""

    link: Link
    owners: dict[str, End | None]
    received: list[Event] = field(default_factory=list)  # a customer's events (what the DRG sent)


class Regions:
    def __init__(self, *raws: dict[str, Any]) -> None:
        self.routers = {raw["drg"]["name"]: Router(config(raw), clock=lambda: CLOCK) for raw in raws}
        self.wires: dict[End, tuple[Wire, str]] = {}
        self.waiting: dict[End, Peer] = {}  # an RPC session whose peer DRG's session is not there yet
        self.events: dict[str, list[DrgEvent]] = {drg: [] for drg in self.routers}
        self.rpc_events: dict[End, list[Event]] = {}  # what each RPC session's Peer reported to its router
        for router in self.routers.values():
            router.start()
        self.settle()

    def _wires(self) -> list[Wire]:
        return list({id(w): w for w, _ in self.wires.values()}.values())

    def settle(self) -> None:
        self._quiet()
        for _ in range(60):
            waiting = [w for w in self._wires() if any(
                end is not None and w.link.side(s).peer.started and w.link.side(s).peer.state != State.ESTABLISHED
                for s, end in w.owners.items())]
            if not waiting:
                return
            for wire in waiting:
                wire.link.advance(0.5)
            self._quiet()

    def _quiet(self) -> None:
        for _ in range(200):
            moved = False
            for drg, router in self.routers.items():
                for out in router.take():
                    moved = True
                    self._carry_out(drg, out)
            for wire in self._wires():
                wire.link.run()
                for side, end in wire.owners.items():
                    events = wire.link.side(side).events
                    if events:
                        moved = True
                    for event in events:
                        if end is None:
                            wire.received.append(event)
                        else:
                            if end[1] in self.routers[end[0]].rpc:
                                self.rpc_events.setdefault(end, []).append(event)
                            self.routers[end[0]].bgp_event(event)
                    events.clear()
            if not moved:
                return
        raise AssertionError("the regions do not settle")

    def _carry_out(self, drg: str, out: object) -> None:
        if isinstance(out, DrgEvent):
            self.events[drg].append(out)
        elif isinstance(out, AddSession):
            self._add(drg, out)
            return
        elif isinstance(out, StartSession | StopSession | Flush | RemoveSession):
            found = self.wires.get((drg, out.name))
            if found is None:
                return
            wire, side = found
            peer, now = wire.link.side(side).peer, wire.link.now
            if isinstance(out, StartSession):
                peer.start(now)
            elif isinstance(out, Flush):
                peer.flush(now)
            else:
                peer.stop(now, out.subcode, out.communication)
            if isinstance(out, RemoveSession):
                wire.link.run()
                del self.wires[(drg, out.name)]

    def _add(self, drg: str, out: AddSession) -> None:
        name = out.peer.config.name
        router = self.routers[drg]
        if name in router.rpc:
            other = router.rpc.specs[name].peer
            partner = self.waiting.pop(other, None)
            if partner is None:
                self.waiting[(drg, name)] = out.peer
                return
            link = Link(partner, out.peer)
            wire = Wire(link, {"a": other, "b": (drg, name)})
            self.wires[other] = (wire, "a")
            self.wires[(drg, name)] = (wire, "b")
            partner.start(link.now)
            out.peer.start(link.now)
            return
        cfg = out.peer.config
        remote = Peer(PeerConfig(name=f"cpe-{name}", local_as=cfg.peer_as, peer_as=cfg.local_as,
                                 router_id="10.255.0.1", hold_time=cfg.hold_time, families=cfg.families,
                                 next_hop_ipv4="192.0.2.1",
                                 connect="passive" if cfg.connect == "active" else "active"))
        link = Link(out.peer, remote)
        self.wires[(drg, name)] = (Wire(link, {"a": (drg, name), "b": None}), "a")
        remote.start(link.now)
        if out.start:
            out.peer.start(link.now)

    # ---- the on-prem side ------------------------------------------------------------------------

    def announce(self, drg: str, session: str, prefix: str, as_path: tuple[int, ...] = (65001,)) -> None:
        wire, _ = self.wires[(drg, session)]
        peer = wire.link.b.peer
        peer.advertise(AFI_IPV4, [parse_prefix(prefix)[1]],
                       PathAttributes.make(as_path=list(as_path), next_hop="192.0.2.1"))
        peer.flush(wire.link.now)
        self.settle()

    def rpc_peer(self, drg: str, name: str) -> Peer:
        wire, side = self.wires[(drg, name)]
        return wire.link.side(side).peer

    def state(self, drg: str, name: str) -> State:
        return self.rpc_peer(drg, name).state

    def received(self, drg: str, name: str) -> list[RoutesReceived]:
        return [e for e in self.rpc_events.get((drg, name), []) if isinstance(e, RoutesReceived)]
