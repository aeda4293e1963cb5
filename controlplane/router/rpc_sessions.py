"""RPC sessions between daemons (R109), sans-IO: which sessions, what they send, what they receive.

An RPC attachment whose ``peer`` has ``remote`` reaches its peer DRG, run by another daemon, over a BGP
session of this daemon's speaker, named after the attachment: iBGP (both ends are OCI's AS, R98),
both families, the other daemon's socket address and port, its ``connect`` mode. :class:`RpcSessions`
knows these sessions for one DRG and does the routing work the :class:`~controlplane.router.Router`
asks of it, on the router's Peers and engine:

* sending (:meth:`RpcSessions.export`): the RPC's export (R97) is the Adj-RIB-Out of its session,
  encoded by :mod:`controlplane.router.rpc_codec`. It is kept incrementally: for every table delta of an
  engine call, the destinations that changed in the table of an RPC with a session are exported again
  (``RouteEngine.rpc_export`` for those keys only), so a change costs O(changed destinations).
  A new configuration is followed by a full diff (:meth:`RpcSessions.resync`), since it may change
  what an RPC exports without a table delta (peering status, export distribution, the table used);
* receiving (:meth:`RpcSessions.receive`): each UPDATE's routes go into the engine as the RPC's
  offers (``RouteEngine.rpc_routes``), provenance, network distance and DRG path decoded from the large
  communities; malformed ones are treated as withdrawn (RFC 7606) and reported; the engine accepts
  nothing unless PEERED (R110) and no route that already crossed this DRG (R103). When the session
  leaves Established the router withdraws all of it (``rpc_update(name, [])``);
* a new configuration (:meth:`RpcSessions.engine_view`): the engine is rebuilt from the configuration,
  which knows nothing of learned RPC routes, so the routes of the sessions that stay are handed to it
  as the RPC's offers, and the new tables hold them from the start (no withdraw-and-announce churn).

Pure: no I/O; the router turns the results into outputs (AddSession, RemoveSession, Flush).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from controlplane.bgp.constants import SAFI_UNICAST
from controlplane.bgp.outputs import RoutesReceived, State
from controlplane.bgp.session import Peer, PeerConfig
from controlplane.config.effective import EffAttachment, EffectiveConfig, RpcOffer
from controlplane.config.schema import AttachmentType
from controlplane.engine.changes import Changes
from controlplane.engine.rpc import RpcStore
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from controlplane.router.rpc_codec import MalformedRpcRoute, RpcCodec

RPC_HOLD_TIME: Final = 30  # OCI's default BGP hold time (R55); an RPC is not a customer session


def remote_rpcs(effective: EffectiveConfig) -> list[EffAttachment]:
    """The RPC attachments whose peer DRG runs in another daemon (R109), in file order."""
    return [a for a in effective.attachments
            if a.type == AttachmentType.REMOTE_PEERING_CONNECTION and a.rpc_remote is not None]


@dataclass(frozen=True)
class RpcSessionSpec:
    """One RPC session: the BGP core's view, the other daemon's socket, and the RPC's peer and table."""

    config: PeerConfig
    address: str
    port: int
    peer: tuple[str, str]  # (peer DRG, peer attachment)
    table: str

    @property
    def key(self) -> tuple[PeerConfig, str, int]:
        """What the session is made of: when it changes, the session is re-created."""
        return self.config, self.address, self.port


def rpc_session_spec(att: EffAttachment, effective: EffectiveConfig) -> RpcSessionSpec:
    assert att.rpc_remote is not None and att.rpc_peer is not None
    address, port, connect = att.rpc_remote
    router_id = effective.router_id
    config = PeerConfig(name=att.name, local_as=effective.asn, peer_as=effective.asn, router_id=router_id,
                        connect=connect, hold_time=RPC_HOLD_TIME,
                        families=((AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)),
                        next_hop_ipv4=router_id, next_hop_ipv6=f"::ffff:{router_id}")
    return RpcSessionSpec(config, address, port, att.rpc_peer, att.route_table)


