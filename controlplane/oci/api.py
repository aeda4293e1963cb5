"""OCI's own REST API (Core, version 20160918) for the DRG objects, VCN route tables and RPCs, on the API listener.

How it works: :func:`add_oci_routes` mounts :class:`OciApi`'s handlers under ``/20160918`` on the
control API's aiohttp application, next to ``/v1``, so ``oci ... --endpoint http://HOST:PORT``, the
Python SDK's ``service_endpoint`` and Terraform's ``CLIENT_HOST_OVERRIDES`` reach the running DRG.
Reads build the SDK models' JSON from a snapshot of the daemon (``oci/views.py``); lists are bare
arrays paged with ``limit``/``page`` and an opaque ``opc-next-page`` token; single resources carry
an ``etag`` (replies and request values: ``oci/http.py``); every response echoes ``opc-request-id``.
Remote peering connections (read-only) are ``oci/rpc.py``'s, mounted with the rest.

Requests are not authenticated: the emulator never sees the user's public key, so a request signed
by the CLI or an SDK is accepted without verifying the signature; its ``keyId``
(``tenancy/user/fingerprint``) is parsed and logged.

Changes (static rules, statements, a table's import distribution, ECMP flag or display name, a VCN
route table's rules or name: ``oci/vcn_tables.py``) build
a new :class:`~controlplane.config.schema.DrgConfig` from the running one (``oci/requests.py``), go
through the same validation as ``drg apply`` (an error is ``400 InvalidParameter`` with
``"<rule>: <message>. Fix: <fix>"`` and nothing changes), are written back to the file the daemon
was started from (``oci/writeback.py``) and are then applied with ``Daemon.apply``: tables, BGP
advertisements and events change at once.
Changes are serialised by one lock, and nothing is awaited between the snapshot a change starts
from and ``Daemon.apply`` switching to the result, so a ``drg apply`` cannot be lost in between.
Add calls honour ``opc-retry-token``; UpdateDrgRouteTable and UpdateRouteTable honour ``if-match``
(412 on a mismatch). System objects (R2, R45, R46) and dynamic rules (R15) are read-only: 400.

Errors carry OCI's body ``{"code", "message"}``. No error is a 5xx, a 429 or a 409, the statuses
OCI's clients retry: unknown paths and methods are ``404 NotAuthorizedOrNotFound``, and any
unexpected exception under the OCI paths becomes a logged ``400 InvalidParameter``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from controlplane.config.effective import EffAttachment, EffectiveConfig
from controlplane.config.schema import AttachmentType, DrgConfig
from controlplane.config.validate import validate
from controlplane.engine.engine import RouteEngine
from controlplane.oci import http as h
from controlplane.oci import requests as ch
from controlplane.oci import rpc
from controlplane.oci import vcn_tables as vt
from controlplane.oci import views as m
from controlplane.oci.requests import OciError, invalid, not_found, problems_message
from controlplane.oci.writeback import render, write_atomic

log = logging.getLogger("controlplane.oci.api")

BASE = "/20160918"
RETRY_TOKENS = 512  # remembered opc-retry-token answers (most recent first out)


@runtime_checkable
class OciTarget(Protocol):
    """What the OCI API needs of the daemon (``controlplane.daemon.Daemon`` provides it)."""

    speaker: m.Sessions
    source: Path | None
    started_at: float

    @property
    def config(self) -> DrgConfig: ...
    @property
    def effective(self) -> EffectiveConfig: ...
    @property
    def engine(self) -> RouteEngine: ...

    async def apply(self, config: DrgConfig, filename: str = "<api>") -> dict[str, Any]: ...


# ---------------------------------------------------------------------------------------------- the API

class OciApi:
    """The handlers, the change lock and the retry-token memory of one daemon."""

    def __init__(self, target: OciTarget) -> None:
        self.target = target
        self.lock = asyncio.Lock()
        self.retry: OrderedDict[tuple[str, str], tuple[str, int, Any]] = OrderedDict()
        self.key_ids: set[str] = set()

    def view(self) -> m.View:
        t = self.target
        return m.View(t.config, t.effective, t.engine, t.speaker, t.started_at)

    # ---- middleware ------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """OCI's error body, ``opc-request-id`` and keyId logging for every path but ``/v1``."""
        if request.path == "/v1" or request.path.startswith("/v1/"):
            return await handler(request)
        request_id = request.headers.get("opc-request-id") or uuid.uuid4().hex.upper()
        key_id = h.parse_key_id(request.headers.get("authorization"))
        if key_id is not None and key_id not in self.key_ids:
            self.key_ids.add(key_id)
            log.info("OCI API: requests signed with keyId %s (signatures are not verified)", key_id)
        log.debug("OCI API %s %s keyId=%s opc-request-id=%s", request.method, request.path_qs, key_id, request_id)
        response: web.StreamResponse
        try:
            response = await handler(request)
        except OciError as exc:
            response = h.error(exc.status, exc.code, exc.message)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                response = h.error(404, "NotAuthorizedOrNotFound",
                                  f"{request.method} {request.path} is not an operation of this DRG emulator")
            else:
                response = h.error(400, "InvalidParameter", exc.reason)
        except Exception as exc:  # never a 5xx: OCI's clients would retry it
            log.exception("OCI API %s %s failed", request.method, request.path)
            response = h.error(400, "InvalidParameter", f"{type(exc).__name__}: {exc}")
        if response.status >= 400:
            log.info("OCI API %s %s -> %d", request.method, request.path, response.status)
        response.headers["opc-request-id"] = request_id
        return response

    # ---- lookups ---------------------------------------------------------------------------------

    def _check_drg(self, view: m.View, value: str) -> None:
        if value != m.drg_id(view.drg):
            raise not_found(f"DRG {value} not found (this emulator is {m.drg_id(view.drg)})")

    def _vc(self, view: m.View, value: str) -> EffAttachment:
        name = m.name_from_id("virtualcircuit", view.drg, value)
        att = view.effective.find_attachment(name) if name else None
        if att is None or att.type != AttachmentType.VIRTUAL_CIRCUIT:
            raise not_found(f"virtual circuit {value} not found")
        return att

    def _tunnel(self, view: m.View, connection: str, value: str) -> EffAttachment:
        members = self._connection(view, connection)
        found = next((a for a in members if m.tunnel_id(view.drg, a.name) == value), None)
        if found is None:
            raise not_found(f"tunnel {value} of IPSec connection {connection} not found")
        return found

    def _connection(self, view: m.View, value: str) -> list[EffAttachment]:
        members = m.connection_tunnels(view, value)
        if members is None:
            raise not_found(f"IPSec connection {value} not found")
        return members

    # ---- reads -----------------------------------------------------------------------------------

    async def list_drgs(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        return h.paged(request, [m.drg_json(self.view())])

    async def get_drg(self, request: web.Request) -> web.Response:
        view = self.view()
        self._check_drg(view, request.match_info["id"])
        return h.single(m.drg_json(view))

    async def list_attachments(self, request: web.Request) -> web.Response:
        """attachmentType defaults to VCN, as in OCI; ALL lists every type (LOOPBACK included)."""
        h.required(request, "compartmentId")
        view = self.view()
        drg = request.query.get("drgId")
        if drg is not None:
            self._check_drg(view, drg)
        kind = request.query.get("attachmentType", "VCN")
        items = [m.attachment_json(view, a) for a in view.effective.attachments
                 if kind == "ALL" or a.type == kind]
        for param, pick in (("vcnId", ("vcnId",)), ("networkId", ("networkDetails", "id")),
                            ("drgRouteTableId", ("drgRouteTableId",))):
            wanted = request.query.get(param)
            if wanted is not None:
                items = [i for i in items if h.dig(i, pick) == wanted]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_all_attachments(self, request: web.Request) -> web.Response:
        """GetAllDrgAttachments (``oci network drg get-all-drg-attachments``): ids of every type by default."""
        view = self.view()
        self._check_drg(view, request.match_info["id"])
        kind = request.query.get("attachmentType", "ALL")
        cross = request.query.get("isCrossTenancy")
        items = [{"id": a.id} for a in view.effective.attachments
                 if (kind == "ALL" or a.type == kind) and cross in (None, "false")]
        return h.paged(request, items)

    async def get_attachment(self, request: web.Request) -> web.Response:
        view = self.view()
        name = m.name_from_id("drgattachment", view.drg, request.match_info["id"])
        att = view.effective.find_attachment(name) if name else None
        if att is None:
            raise not_found(f"DRG attachment {request.match_info['id']} not found")
        return h.single(m.attachment_json(view, att))

    async def list_tables(self, request: web.Request) -> web.Response:
        view = self.view()
        self._check_drg(view, h.required(request, "drgId"))
        items = [m.table_json(view, t) for t in view.effective.route_tables]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState",
                          importDrgRouteDistributionId="importDrgRouteDistributionId")
        return h.paged(request, h.sorted_items(request, items))

    async def get_table(self, request: web.Request) -> web.Response:
        view = self.view()
        return h.single(m.table_json(view, ch.table(view, request.match_info["id"])))

    async def list_rules(self, request: web.Request) -> web.Response:
        view = self.view()
        table = ch.table(view, request.match_info["id"])
        route_type = request.query.get("routeType")
        if route_type not in (None, "STATIC", "DYNAMIC"):
            raise invalid(f"routeType must be STATIC or DYNAMIC, not {route_type!r}")
        items = [r for r in m.rules_json(view, table.name) if route_type in (None, r["routeType"])]
        return h.paged(request, items)

    async def list_distributions(self, request: web.Request) -> web.Response:
        view = self.view()
        self._check_drg(view, h.required(request, "drgId"))
        items = [m.distribution_json(view, d) for d in view.effective.distributions]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_distribution(self, request: web.Request) -> web.Response:
        view = self.view()
        return h.single(m.distribution_json(view, ch.distribution(view, request.match_info["id"])))

    async def list_statements(self, request: web.Request) -> web.Response:
        view = self.view()
        dist = ch.distribution(view, request.match_info["id"])
        sort_by = request.query.get("sortBy")
        if sort_by not in (None, "TIMECREATED"):
            raise invalid(f"sortBy must be TIMECREATED, not {sort_by!r}")
        return h.paged(request, h.sorted_items(request, m.statements_json(view, dist.name)))

    async def list_vcs(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        view = self.view()
        items = [m.virtual_circuit_json(view, a) for a in view.effective.attachments
                 if a.type == AttachmentType.VIRTUAL_CIRCUIT and a.bgp is not None]
        items = h.filtered(request, items, displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_vc(self, request: web.Request) -> web.Response:
        view = self.view()
        return h.single(m.virtual_circuit_json(view, self._vc(view, request.match_info["id"])))

    async def list_connections(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        view = self.view()
        drg = request.query.get("drgId")
        if drg is not None:
            self._check_drg(view, drg)
        groups: dict[str, list[EffAttachment]] = {}
        for a in m.tunnels(view):
            groups.setdefault(str(a.cpe_ip), []).append(a)
        items = [m.connection_json(view, members) for members in groups.values()]
        items = h.filtered(request, items, cpeId="cpeId")
        return h.paged(request, items)

    async def get_connection(self, request: web.Request) -> web.Response:
        view = self.view()
        return h.single(m.connection_json(view, self._connection(view, request.match_info["ipsc"])))

    async def list_tunnels(self, request: web.Request) -> web.Response:
        view = self.view()
        members = self._connection(view, request.match_info["ipsc"])
        return h.paged(request, [m.tunnel_json(view, a) for a in members])

    async def get_tunnel(self, request: web.Request) -> web.Response:
        view = self.view()
        tunnel = self._tunnel(view, request.match_info["ipsc"], request.match_info["tunnel"])
        return h.single(m.tunnel_json(view, tunnel))

    async def list_tunnel_routes(self, request: web.Request) -> web.Response:
        view = self.view()
        tunnel = self._tunnel(view, request.match_info["ipsc"], request.match_info["tunnel"])
        advertiser = request.query.get("advertiser")
        if advertiser not in (None, "CUSTOMER", "ORACLE"):
            raise invalid(f"advertiser must be CUSTOMER or ORACLE, not {advertiser!r}")
        return h.paged(request, m.tunnel_routes_json(view, tunnel, advertiser))

    # ---- changes: common -------------------------------------------------------------------------

    async def _commit(self, view: m.View, new: DrgConfig, operation: str) -> m.View:
        """Validate like ``drg apply``, write the file back, apply; the new snapshot. Call under the lock."""
        if new == view.config:
            return view
        source = self.target.source
        filename = str(source) if source is not None else "<oci-api>"
        result = validate(new, filename)
        if result.errors:
            raise invalid(problems_message(result.errors))
        if source is not None:
            # In the event loop on purpose: no other change (drg apply, SIGHUP) can slip in between the
            # snapshot, the file and the apply. The file is one small write and one fsync.
            try:
                write_atomic(source, render(source, view.config, new, f"{operation} through the OCI API"))
            except OSError as exc:
                raise invalid(f"cannot write the configuration back to {source}: {exc}; nothing changed") from None
        log.info("OCI API %s: applying (%s)", operation, filename)
        await self.target.apply(new, f"{filename} (OCI API {operation})")
        return self.view()

    async def _idempotent(self, request: web.Request,
                          produce: Callable[[dict[str, Any]], Awaitable[Any]]) -> web.Response:
        """An Add call: the same ``opc-retry-token`` and body get the first answer again."""
        raw = await request.read()
        token = request.headers.get("opc-retry-token")
        digest = hashlib.sha256(raw).hexdigest()
        key = (token or "", request.path)
        if token:
            seen = self.retry.get(key)
            if seen is not None:
                if seen[0] != digest:
                    raise invalid(f"opc-retry-token {token} was used for a different request")
                return h.reply(seen[2], seen[1])
        data = await produce(await h.json_body(request))
        if token:
            self.retry[key] = (digest, 200, data)
            while len(self.retry) > RETRY_TOKENS:
                self.retry.popitem(last=False)
        return h.reply(data)

    # ---- changes ---------------------------------------------------------------------------------

    async def add_rules(self, request: web.Request) -> web.Response:
        async def produce(body: dict[str, Any]) -> list[dict[str, Any]]:
            details = h.list_field(body, "routeRules")
            async with self.lock:
                view = self.view()
                table = ch.table(view, request.match_info["id"])
                new, destinations = ch.add_rules(view, table, details)
                view = await self._commit(view, new, f"AddDrgRouteRules on {table.name}")
                return ch.static_rules(view, table.name, destinations)

        return await self._idempotent(request, produce)

    async def update_rules(self, request: web.Request) -> web.Response:
        details = h.list_field(await h.json_body(request), "routeRules")
        async with self.lock:
            view = self.view()
            table = ch.table(view, request.match_info["id"])
            new, destinations = ch.update_rules(view, table, details)
            view = await self._commit(view, new, f"UpdateDrgRouteRules on {table.name}")
            return h.reply(ch.static_rules(view, table.name, destinations))

    async def remove_rules(self, request: web.Request) -> web.Response:
        ids = h.list_field(await h.json_body(request), "routeRuleIds")
        async with self.lock:
            view = self.view()
            table = ch.table(view, request.match_info["id"])
            await self._commit(view, ch.remove_rules(view, table, ids), f"RemoveDrgRouteRules on {table.name}")
        return web.Response(status=200)

    async def update_table(self, request: web.Request) -> web.Response:
        body = await h.json_body(request)
        async with self.lock:
            view = self.view()
            table = ch.table(view, request.match_info["id"])
            _if_match(request, m.table_json(view, table))
            view = await self._commit(view, ch.update_table(view, table, body), f"UpdateDrgRouteTable {table.name}")
            return h.single(m.table_json(view, view.effective.table(table.name)))

    async def remove_import_distribution(self, request: web.Request) -> web.Response:
        async with self.lock:
            view = self.view()
            table = ch.table(view, request.match_info["id"])
            view = await self._commit(view, ch.remove_import_distribution(view, table),
                                      f"RemoveImportDrgRouteDistribution {table.name}")
            return h.single(m.table_json(view, view.effective.table(table.name)))

    async def add_statements(self, request: web.Request) -> web.Response:
        async def produce(body: dict[str, Any]) -> list[dict[str, Any]]:
            details = h.list_field(body, "statements")
            async with self.lock:
                view = self.view()
                dist = ch.distribution(view, request.match_info["id"])
                new, priorities = ch.add_statements(view, dist, details)
                view = await self._commit(view, new, f"AddDrgRouteDistributionStatements on {dist.name}")
                return ch.statements_by_priority(view, dist.name, priorities)

        return await self._idempotent(request, produce)

    async def update_statements(self, request: web.Request) -> web.Response:
        details = h.list_field(await h.json_body(request), "statements")
        async with self.lock:
            view = self.view()
            dist = ch.distribution(view, request.match_info["id"])
            new, priorities = ch.update_statements(view, dist, details)
            view = await self._commit(view, new, f"UpdateDrgRouteDistributionStatements on {dist.name}")
            return h.reply(ch.statements_by_priority(view, dist.name, priorities))

    async def remove_statements(self, request: web.Request) -> web.Response:
        ids = h.list_field(await h.json_body(request), "statementIds")
        async with self.lock:
            view = self.view()
            dist = ch.distribution(view, request.match_info["id"])
            await self._commit(view, ch.remove_statements(view, dist, ids),
                               f"RemoveDrgRouteDistributionStatements on {dist.name}")
        return web.Response(status=200)

    # ---- VCN route tables (oci/vcn_tables.py) ----------------------------------------------------

    async def list_vcn_tables(self, request: web.Request) -> web.Response:
        h.required(request, "compartmentId")
        view = self.view()
        items = [vt.table_json(view, t) for t in vt.tables(view)]
        items = h.filtered(request, items, vcnId="vcnId", displayName="displayName", lifecycleState="lifecycleState")
        return h.paged(request, h.sorted_items(request, items))

    async def get_vcn_table(self, request: web.Request) -> web.Response:
        view = self.view()
        return h.single(vt.table_json(view, vt.find(view, request.match_info["id"])))

    async def update_vcn_table(self, request: web.Request) -> web.Response:
        body = await h.json_body(request)
        async with self.lock:
            view = self.view()
            found = vt.find(view, request.match_info["id"])
            doc = vt.table_json(view, found)
            _if_match(request, doc)
            operation = f"UpdateRouteTable {found.table.name} of {found.vcn.name}"
            view = await self._commit(view, vt.update_table(view, found, body), operation)
            return h.single(vt.table_json(view, vt.find(view, doc["id"])))

    # ---- routing table -----------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        b = BASE
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
            web.put(rt, self.update_table),
            web.post(f"{rt}/actions/removeImportDrgRouteDistribution", self.remove_import_distribution),
            web.get(f"{rt}/drgRouteRules", self.list_rules),
            web.post(f"{rt}/actions/addDrgRouteRules", self.add_rules),
            web.post(f"{rt}/actions/updateDrgRouteRules", self.update_rules),
            web.post(f"{rt}/actions/removeDrgRouteRules", self.remove_rules),
            web.get(f"{b}/drgRouteDistributions", self.list_distributions),
            web.get(rd, self.get_distribution),
            web.get(f"{rd}/drgRouteDistributionStatements", self.list_statements),
            web.post(f"{rd}/actions/addDrgRouteDistributionStatements", self.add_statements),
            web.post(f"{rd}/actions/updateDrgRouteDistributionStatements", self.update_statements),
            web.post(f"{rd}/actions/removeDrgRouteDistributionStatements", self.remove_statements),
            web.get(f"{b}/routeTables", self.list_vcn_tables),
            web.get(f"{b}/routeTables/{{id}}", self.get_vcn_table),
            web.put(f"{b}/routeTables/{{id}}", self.update_vcn_table),
            web.get(f"{b}/virtualCircuits", self.list_vcs),
            web.get(f"{b}/virtualCircuits/{{id}}", self.get_vc),
            web.get(f"{b}/ipsecConnections", self.list_connections),
            web.get(ipsc, self.get_connection),
            web.get(f"{ipsc}/tunnels", self.list_tunnels),
            web.get(f"{ipsc}/tunnels/{{tunnel}}", self.get_tunnel),
            web.get(f"{ipsc}/tunnels/{{tunnel}}/routes", self.list_tunnel_routes),
            *rpc.RpcApi(self.view).routes(b),
        ]


def _if_match(request: web.Request, doc: dict[str, Any]) -> None:
    """An update's ``if-match``: 412 unless it is the resource's current etag."""
    wanted, current = request.headers.get("if-match"), m.etag(doc)
    if wanted is not None and wanted != current:
        raise OciError(412, "PreconditionFailed",
                       f"if-match {wanted} does not match the etag of {doc['id']} ({current})")


def add_oci_routes(app: web.Application, target: object) -> None:
    """Mount OCI's REST API on the control API's application (a daemon target only)."""
    if not isinstance(target, OciTarget):
        return
    api = OciApi(target)
    app.middlewares.append(api.middleware)
    app.add_routes(api.routes())
