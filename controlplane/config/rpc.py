"""Remote peering connections (RPC) in the file: the RPC attachment and its peer (oci-drg-transit.md R94-R110).

An RPC attachment (``type: REMOTE_PEERING_CONNECTION``) joins this DRG to another one. Its ``peer`` is
``{drg, attachment}`` - a DRG of the same file (routes exchanged in process, R109), or run by another
daemon when ``remote`` gives that daemon's BGP socket (a real BGP session between the daemons) - or
``external``: the other side is not emulated and the attachment offers the ``offered_routes`` of the
file (or of the learned file, offline). It uses ``autogen-rt-other`` unless it names a table (R96),
exports with the default export distribution unless ``export_distribution: none`` (R10, R97), and
offers and exports nothing unless ``peering_status`` is ``PEERED`` (R110). Checks across objects
(mutual peers, R104, depth R103) live in ``config/validate.py``'s callees; this module checks one
object at a time.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from controlplane.config.fields import AsPathItem, Cidr, IpAddress, Name, Port, StrictModel, rule_error

PeeringStatus = Literal["NEW", "PENDING", "PEERED", "REVOKED", "INVALID"]  # R94, R110
Provenance = Literal["STATIC", "VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL"]  # C1: there is no RPC provenance


class RpcRemote(StrictModel):
    """The BGP socket of the daemon that runs the peer DRG (R109): a loopback address in a lab."""

    address: IpAddress
    port: Port = 179
    connect: Literal["active", "passive", "both"] = "both"


class RpcPeer(StrictModel):
    drg: Name
    attachment: Name
    remote: RpcRemote | None = None


class OfferedRoute(StrictModel):
    """A route an ``external`` peer offers over the RPC (R97, R98, R99)."""

    prefix: Cidr
    provenance: Provenance = "VCN"
    as_path: list[AsPathItem] = []
    network_distance: Annotated[int, Field(ge=1, le=4)] = 1  # R99: 1 = the directly peered DRG; R103: <= 4


class RemotePeeringAttachment(StrictModel):
    name: Name
    type: Literal["REMOTE_PEERING_CONNECTION"]
    route_table: str | None = None  # R96: autogen-rt-other
    export_distribution: Literal["default", "none"] = "default"  # R10, R97
    peer: RpcPeer | Literal["external"]
    peering_status: PeeringStatus = "PEERED"
    offered_routes: list[OfferedRoute] = []
    display_name: str | None = None

    @model_validator(mode="after")
    def _offers_need_an_external_peer(self) -> RemotePeeringAttachment:
        if self.offered_routes and self.peer != "external":
            raise rule_error("R109", "offered_routes are for an RPC whose peer is not emulated (peer: external); "
                             f"{self.peer.drg if isinstance(self.peer, RpcPeer) else ''} sends its own routes",
                             "remove offered_routes, or set peer: external", field="offered_routes")
        return self

    @property
    def peered(self) -> bool:
        return self.peering_status == "PEERED"