class RpcSessions:
    """The RPC sessions of one DRG's configuration."""

    def __init__(self, effective: EffectiveConfig) -> None:
        self.asn = effective.asn
        self.codec = RpcCodec(effective.asn)
        self.specs = {a.name: rpc_session_spec(a, effective) for a in remote_rpcs(effective)}
        self._by_table: dict[str, list[str]] = {}
        for name, spec in self.specs.items():
            self._by_table.setdefault(spec.table, []).append(name)

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def kept(self, new: RpcSessions) -> set[str]:
        """The sessions that stay as they are under the configuration of ``new``."""
        return {name for name, spec in self.specs.items()
                if name in new.specs and new.specs[name].key == spec.key}

    # ---- sending -------------------------------------------------------------------------------

    def export(self, engine: RpcStore, changes: Changes, peers: Mapping[str, Peer]) -> list[str]:
        """Carry the table deltas of ``changes`` into the Adj-RIB-Out of the RPC sessions of those tables;
        returns the sessions to flush."""
        flush: list[str] = []
        for delta in changes.tables:
            names = [n for n in self._by_table.get(delta.table, ()) if n in peers]
            if not names:
                continue
            keys: dict[int, list[int]] = {}
            for afi, key, _, _ in delta.entries():
                keys.setdefault(afi, []).append(key)
            for name in names:
                for afi, changed in keys.items():
                    self._set(peers[name], afi, changed, engine.rpc_export(name, afi, changed))
                if name not in flush:
                    flush.append(name)
        return flush

    def _set(self, peer: Peer, afi: int, keys: list[int], offers: list[RpcOffer]) -> None:
        """Destinations ``keys`` of the Adj-RIB-Out become ``offers`` (those without one are withdrawn)."""
        offered = {o.key for o in offers}
        gone = [k for k in keys if k not in offered]
        if gone:
            peer.withdraw(afi, gone)
        groups: dict[Any, list[int]] = {}
        for offer in offers:
            groups.setdefault(self.codec.attributes(offer), []).append(offer.key)
        for attributes, group in groups.items():
            peer.advertise(afi, group, attributes)

    def resync(self, engine: RpcStore, peers: Mapping[str, Peer]) -> list[str]:
        """Every RPC session's Adj-RIB-Out becomes the RPC's whole export (after a new configuration)."""
        for name in self.specs:
            peer = peers.get(name)
            if peer is None:
                continue
            offers = engine.rpc_export(name)
            for afi in (AFI_IPV4, AFI_IPV6):
                mine = [o for o in offers if o.afi == afi]
                stale = peer.rib_out.routes[afi].keys() - {o.key for o in mine}
                self._set(peer, afi, list(stale), mine)
        return [name for name in self.specs if name in peers]

    # ---- receiving -----------------------------------------------------------------------------

    def receive(self, engine: RpcStore, event: RoutesReceived, peer: Peer) -> tuple[Changes, str | None]:
        """One UPDATE's routes into the engine; the warning to publish when they were malformed."""
        path, warning = None, None
        if event.announced and event.attributes is not None:
            try:
                path = self.codec.path(event.attributes)
            except MalformedRpcRoute as exc:
                peer.rib_in.update(event.afi, (), None, event.announced)  # as if withdrawn
                warning = (f"{len(event.announced)} route(s) treated as withdrawn (RFC 7606): {exc}; "
                           "an RPC route carries its provenance, distance and DRG path as large communities (R109)")
        return engine.rpc_routes(event.peer, event.afi, event.announced, path, event.withdrawn), warning

    def engine_view(self, effective: EffectiveConfig, peers: Mapping[str, Peer]) -> EffectiveConfig:
        """``effective`` with the routes received on ``peers`` (sessions that stay) as their RPC's offers."""
        received: dict[str, tuple[RpcOffer, ...]] = {}
        for name, peer in peers.items():
            offers: list[RpcOffer] = []
            for afi in (AFI_IPV4, AFI_IPV6):
                for key, attributes in peer.rib_in.routes[afi].items():
                    try:
                        path = self.codec.path(attributes)
                    except MalformedRpcRoute:
                        continue
                    offers.append(RpcOffer(afi, key, path.provenance, tuple(path), path.distance, path.drg_path))
            if offers:
                received[name] = tuple(offers)
        if not received:
            return effective
        attachments = tuple(replace(a, rpc_offers=received[a.name]) if a.name in received else a
                            for a in effective.attachments)
        return replace(effective, attachments=attachments)

    # ---- queries -------------------------------------------------------------------------------

    def session_json(self, name: str, peer: Peer, socket: str, now: float) -> dict[str, Any]:
        """One row of ``drg sessions --json`` for an RPC session (the fields of a VC's, plus ``rpcPeer``)."""
        spec = self.specs[name]
        established = peer.established_at
        up = peer.state == State.ESTABLISHED
        return {"attachment": name, "session": name, "addressFamilies": ["ipv4", "ipv6"],
                "neighbor": f"{spec.peer[0]}/{spec.peer[1]}", "socket": socket, "localAsn": self.asn,
                "peerAsn": self.asn, "state": peer.state.value,
                "uptimeSeconds": int(now - established) if up and established is not None else None,
                "prefixesReceived": peer.rib_in.count(AFI_IPV4) + peer.rib_in.count(AFI_IPV6),
                "prefixesAdvertised": peer.rib_out.count(AFI_IPV4) + peer.rib_out.count(AFI_IPV6) if up else 0,
                "lastError": peer.last_error, "prefixesRejected": dict(peer.rejected),
                "attributesDiscarded": dict(peer.discarded), "tunnel": None,
                "downReason": None, "rpcPeer": {"drg": spec.peer[0], "attachment": spec.peer[1]}}
