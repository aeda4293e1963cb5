"""OCI's read operations (List*/Get*) on DRGs, their attachments, route tables, distributions, VCN
route tables, virtual circuits and IPSec connections, over every DRG of the daemon.

How it works: each handler takes a :class:`~controlplane.oci.scope.Snapshot` (one view per DRG) and
builds the SDK models' JSON with ``oci/views.py`` (``oci/vcn_tables.py`` for VCN route tables). A list
covers every DRG in file order, narrowed by ``drgId`` when the request gives one (required by OCI for
route tables and distributions; a 404 for an unknown DRG) and filtered by the other query parameters
OCI offers (``vcnId``, ``attachmentType``, ``displayName`` ...); it is then sorted and paged
(``oci/http.py``). A get finds the DRG from the object's id (:meth:`Snapshot.locate`). A single-DRG
daemon is a snapshot of one view: every answer is the one DRG's. Remote peering connections are
``oci/rpc.py``'s; changes are ``oci/api.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from controlplane.config.effective import EffAttachment
from controlplane.config.schema import AttachmentType
from controlplane.oci import http as h
from controlplane.oci import requests as ch
from controlplane.oci import vcn_tables as vt
from controlplane.oci import views as m
from controlplane.oci.requests import invalid, not_found
from controlplane.oci.scope import Snapshot


def vc(view: m.View, value: str) -> EffAttachment:
    name = m.name_from_id("virtualcircuit", view.drg, value)
    att = view.effective.find_attachment(name) if name else None
    if att is None or att.type != AttachmentType.VIRTUAL_CIRCUIT:
        raise not_found(f"virtual circuit {value} not found")
    return att


def connection(view: m.View, value: str) -> list[EffAttachment]:
    members = m.connection_tunnels(view, value)
    if members is None:
        raise not_found(f"IPSec connection {value} not found")
    return members


def tunnel(view: m.View, connection_id: str, value: str) -> EffAttachment:
    members = connection(view, connection_id)
    found = next((a for a in members if m.tunnel_id(view.drg, a.name) == value), None)
    if found is None:
        raise not_found(f"tunnel {value} of IPSec connection {connection_id} not found")
    return found


def attachment(view: m.View, value: str) -> EffAttachment:
    name = m.name_from_id("drgattachment", view.drg, value)
    att = view.effective.find_attachment(name) if name else None
    if att is None:
        raise not_found(f"DRG attachment {value} not found")
    return att


def own_drg(view: m.View, value: str) -> m.View:
    if value != m.drg_id(view.drg):
        raise not_found(f"DRG {value} not found (this emulator is {m.drg_id(view.drg)})")
    return view


class ReadApi:
    """The read handlers, on snapshots from ``snapshot``."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    async def list_drgs(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        return h.paged(request, [m.drg_json(v) for v in self.snapshot().views])

    async def get_drg(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, _ = self.snapshot().locate("drg", value, lambda v: own_drg(v, value))
        return h.single(m.drg_json(view))

    async def list_attachments(self, request: web.Request) -> web.Response:
        """attachmentType defaults to VCN, as in OCI; ALL lists every type (LOOPBACK included)."""
        h.required(request, "compartmentId")
        kind = request.query.get("attachmentType", "VCN")
        items = [m.attachment_json(view, a) for view in self.snapshot().scoped(request.query.get("drgId"))
                 for a in view.effective.attachments if kind == "ALL" or a.type == kind]
        for param, pick in (("vcnId", ("vcnId",)), ("networkId", ("networkDetails", "id")),
                            ("drgRouteTableId", ("drgRouteTableId",))):
            wanted = request.query.get(param)
            if wanted is not None:
                items = [i for i in items if h.dig(i, pick) == wanted]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_all_attachments(self, request: web.Request) -> web.Response:
        """GetAllDrgAttachments (``oci network drg get-all-drg-attachments``): ids of every type by default."""
        value = request.match_info["id"]
        view, _ = self.snapshot().locate("drg", value, lambda v: own_drg(v, value))
        kind = request.query.get("attachmentType", "ALL")
        cross = request.query.get("isCrossTenancy")
        items = [{"id": a.id} for a in view.effective.attachments
                 if (kind == "ALL" or a.type == kind) and cross in (None, "false")]
        return h.paged(request, items)

    async def get_attachment(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, att = self.snapshot().locate("drgattachment", value, lambda v: attachment(v, value))
        return h.single(m.attachment_json(view, att))

    async def list_tables(self, request: web.Request) -> web.Response:
        views = self.snapshot().scoped(h.required(request, "drgId"))
        items = [m.table_json(view, t) for view in views for t in view.effective.route_tables]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState",
                           importDrgRouteDistributionId="importDrgRouteDistributionId")
        return h.paged(request, h.sorted_items(request, items))

    async def get_table(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, table = self.snapshot().locate("drgroutetable", value, lambda v: ch.table(v, value))
        return h.single(m.table_json(view, table))

    async def list_rules(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, table = self.snapshot().locate("drgroutetable", value, lambda v: ch.table(v, value))
        route_type = request.query.get("routeType")
        if route_type not in (None, "STATIC", "DYNAMIC"):
            raise invalid(f"routeType must be STATIC or DYNAMIC, not {route_type!r}")
        items = [r for r in m.rules_json(view, table.name) if route_type in (None, r["routeType"])]
        return h.paged(request, items)

    async def list_distributions(self, request: web.Request) -> web.Response:
        views = self.snapshot().scoped(h.required(request, "drgId"))
        items = [m.distribution_json(view, d) for view in views for d in view.effective.distributions]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_distribution(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, dist = self.snapshot().locate("drgroutedistribution", value, lambda v: ch.distribution(v, value))
        return h.single(m.distribution_json(view, dist))

    async def list_statements(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, dist = self.snapshot().locate("drgroutedistribution", value, lambda v: ch.distribution(v, value))
        sort_by = request.query.get("sortBy")
        if sort_by not in (None, "TIMECREATED"):
            raise invalid(f"sortBy must be TIMECREATED, not {sort_by!r}")
        return h.paged(request, h.sorted_items(request, m.statements_json(view, dist.name)))

    # ---- virtual circuits and IPSec ----------------------------------------------------------------

    async def list_vcs(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        items = [m.virtual_circuit_json(view, a) for view in self.snapshot().views
                 for a in view.effective.attachments if a.type == AttachmentType.VIRTUAL_CIRCUIT and a.bgp is not None]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_vc(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, att = self.snapshot().locate("virtualcircuit", value, lambda v: vc(v, value))
        return h.single(m.virtual_circuit_json(view, att))

    async def list_connections(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        items = []
        for view in self.snapshot().scoped(request.query.get("drgId")):
            groups: dict[str, list[EffAttachment]] = {}
            for a in m.tunnels(view):
                groups.setdefault(str(a.cpe_ip), []).append(a)
            items += [m.connection_json(view, members) for members in groups.values()]
        items = h.filtered(request, items, cpeId="cpeId")
        return h.paged(request, items)

    async def get_connection(self, request: web.Request) -> web.Response:
        value = request.match_info["ipsc"]
        view, members = self.snapshot().locate("ipsecconnection", value, lambda v: connection(v, value))
        return h.single(m.connection_json(view, members))

    async def list_tunnels(self, request: web.Request) -> web.Response:
        value = request.match_info["ipsc"]
        view, members = self.snapshot().locate("ipsecconnection", value, lambda v: connection(v, value))
        return h.paged(request, [m.tunnel_json(view, a) for a in members])

    def _tunnel(self, request: web.Request) -> tuple[m.View, EffAttachment]:
        ipsc, value = request.match_info["ipsc"], request.match_info["tunnel"]
        return self.snapshot().locate("ipsecconnection", ipsc, lambda v: tunnel(v, ipsc, value))

    async def get_tunnel(self, request: web.Request) -> web.Response:
        view, found = self._tunnel(request)
        return h.single(m.tunnel_json(view, found))

    async def list_tunnel_routes(self, request: web.Request) -> web.Response:
        view, found = self._tunnel(request)
        advertiser = request.query.get("advertiser")
        if advertiser not in (None, "CUSTOMER", "ORACLE"):
            raise invalid(f"advertiser must be CUSTOMER or ORACLE, not {advertiser!r}")
        return h.paged(request, m.tunnel_routes_json(view, found, advertiser))

    # ---- VCN route tables (oci/vcn_tables.py) ------------------------------------------------------

    async def list_vcn_tables(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        items = [vt.table_json(view, t) for view in self.snapshot().views for t in vt.tables(view)]
        items = h.filtered(request, items, vcnId="vcnId", displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_vcn_table(self, request: web.Request) -> web.Response:
        value = request.match_info["id"]
        view, found = self.snapshot().locate("routetable", value, lambda v: vt.find(v, value))
        return h.single(vt.table_json(view, found))

    # ---- routing table -----------------------------------------------------------------------------

    def routes(self, b: str) -> list[web.RouteDef]:
        rt = f"{b}/drgRouteTables/{{id}}"
        rd = f"{b}/drgRouteDistributions/{{id}}"
        ipsc = f"{b}/ipsecConnections/{{ipsc}}"
        return [
            web.get(f"{b}/drgs", self.list_drgs),
            web.get(f"{b}/drgs/{{id}}", self.get_drg),
            web.post(f"{b}/drgs/{{id}}/actions/getAllDrgAttachments", self.get_all_attachments),
            web.get(f"{b}/drgAttachments", self.list_attachments),
            web.get(f"{b}/drgAttachments/{{id}}", self.get_attachment),
            web.get(f"{b}/drgRouteTables", self.list_tables),
            web.get(rt, self.get_table),
            web.get(f"{rt}/drgRouteRules", self.list_rules),
            web.get(f"{b}/drgRouteDistributions", self.list_distributions),
            web.get(rd, self.get_distribution),
            web.get(f"{rd}/drgRouteDistributionStatements", self.list_statements),
            web.get(f"{b}/routeTables", self.list_vcn_tables),
            web.get(f"{b}/routeTables/{{id}}", self.get_vcn_table),
            web.get(f"{b}/virtualCircuits", self.list_vcs),
            web.get(f"{b}/virtualCircuits/{{id}}", self.get_vc),
            web.get(f"{b}/ipsecConnections", self.list_connections),
            web.get(ipsc, self.get_connection),
            web.get(f"{ipsc}/tunnels", self.list_tunnels),
            web.get(f"{ipsc}/tunnels/{{tunnel}}", self.get_tunnel),
            web.get(f"{ipsc}/tunnels/{{tunnel}}/routes", self.list_tunnel_routes),
        ]
