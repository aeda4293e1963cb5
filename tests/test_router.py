"""The sans-IO Router, driven without sockets: in-memory customer Peers and an injected clock.

``Fabric`` plays the daemon and the transport at once: it carries out the router's outputs
(AddSession links the router's Peer to a customer-side Peer over an in-memory wire, Start/Stop/
Flush/Remove act on that Peer) and feeds the router's Peers' events back into the router, until
nothing moves. The seed's TransportMode lab (examples/transport-mode.yaml) is the design.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import Update
from controlplane.bgp.outputs import RoutesReceived, State
from controlplane.bgp.session import Peer, PeerConfig
from controlplane.events.event import DrgEvent, EventType
from controlplane.prefix import AFI_IPV4, format_prefix, parse_prefix
from controlplane.router.router import (
    AddSession,
    Flush,
    RemoveSession,
    Router,
    StartSession,
    StopSession,
    as_path_tuple,
)
from tests.support.bgp import Link, decode_all
from tests.support.factory import config, dist, drg, example, table, vc_att

CLOCK = 1_800_000_000.0


@dataclass
class Customer:
    """The on-prem end of one session and the wire to it."""

    link: Link
    received: dict[int, tuple[int, ...]] = field(default_factory=dict)  # key -> AS path, what the DRG sent


class Fabric:
    def __init__(self, raw: dict[str, object]) -> None:
        self.router = Router(config(raw), clock=lambda: CLOCK)
        self.customers: dict[str, Customer] = {}
        self.events: list[DrgEvent] = []
        self.outputs: list[object] = []
        self.router.start()
        self.settle()

    @property
    def now(self) -> float:
        return max((c.link.now for c in self.customers.values()), default=0.0)

    def settle(self) -> None:
        """Carry out outputs and events until nothing moves; started sessions get up to 30 s of
        their own clock to come up (connect-retry after a dial the other side refused)."""
        self._quiet()
        for _ in range(60):
            waiting = [c for c in self.customers.values()
                       if c.link.a.peer.started and c.link.a.peer.state != State.ESTABLISHED]
            if not waiting:
                return
            for customer in waiting:
                customer.link.advance(0.5)
            self._quiet()

    def _quiet(self) -> None:
        for _ in range(100):
            moved = False
            for out in self.router.take():
                moved = True
                self.outputs.append(out)
                self._carry_out(out)
            for name, customer in list(self.customers.items()):
                customer.link.run()
                for event in customer.link.a.events:
                    moved = True
                    self.router.bgp_event(event)
                customer.link.a.events.clear()
                self._collect(name, customer)
            if not moved:
                return
        raise AssertionError("the fabric does not settle")

    def _carry_out(self, out: object) -> None:
        if isinstance(out, DrgEvent):
            self.events.append(out)
        elif isinstance(out, AddSession):
            cfg = out.peer.config
            remote = Peer(PeerConfig(name=f"cpe-{cfg.name}", local_as=cfg.peer_as, peer_as=cfg.local_as,
                                     router_id="10.255.0.1", hold_time=cfg.hold_time,
                                     families=cfg.families, next_hop_ipv4="192.0.2.1",
                                     connect="passive" if cfg.connect == "active" else "active"))
            link = Link(out.peer, remote)
            self.customers[cfg.name] = Customer(link)
            remote.start(link.now)
            if out.start:
                out.peer.start(link.now)
        elif isinstance(out, StartSession):
            link = self.customers[out.name].link
            link.a.peer.start(link.now)
        elif isinstance(out, StopSession):
            link = self.customers[out.name].link
            link.a.peer.stop(link.now, out.subcode, out.communication)
        elif isinstance(out, Flush):
            link = self.customers[out.name].link
            link.a.peer.flush(link.now)
        elif isinstance(out, RemoveSession):
            link = self.customers[out.name].link
            link.a.peer.stop(link.now, out.subcode, out.communication)
            link.run()
            del self.customers[out.name]

    def _collect(self, name: str, customer: Customer) -> None:
        """What the customer side learned from the DRG, from its own events."""
        for event in customer.link.b.events:
            if isinstance(event, RoutesReceived) and event.afi == AFI_IPV4:
                for key in event.withdrawn:
                    customer.received.pop(key, None)
                if event.attributes is not None:
                    path = tuple(a for a in as_path_tuple(event.attributes.as_path) if isinstance(a, int))
                    for key in event.announced:
                        customer.received[key] = path
        customer.link.b.events.clear()

    def announce(self, session: str, *prefixes: str, as_path: tuple[int, ...] = (65001,)) -> None:
        peer = self.customers[session].link.b.peer
        keys = [parse_prefix(p)[1] for p in prefixes]
        peer.advertise(AFI_IPV4, keys, PathAttributes.make(as_path=list(as_path), next_hop="192.0.2.1"))
        peer.flush(self.customers[session].link.now)
        self.settle()

    def withdraw(self, session: str, *prefixes: str) -> None:
        peer = self.customers[session].link.b.peer
        peer.withdraw(AFI_IPV4, [parse_prefix(p)[1] for p in prefixes])
        peer.flush(self.customers[session].link.now)
        self.settle()

    def state(self, session: str) -> State:
        return self.customers[session].link.a.peer.state

    def sent_to(self, session: str) -> dict[str, tuple[int, ...]]:
        return {format_prefix(AFI_IPV4, k): p for k, p in sorted(self.customers[session].received.items())}

    def table(self, name: str) -> dict[str, str]:
        return {r["destination"]: r["nextHop"] for r in self.router.engine.route_table(name)["rules"]}

    def of_type(self, kind: EventType) -> list[DrgEvent]:
        return [e for e in self.events if e.type == kind]


def transport_mode() -> Fabric:
    return Fabric(example("transport-mode"))


def test_start_registers_every_session_and_starts_only_the_vc() -> None:
    fabric = transport_mode()
    added = {o.peer.config.name: o.start for o in fabric.outputs if isinstance(o, AddSession)}
    assert added == {"att-vc1": True, "att-tun1": False, "att-tun2": False}
    assert fabric.state("att-vc1") == State.ESTABLISHED
    assert fabric.state("att-tun1") == State.IDLE
    # R47: no route to the CPE over the VC yet, so both tunnels report DOWN with the reason, at the clock's time
    downs = fabric.of_type(EventType.TUNNEL_STATE)
    assert [(e.subject, e.data["state"]) for e in downs] == [("att-tun1", "DOWN"), ("att-tun2", "DOWN")]
    assert all(e.time == CLOCK and e.data["reason"] for e in downs)


def test_a_tunnel_follows_its_cpe_route_over_the_vc() -> None:
    fabric = transport_mode()
    fabric.announce("att-vc1", "192.168.200.0/24")  # the CPE 192.168.200.1 becomes reachable (R47)
    assert [o.name for o in fabric.outputs if isinstance(o, StartSession)] == ["att-tun1", "att-tun2"]
    assert fabric.state("att-tun1") == State.ESTABLISHED and fabric.state("att-tun2") == State.ESTABLISHED
    # the headends go to on-prem over the VC (R45, R50): the loopback /32s with Oracle's AS path
    assert fabric.sent_to("att-vc1") == {"172.16.255.1/32": (31898,), "172.16.255.2/32": (31898,)}
    fabric.withdraw("att-vc1", "192.168.200.0/24")
    stops = [o for o in fabric.outputs if isinstance(o, StopSession)]
    assert [(o.name, o.subcode) for o in stops] == [("att-tun1", 2), ("att-tun2", 2)]  # Cease/Admin Shutdown
    assert fabric.state("att-tun1") != State.ESTABLISHED
    assert [e.data["state"] for e in fabric.of_type(EventType.TUNNEL_STATE) if e.subject == "att-tun1"] == [
        "DOWN", "UP", "DOWN"]


def test_a_route_from_one_session_reaches_the_tables_and_the_other_sessions() -> None:
    fabric = transport_mode()
    fabric.announce("att-vc1", "192.168.200.0/24")
    fabric.announce("att-tun1", "172.20.10.0/24", as_path=(65002,))
    # rt-vcn imports IPSec tunnels; rt-ipsec imports the VCN only; the VC's table neither (R44)
    assert fabric.table("rt-vcn")["172.20.10.0/24"] == "att-tun1"
    assert "172.20.10.0/24" not in fabric.table("rt-ipsec")
    assert "172.20.10.0/24" not in fabric.table("rt-vc")
    # each tunnel is advertised its table (the VCN's subnet), with Oracle's AS (R36); nothing crosses to the VC
    assert fabric.sent_to("att-tun2") == {"10.10.1.0/24": (31898,)}
    assert "172.20.10.0/24" not in fabric.sent_to("att-vc1")
    changes = [e for e in fabric.of_type(EventType.ROUTE_TABLE_CHANGE) if e.subject == "rt-vcn"]
    assert changes[-1].data["summary"] == "add 172.20.10.0/24 via att-tun1"


def test_a_session_that_goes_down_withdraws_what_it_offered() -> None:
    fabric = transport_mode()
    fabric.announce("att-vc1", "192.168.200.0/24")
    fabric.announce("att-tun1", "172.20.10.0/24", as_path=(65002,))
    fabric.announce("att-tun2", "172.20.10.0/24", as_path=(65002,))
    assert fabric.table("rt-vcn")["172.20.10.0/24"] in ("att-tun1", "att-tun2")
    link = fabric.customers["att-tun1"].link
    link.b.peer.stop(link.now, 2, "maintenance")  # the CPE closes tunnel 1's session
    fabric.settle()
    assert fabric.state("att-tun1") != State.ESTABLISHED
    assert fabric.table("rt-vcn")["172.20.10.0/24"] == "att-tun2"  # tunnel 2's route is all that is left
    received = [(e.subject, e.data["summary"]) for e in fabric.of_type(EventType.NOTIFICATION_RECEIVED)]
    assert ("att-tun1", "Cease/Administrative Shutdown: 'maintenance'") in received


def test_apply_touches_only_the_sessions_whose_settings_changed() -> None:
    raw = example("transport-mode")
    fabric = Fabric(raw)
    fabric.announce("att-vc1", "192.168.200.0/24")
    tun2 = next(a for a in raw["attachments"] if a["name"] == "att-tun2")
    tun2["bgp"]["customer_asn"] = 65003
    touched, changes = fabric.router.apply(config(raw))
    assert touched == ["session att-tun2 re-created"]
    outputs = fabric.router.take()
    assert [o for o in outputs if isinstance(o, RemoveSession)] == [
        RemoveSession("att-tun2", 6, "session settings changed")]  # Cease 6/6 Other Configuration Change
    added = [o for o in outputs if isinstance(o, AddSession)]
    assert [(o.peer.config.name, o.peer.config.peer_as, o.start) for o in added] == [("att-tun2", 65003, True)]
    # the new session starts with the engine's whole Adj-RIB-Out for it (R33, R36)
    assert [format_prefix(AFI_IPV4, k) for k in added[0].peer.rib_out.routes[AFI_IPV4]] == ["10.10.1.0/24"]
    assert not changes.tables


def test_routes_are_ignored_while_stopping_but_the_last_words_are_reported() -> None:
    fabric = transport_mode()
    fabric.router.stopping = True
    attrs = PathAttributes.make(as_path=[65001], next_hop="192.0.2.1")
    key = parse_prefix("10.99.0.0/16")[1]
    fabric.router.bgp_event(RoutesReceived("att-vc1", AFI_IPV4, (key,), attrs, ()))
    assert "10.99.0.0/16" not in fabric.table("rt-vcn")
    assert fabric.router.take() == []
    link = fabric.customers["att-vc1"].link
    link.a.peer.stop(link.now, 2, "DRG emulator shutting down")
    fabric.settle()
    states = [e.data["new"] for e in fabric.of_type(EventType.SESSION_STATE) if e.subject == "att-vc1"]
    assert states[-1] == "Idle"


def test_what_the_router_sends_is_a_real_update() -> None:
    fabric = transport_mode()
    fabric.announce("att-vc1", "192.168.200.0/24")
    sent = b"".join(fabric.customers["att-tun1"].link.a.sent)
    updates = [m for m in decode_all(sent) if isinstance(m, Update)]
    announced = {format_prefix(AFI_IPV4, k) for u in updates for k in u.nlri}
    assert announced == {"10.10.1.0/24"}
    # the next hop is the tunnel's Oracle inside IP
    assert {u.attributes.next_hop for u in updates if u.nlri and u.attributes} == {"169.254.20.1"}


def test_a_vc_route_reaches_another_vcs_table_but_never_its_updates() -> None:
    """R24: routes with VIRTUAL_CIRCUIT provenance are never exported; a static rule is (R33, R36)."""
    raw = drg([vc_att("vc1", 1), vc_att("vc2", 2, table="rt-all", asn=65009)],
              tables=[table("rt-all", "rd-all", static=[("10.50.0.0/16", "vc1")])], dists=[dist("rd-all", "all")])
    fabric = Fabric(raw)
    assert fabric.state("vc1") == State.ESTABLISHED and fabric.state("vc2") == State.ESTABLISHED
    assert fabric.sent_to("vc2") == {"10.50.0.0/16": (31898,)}
    fabric.announce("vc1", "172.16.1.0/24", "172.16.2.0/24")
    assert fabric.table("rt-all") == {"10.50.0.0/16": "vc1", "172.16.1.0/24": "vc1", "172.16.2.0/24": "vc1"}
    assert fabric.sent_to("vc2") == {"10.50.0.0/16": (31898,)}
    assert fabric.sent_to("vc1") == {}  # vc1 uses the default VC table: VCN routes only
    changes = [e.data["summary"] for e in fabric.of_type(EventType.ROUTE_TABLE_CHANGE) if e.subject == "rt-all"]
    assert changes[-1] == "add 172.16.1.0/24 via vc1, add 172.16.2.0/24 via vc1"
