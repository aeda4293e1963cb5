"""The daemon's local control API: JSON over HTTP on ``api.listen`` (loopback by default).

The CLI and remote ``Drg`` clients talk to it; it only translates HTTP to calls on a
:class:`ControlTarget` (the daemon) and never holds state of its own. Paths live under ``/v1``;
OCI's own REST API (``/20160918/...``, ``oci/api.py``) and the read-only web console (``/`` and
``/console/...``, ``console/``) are mounted on the same aiohttp application.

    GET  /v1/status                           daemon name (``drgs``: the names), uptime, counters
    GET  /v1/routes[?table=T][&attachment=A]  like ``drg routes --json``, streamed (see below);
         [&indent=2]: as ``drg routes --json`` prints it; [&format=text]: as ``drg routes`` prints it
    GET  /v1/sessions                         like ``drg sessions --json``
    GET  /v1/advertised/{attachment-or-ip}    like ``drg advertised --json``
    GET  /v1/offered/{attachment}             like ``drg offered --json``
    GET  /v1/trace?from=&src=&dst=[&inner_src=&inner_dst=]
    GET  /v1/config                           the running effective configuration, as ``drg validate --json``

Every GET but status and events takes ``drg=NAME``: in a multi-DRG file (``drgs:``) that DRG only
(``drg ... --drg NAME``); a name that several DRGs have (a VCN, a table) needs it.
    POST /v1/apply   {"config": "<yaml>", "file": "name"}   -> 200 applied | 422 rejected
    GET  /v1/events                           newline-delimited JSON, one event per line, until closed

Errors are ``{"error": "..."}`` with 400 (bad request), 404 (unknown object) or 422 (rejected).

Who may call (``controlplane/auth.py``, ``config/api.py``): with a token configured (``api.token``
or ``api.token_file``) every ``/v1`` request must carry ``Authorization: Bearer <token>`` (compared
in constant time), else ``401 {"error": ...}`` with ``WWW-Authenticate: Bearer`` and no handler
runs; on a non-loopback listener without a token every ``/v1`` request is refused so. On loopback
without a token the API is open. With ``api.tls_cert``/``api.tls_key`` the listener speaks TLS
(HTTPS), for ``/v1`` and OCI's API alike. The console's data paths (``/console/api/...``,
``/console/events``) are gated like ``/v1``; its page and static files hold no data and are served to
anyone who reaches the listener (the page asks for the token and sends it as a bearer header).

The route dump is the one document that grows with the routes (a million rules are ~300 MB of JSON),
so ``/v1/routes`` streams it: the daemon renders it in chunks of a few thousand rules
(``engine/dump.py``, ``render_dump.py``), writes each as it comes and lets the event loop run between
them, so BGP keeps flowing and the whole document never exists at once. The body is byte for byte
``json.dumps`` of the document (a live dump: see ``engine/dump.py``). Other answers are small and sent
whole.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
from collections.abc import Iterator
from typing import Any, Protocol

from aiohttp import web

from controlplane.auth import ApiAuth
from controlplane.console import add_console_routes
from controlplane.engine.dump import RoutePlan
from controlplane.errors import BadRequest, NotFound
from controlplane.events.bus import Subscription
from controlplane.oci.api import add_oci_routes

log = logging.getLogger("controlplane.control")


class ControlTarget(Protocol):
    def status(self) -> dict[str, Any]: ...
    def routes_json(self, table: str | None, attachment: str | None, drg: str | None) -> dict[str, Any]: ...
    def route_plan(self, table: str | None, attachment: str | None, drg: str | None) -> RoutePlan: ...
    def routes_chunks(self, table: str | None, attachment: str | None, drg: str | None, text: bool,
                      indent: bool) -> Iterator[str]: ...
    def sessions_json(self, drg: str | None) -> dict[str, Any]: ...
    def config_json(self, drg: str | None) -> dict[str, Any]: ...
    def advertised_json(self, name: str, drg: str | None) -> dict[str, Any]: ...
    def offered_json(self, name: str, drg: str | None) -> dict[str, Any]: ...
    def trace_json(
        self, from_attachment: str, src: str, dst: str, inner_src: str | None, inner_dst: str | None,
        drg: str | None,
    ) -> dict[str, Any]: ...
    async def apply_text(self, text: str, filename: str) -> tuple[bool, dict[str, Any]]: ...
    def subscribe(self) -> Subscription: ...


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


async def stream(request: web.Request, chunks: Iterator[str], content_type: str) -> web.StreamResponse:
    """Send ``chunks`` as they are rendered, letting the event loop run after each one."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    try:
        for text in chunks:
            if text:
                await response.write(text.encode())
            await asyncio.sleep(0)  # a write below aiohttp's buffer limit does not yield
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away; the rest is not rendered
    return response


