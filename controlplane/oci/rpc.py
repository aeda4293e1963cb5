"""Remote peering connections (``RemotePeeringConnection``, oci-drg-transit.md 2.4 and R94-R110) in OCI's Core API.

How it works: every RPC attachment of the file (``type: REMOTE_PEERING_CONNECTION``, ``config/rpc.py``)
is one RPC, as in OCI where creating an RPC creates its DRG attachment (R94). The RPC's id is
``ocid1.remotepeeringconnection.emu.<drg>.<attachment>`` (``views.rpc_id``); the attachment's
``networkDetails`` is ``{type: REMOTE_PEERING_CONNECTION, id: <that id>}`` (section 2.5,
``views.network_details``). :func:`rpc_json` is the SDK model:

- ``peeringStatus`` is the file's ``peering_status`` (R110, default ``PEERED``);
- ``peerId`` is the peer RPC's id, built the same way from the peer's DRG and attachment, whether the
  peer runs in this daemon or another one (``remote``, R109); ``peerRegionName`` is the peer DRG's
  ``region`` when the file has one; ``peerTenancyId`` is the one tenancy of every emulated DRG,
  :data:`TENANCY` (``isCrossTenancyPeering`` is always false). The three are null for
  ``peer: external`` (the other side is not emulated, nothing is known of it);
- ``lifecycleState`` is ``AVAILABLE``; ``timeCreated`` is the daemon's start, like every object.

:class:`RpcApi` holds the two read operations, ListRemotePeeringConnections (``compartmentId``
required, optional ``drgId``, sorted and paged like the other lists; every DRG of the daemon,
``oci/scope.py``) and GetRemotePeeringConnection (with an ``etag``; the DRG from the id); ``oci/api.py``
mounts its :meth:`RpcApi.routes`. In a multi-DRG daemon the two RPCs of a peering are both listed, each
with the other's id as ``peerId`` (R94). Create, connect, update and
delete are not offered: an RPC and its attachment come and go together (R94), and attachments are the
file's (R2). Rules learned over an RPC keep their origin's ``routeProvenance`` (C1) and carry
``networkDistance``/``drgPath`` in ``attributes`` (``views.rule_json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from controlplane.config.effective import EffAttachment
from controlplane.config.rpc import RemotePeeringAttachment
from controlplane.config.schema import AttachmentType
from controlplane.oci import http as h
from controlplane.oci import views as m
from controlplane.oci.requests import not_found
from controlplane.oci.scope import Snapshot

# The tenancy of every emulated DRG (a valid OCID shape: the CLI checks shapes, never values).
TENANCY = "ocid1.tenancy.emu.emulator.tenancy"


def rpcs(view: m.View) -> list[EffAttachment]:
    """The RPC attachments of the DRG, in file order."""
    return [a for a in view.effective.attachments if a.type == AttachmentType.REMOTE_PEERING_CONNECTION]


def find(view: m.View, value: str) -> EffAttachment:
    found = next((a for a in rpcs(view) if m.rpc_id(view.drg, a.name) == value), None)
    if found is None:
        raise not_found(f"remote peering connection {value} not found")
    return found


def _entry(view: m.View, name: str) -> RemotePeeringAttachment:
    entry = next(x for x in view.config.attachments if x.name == name)
    assert isinstance(entry, RemotePeeringAttachment)
    return entry


def peer_region(view: m.View, drg: str) -> str | None:
    """The ``region`` of DRG ``drg`` if the file describes it and gives one (a multi-DRG file's
    ``drgs[].drg.region``, section 7, read from ``View.drgs``); None otherwise - a single-DRG file, a
    remote or external peer, or a schema without ``region``."""
    others = [*(getattr(view.config, "drgs", None) or ()), *getattr(view, "drgs", ())]  # the daemon's DRGs
    sections = [view.config.drg, *(getattr(d, "drg", None) for d in others)]
    section = next((s for s in sections if s is not None and getattr(s, "name", None) == drg), None)
    region = getattr(section, "region", None)
    return region if isinstance(region, str) else None


def rpc_json(view: m.View, a: EffAttachment) -> dict[str, Any]:
    """A RemotePeeringConnection (section 2.4)."""
    drg = view.drg
    entry = _entry(view, a.name)
    peer = None if entry.peer == "external" else entry.peer
    return {"id": m.rpc_id(drg, a.name), "compartmentId": m.compartment_id(drg), "drgId": m.drg_id(drg),
            "displayName": a.display_name, "timeCreated": m.timestamp(view.started_at),
            "definedTags": {}, "freeformTags": {}, "isCrossTenancyPeering": False, "lifecycleState": "AVAILABLE",
            "peeringStatus": entry.peering_status,
            "peerId": m.rpc_id(peer.drg, peer.attachment) if peer else None,
            "peerRegionName": peer_region(view, peer.drg) if peer else None,
            "peerTenancyId": TENANCY if peer else None}


class RpcApi:
    """ListRemotePeeringConnections and GetRemotePeeringConnection on snapshots from ``snapshot``."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    async def list_rpcs(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        views = self.snapshot().scoped(request.query.get("drgId"))
        items = [rpc_json(view, a) for view in views for a in rpcs(view)]
        return h.paged(request, h.sorted_items(request, items))

    async def get_rpc(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, found = self.snapshot().locate("remotepeeringconnection", value, lambda v: find(v, value))
        return h.single(rpc_json(view, found))

    def routes(self, base: str) -> list[web.RouteDef]:
        return [web.get(f"{base}/remotePeeringConnections", self.list_rpcs),
                web.get(f"{base}/remotePeeringConnections/{{id}}", self.get_rpc)]
