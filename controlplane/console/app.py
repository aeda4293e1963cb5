"""The console's HTTP side: the page, its static files, a route-table pager and an event stream.

Mounted by ``control.build_app`` on the daemon's aiohttp application, next to ``/v1`` and OCI's API:

    GET /                          console/static/index.html
    GET /console/static/{file}     the page's CSS and JavaScript (package data, no build step)
    GET /console/api/routes?table=T[&drg=D][&filter=F][&offset=0][&limit=100]
                                   one page of a table's rules, as in /v1/routes, read from the
                                   table's engine without the whole document (``pages.py``)
    GET /console/events            server-sent events: the bus's recent events (``event: backlog``),
                                   ``event: live``, then every new event as ``data: <event JSON>``

The stream sends a comment every ``KEEPALIVE`` seconds so a closed browser tab is noticed (the
write fails and the subscription is closed); on shutdown the application cancels every open stream,
so stopping the daemon never waits for a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from controlplane.console.pages import RulePages
from controlplane.engine.dump import RoutePlan
from controlplane.errors import BadRequest
from controlplane.events.bus import Subscription
from controlplane.events.event import DrgEvent

STATIC = Path(__file__).with_name("static")
KEEPALIVE = 10.0  # seconds between comments on an idle event stream
_NO_CACHE = {"Cache-Control": "no-cache"}


class ConsoleTarget(Protocol):
    def route_plan(self, table: str | None, attachment: str | None, drg: str | None) -> RoutePlan: ...
    def subscribe(self) -> Subscription: ...


def _int(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer, not {text!r}") from exc


def _sse(event: DrgEvent, kind: str | None = None) -> bytes:
    head = f"event: {kind}\n" if kind else ""
    return (head + "data: " + event.json_text() + "\n\n").encode()


class _Streams:
    """The open event streams, cancelled when the application shuts down."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def shutdown(self, _app: web.Application) -> None:
        for task in list(self.tasks):
            task.cancel()


async def _stream(request: web.Request, target: ConsoleTarget, streams: _Streams) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **_NO_CACHE})
    await response.prepare(request)
    sub = target.subscribe()
    task = asyncio.current_task()
    if task is not None:
        streams.tasks.add(task)
    try:
        await response.write(b"retry: 1000\n\n")
        for event in sub.backlog:
            await response.write(_sse(event, "backlog"))
        await response.write(b"event: live\ndata: {}\n\n")
        while True:
            try:
                events = await asyncio.wait_for(sub.batch(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(b"".join(map(_sse, events)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        sub.close()
        if task is not None:
            streams.tasks.discard(task)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


def add_console_routes(app: web.Application, target: ConsoleTarget) -> None:
    """``/``, ``/console/static/``, ``/console/api/routes`` and ``/console/events`` on ``app``."""
    pages = RulePages(target)
    streams = _Streams()
    app.on_shutdown.append(streams.shutdown)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers=_NO_CACHE)

    async def routes_page(request: web.Request) -> web.Response:
        q = request.query
        if not q.get("table"):
            raise BadRequest("missing query parameter: table")
        doc = await pages.page(q["table"], q.get("drg") or None, q.get("filter", ""), _int(request, "offset", 0),
                         _int(request, "limit", 100))
        return web.Response(text=json.dumps(doc), content_type="application/json")

    async def events(request: web.Request) -> web.StreamResponse:
        return await _stream(request, target, streams)

    app.router.add_get("/", index)
    app.router.add_static("/console/static/", STATIC, name="console-static")
    app.router.add_get("/console/api/routes", routes_page)
    app.router.add_get("/console/events", events)