def _read_routes(routes: web.RouteTableDef, target: ControlTarget) -> None:
    """The read-only paths: status, routes, sessions, config, advertised, offered, trace."""

    @routes.get("/v1/status")
    async def status(request: web.Request) -> web.Response:
        return _json(target.status())

    @routes.get("/v1/routes")
    async def routes_(request: web.Request) -> web.StreamResponse:
        q = request.query
        form, indent = q.get("format", "json"), q.get("indent")
        if form not in ("json", "text") or indent not in (None, "2"):
            raise BadRequest("format is json or text, indent is 2 or absent")
        chunks = target.routes_chunks(q.get("table"), q.get("attachment"), q.get("drg"), text=form == "text",
                                      indent=indent == "2")
        kind = "text/plain; charset=utf-8" if form == "text" else "application/json"
        return await stream(request, chunks, kind)

    @routes.get("/v1/sessions")
    async def sessions(request: web.Request) -> web.Response:
        return _json(target.sessions_json(request.query.get("drg")))

    @routes.get("/v1/config")
    async def config(request: web.Request) -> web.Response:
        return _json(target.config_json(request.query.get("drg")))

    @routes.get("/v1/advertised/{name}")
    async def advertised(request: web.Request) -> web.Response:
        return _json(target.advertised_json(request.match_info["name"], request.query.get("drg")))

    @routes.get("/v1/offered/{name}")
    async def offered(request: web.Request) -> web.Response:
        return _json(target.offered_json(request.match_info["name"], request.query.get("drg")))

    @routes.get("/v1/trace")
    async def trace(request: web.Request) -> web.Response:
        q = request.query
        missing = [k for k in ("from", "src", "dst") if not q.get(k)]
        if missing:
            raise BadRequest(f"missing query parameter(s): {', '.join(missing)}")
        return _json(target.trace_json(q["from"], q["src"], q["dst"], q.get("inner_src"), q.get("inner_dst"),
                                       q.get("drg")))


def _apply_and_events_routes(routes: web.RouteTableDef, target: ControlTarget) -> None:
    """``POST /v1/apply`` and the ``/v1/events`` stream."""

    @routes.post("/v1/apply")
    async def apply(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("config"), str):
            raise BadRequest('body must be {"config": "<yaml text>", "file": "name"}')
        ok, result = await target.apply_text(body["config"], str(body.get("file") or "<api>"))
        return _json(result, 200 if ok else 422)

    @routes.get("/v1/events")
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        sub = target.subscribe()
        try:
            while True:
                events = await sub.batch()
                await response.write("".join([e.json_text() + "\n" for e in events]).encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            sub.close()
        return response


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """The ``/v1`` errors: NotFound -> 404, BadRequest or ValueError -> 400, as ``{"error": ...}``."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except NotFound as exc:
        return _json({"error": str(exc)}, 404)
    except (BadRequest, ValueError) as exc:
        return _json({"error": str(exc)}, 400)


GATED = ("/v1/", "/console/api/", "/console/events")  # paths behind the bearer token (and "/v1")


def _bearer(auth: ApiAuth) -> Any:
    """The ``/v1`` gate: ``Authorization: Bearer <api token>`` unless the API is open (loopback, no token)."""
    expected = auth.token.encode() if auth.token is not None else None

    @web.middleware
    async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
        if auth.open_control or not (request.path == "/v1" or request.path.startswith(GATED)):
            response: web.StreamResponse = await handler(request)
            return response
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if expected is not None and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                                       expected):
            response = await handler(request)
            return response
        why = ("this listener is not loopback and api has no token" if expected is None else
               "missing or wrong bearer token")
        log.warning("control API %s %s from %s refused: %s", request.method, request.path, request.remote, why)
        reply = _json({"error": f"401 unauthorized: {why}; give drg --token-file FILE (default "
                                "~/.config/drg/token) or DRG_TOKEN"}, 401)
        reply.headers["WWW-Authenticate"] = 'Bearer realm="drg"'
        return reply

    return gate


def build_app(target: ControlTarget, oci_target: object | None = None, auth: ApiAuth | None = None) -> web.Application:
    """The ``/v1`` paths on ``target`` and OCI's API on ``oci_target`` (default: ``target``), both behind
    ``auth`` (default: open, as a loopback listener without credentials)."""
    auth = auth or ApiAuth()
    routes = web.RouteTableDef()
    _read_routes(routes, target)
    _apply_and_events_routes(routes, target)
    app = web.Application(middlewares=[_bearer(auth), _errors])
    app.add_routes(routes)
    add_oci_routes(app, target if oci_target is None else oci_target, auth)
    add_console_routes(app, target)
    return app


class ControlServer:
    """Runs the aiohttp application on one host:port (HTTPS with ``ssl_context``)."""

    def __init__(self, app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
