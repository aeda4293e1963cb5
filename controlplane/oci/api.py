"""OCI's own REST API (Core, version 20160918) for the DRG objects, VCN route tables and RPCs, on the API listener.

How it works: :func:`add_oci_routes` mounts :class:`OciApi`'s handlers under ``/20160918`` on the
control API's aiohttp application, next to ``/v1``, so ``oci ... --endpoint http://HOST:PORT``, the
Python SDK's ``service_endpoint`` and Terraform's ``CLIENT_HOST_OVERRIDES`` reach the running DRGs.
Every DRG of the daemon is served: a request's DRG is found from ``drgId`` or from the object's id
(``oci/scope.py``). Reads (``oci/reads.py``) build the SDK models' JSON from a snapshot of the daemon
(``oci/views.py``); lists are bare arrays paged with ``limit``/``page`` and an opaque
``opc-next-page`` token; single resources carry an ``etag`` (replies and request values:
``oci/http.py``); every response echoes ``opc-request-id``. Remote peering connections (read-only)
are ``oci/rpc.py``'s, mounted with the rest.

Who may call: with public keys in ``api.oci_keys`` (``controlplane/auth.py`` loads them), every
request must carry OCI's request signature by one of them (``oci/signature.py``: keyId, signed
headers, ``date`` within 5 minutes, body digest, RSA); anything else is answered OCI's
``401 NotAuthenticated`` before any handler runs, so it changes nothing (the reason goes to the
log). A non-loopback listener without keys refuses every OCI request the same way. On loopback
without keys the API is open as OCI's emulators are: a signature is not verified, its ``keyId`` is
parsed and logged.

Changes (static rules, statements, a table's import distribution, ECMP flag or display name, a VCN
route table's rules or name: ``oci/vcn_tables.py``) build a new
:class:`~controlplane.config.schema.DrgConfig` of the object's DRG from the running one
(``oci/requests.py``); with the daemon's other DRGs it makes the new design, which goes through the
same validation as ``drg apply``, the whole file at once (R94 across DRGs; an error is
``400 InvalidParameter`` with ``"<rule>: [<drg>: ]<message>. Fix: <fix>"`` and nothing changes), is
written back to the file the daemon was started from (``oci/writeback.py``; under ``drgs[i]`` of a
multi-DRG file) and is then applied with ``Daemon.apply``: tables, RPC routes (R97, R109), BGP
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
from typing import Any

from aiohttp import web

from controlplane.auth import ApiAuth
from controlplane.config.drgs import validate_design
from controlplane.config.effective import EffDistribution, EffRouteTable
from controlplane.config.schema import DrgConfig
from controlplane.oci import http as h
from controlplane.oci import requests as ch
from controlplane.oci import rpc
from controlplane.oci import vcn_tables as vt
from controlplane.oci import views as m
from controlplane.oci.reads import ReadApi
from controlplane.oci.requests import OciError, invalid, problems_message
from controlplane.oci.scope import OciTarget, Snapshot, snapshot
from controlplane.oci.signature import BODY_METHODS, NotAuthenticated, verify
from controlplane.oci.writeback import render, write_atomic

log = logging.getLogger("controlplane.oci.api")

BASE = "/20160918"
RETRY_TOKENS = 512  # remembered opc-retry-token answers (most recent first out)


# ---------------------------------------------------------------------------------------------- the API

class OciApi:
    """The change handlers, the change lock and the retry-token memory of one daemon (reads: ``ReadApi``)."""

    def __init__(self, target: OciTarget, auth: ApiAuth | None = None) -> None:
        self.target = target
        self.auth = auth or ApiAuth()
        self.lock = asyncio.Lock()
        self.retry: OrderedDict[tuple[str, str], tuple[str, int, Any]] = OrderedDict()
        self.key_ids: set[str] = set()

    def snapshot(self) -> Snapshot:
        return snapshot(self.target)

    # ---- middleware ------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """OCI's error body, ``opc-request-id`` and keyId logging for every path but ``/v1`` and the console's."""
        if request.path in ("/", "/v1") or request.path.startswith(("/v1/", "/console/")):
            return await handler(request)
        request_id = request.headers.get("opc-request-id") or uuid.uuid4().hex.upper()
        response: web.StreamResponse
        try:
            key_id = await self._authenticate(request)
            log.debug("OCI API %s %s keyId=%s opc-request-id=%s", request.method, request.path_qs, key_id,
                      request_id)
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

    async def _authenticate(self, request: web.Request) -> str | None:
        """The request's keyId: verified against ``api.oci_keys`` unless the API is open (loopback, no
        keys), where it is only parsed; OciError 401 NotAuthenticated otherwise."""
        if self.auth.open_oci:
            key_id = h.parse_key_id(request.headers.get("authorization"))
            if key_id is not None and key_id not in self.key_ids:
                self.key_ids.add(key_id)
                log.info("OCI API: requests signed with keyId %s (no api.oci_keys: not verified)", key_id)
            return key_id
        try:
            if not self.auth.oci_keys:
                raise NotAuthenticated("this listener is not loopback and api.oci_keys lists no key")
            body = await request.read() if request.method.upper() in BODY_METHODS else b""
            return verify(request.method, request.raw_path, request.headers, body, self.auth.oci_keys)
        except NotAuthenticated as exc:
            log.warning("OCI API %s %s from %s refused: %s", request.method, request.path, request.remote, exc)
            raise OciError(401, "NotAuthenticated", "The required information to complete authentication was "
                           "not provided or was incorrect.") from None

    # ---- changes: common -------------------------------------------------------------------------

    async def _commit(self, snap: Snapshot, view: m.View, new: DrgConfig, operation: str) -> m.View:
        """Validate the whole design like ``drg apply``, write the file back, apply; the new view of the
        changed DRG. Call under the lock."""
        if new == view.config:
            return view
        design = snap.replaced(new)
        if snap.multi:
            operation = f"{operation} of {view.drg}"
        source = self.target.source
        filename = str(source) if source is not None else "<oci-api>"
        result = validate_design(design, filename)
        if result.errors:
            raise invalid(problems_message(result.errors))
        if source is not None:
            # In the event loop on purpose: no other change (drg apply, SIGHUP) can slip in between the
            # snapshot, the file and the apply. The file is one small write and one fsync.
            try:
                write_atomic(source, render(source, snap.design, design, f"{operation} through the OCI API"))
            except OSError as exc:
                raise invalid(f"cannot write the configuration back to {source}: {exc}; nothing changed") from None
        log.info("OCI API %s: applying (%s)", operation, filename)
        await self.target.apply(design, f"{filename} (OCI API {operation})")
        return self.snapshot().view(view.drg)

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

    def _table(self, request: web.Request) -> tuple[Snapshot, m.View, EffRouteTable]:
        snap, value = self.snapshot(), request.match_info["id"]
        return snap, *snap.locate("drgroutetable", value, lambda v: ch.table(v, value))

    def _distribution(self, request: web.Request) -> tuple[Snapshot, m.View, EffDistribution]:
        snap, value = self.snapshot(), request.match_info["id"]
        return snap, *snap.locate("drgroutedistribution", value, lambda v: ch.distribution(v, value))

    # ---- changes ---------------------------------------------------------------------------------

    async def add_rules(self, request: web.Request) -> web.Response:
        async def produce(body: dict[str, Any]) -> list[dict[str, Any]]:
            details = h.list_field(body, "routeRules")
            async with self.lock:
                snap, view, table = self._table(request)
                new, destinations = ch.add_rules(view, table, details)
                view = await self._commit(snap, view, new, f"AddDrgRouteRules on {table.name}")
                return ch.static_rules(view, table.name, destinations)

        return await self._idempotent(request, produce)

    async def update_rules(self, request: web.Request) -> web.Response:
        details = h.list_field(await h.json_body(request), "routeRules")
        async with self.lock:
            snap, view, table = self._table(request)
            new, destinations = ch.update_rules(view, table, details)
            view = await self._commit(snap, view, new, f"UpdateDrgRouteRules on {table.name}")
            return h.reply(ch.static_rules(view, table.name, destinations))

    async def remove_rules(self, request: web.Request) -> web.Response:
        ids = h.list_field(await h.json_body(request), "routeRuleIds")
        async with self.lock:
            snap, view, table = self._table(request)
            await self._commit(snap, view, ch.remove_rules(view, table, ids), f"RemoveDrgRouteRules on {table.name}")
        return web.Response(status=200)

    async def update_table(self, request: web.Request) -> web.Response:
        body = await h.json_body(request)
        async with self.lock:
            snap, view, table = self._table(request)
            _if_match(request, m.table_json(view, table))
            view = await self._commit(snap, view, ch.update_table(view, table, body),
                                      f"UpdateDrgRouteTable {table.name}")
            return h.single(m.table_json(view, view.effective.table(table.name)))

    async def remove_import_distribution(self, request: web.Request) -> web.Response:
        async with self.lock:
            snap, view, table = self._table(request)
            view = await self._commit(snap, view, ch.remove_import_distribution(view, table),
                                      f"RemoveImportDrgRouteDistribution {table.name}")
            return h.single(m.table_json(view, view.effective.table(table.name)))

    async def add_statements(self, request: web.Request) -> web.Response:
        async def produce(body: dict[str, Any]) -> list[dict[str, Any]]:
            details = h.list_field(body, "statements")
            async with self.lock:
                snap, view, dist = self._distribution(request)
                new, priorities = ch.add_statements(view, dist, details)
                view = await self._commit(snap, view, new, f"AddDrgRouteDistributionStatements on {dist.name}")
                return ch.statements_by_priority(view, dist.name, priorities)

        return await self._idempotent(request, produce)

    async def update_statements(self, request: web.Request) -> web.Response:
        details = h.list_field(await h.json_body(request), "statements")
        async with self.lock:
            snap, view, dist = self._distribution(request)
            new, priorities = ch.update_statements(view, dist, details)
            view = await self._commit(snap, view, new, f"UpdateDrgRouteDistributionStatements on {dist.name}")
            return h.reply(ch.statements_by_priority(view, dist.name, priorities))

    async def remove_statements(self, request: web.Request) -> web.Response:
        ids = h.list_field(await h.json_body(request), "statementIds")
        async with self.lock:
            snap, view, dist = self._distribution(request)
            await self._commit(snap, view, ch.remove_statements(view, dist, ids),
                               f"RemoveDrgRouteDistributionStatements on {dist.name}")
        return web.Response(status=200)

    async def update_vcn_table(self, request: web.Request) -> web.Response:
        """UpdateRouteTable (``oci/vcn_tables.py``)."""
        body = await h.json_body(request)
        async with self.lock:
            snap, value = self.snapshot(), request.match_info["id"]
            view, found = snap.locate("routetable", value, lambda v: vt.find(v, value))
            doc = vt.table_json(view, found)
            _if_match(request, doc)
            operation = f"UpdateRouteTable {found.table.name} of {found.vcn.name}"
            view = await self._commit(snap, view, vt.update_table(view, found, body), operation)
            return h.single(vt.table_json(view, vt.find(view, doc["id"])))

    # ---- routing table -----------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        b = BASE
        rt = f"{b}/drgRouteTables/{{id}}"
        rd = f"{b}/drgRouteDistributions/{{id}}"
        return [
            *ReadApi(self.snapshot).routes(b),
            web.put(rt, self.update_table),
            web.post(f"{rt}/actions/removeImportDrgRouteDistribution", self.remove_import_distribution),
            web.post(f"{rt}/actions/addDrgRouteRules", self.add_rules),
            web.post(f"{rt}/actions/updateDrgRouteRules", self.update_rules),
            web.post(f"{rt}/actions/removeDrgRouteRules", self.remove_rules),
            web.post(f"{rd}/actions/addDrgRouteDistributionStatements", self.add_statements),
            web.post(f"{rd}/actions/updateDrgRouteDistributionStatements", self.update_statements),
            web.post(f"{rd}/actions/removeDrgRouteDistributionStatements", self.remove_statements),
            web.put(f"{b}/routeTables/{{id}}", self.update_vcn_table),
            *rpc.RpcApi(self.snapshot).routes(b),
        ]


def _if_match(request: web.Request, doc: dict[str, Any]) -> None:
    """An update's ``if-match``: 412 unless it is the resource's current etag."""
    wanted, current = request.headers.get("if-match"), m.etag(doc)
    if wanted is not None and wanted != current:
        raise OciError(412, "PreconditionFailed",
                       f"if-match {wanted} does not match the etag of {doc['id']} ({current})")


def add_oci_routes(app: web.Application, target: object, auth: ApiAuth | None = None) -> None:
    """Mount OCI's REST API on the control API's application (a daemon target only)."""
    if not isinstance(target, OciTarget):
        return
    api = OciApi(target, auth)
    app.middlewares.append(api.middleware)
    app.add_routes(api.routes())
