"""The daemon's JSON queries, for one DRG or several: ``drg routes/sessions/advertised/offered/trace``.

:class:`Queries` is the query half of :class:`~controlplane.daemon.Daemon`: it reads the routers'
engines through :class:`~controlplane.engine.drgs.Drgs` (the same documents as the offline mode) and
adds what only the daemon knows - each session's RFC 4271 state from the speaker. A single-DRG file
answers product.md's documents unchanged; a multi-DRG file (``drgs:``) answers route dumps per DRG
(``{"drgs": [{"drg", "routeTables"}]}``) and adds ``"drg"`` to sessions, advertisements, offers and
traces. ``drg`` selects one DRG (unknown names are NotFound; a name of several DRGs without it is a
ValueError, a 400 of the control API).

:class:`DrgScope` is one DRG of a multi-DRG daemon seen as a single-DRG daemon (its own event bus,
single-DRG documents): what an MQTT publisher under ``drg/<name>/`` reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from controlplane.bgp.outputs import State
from controlplane.config.effective import EffectiveConfig
from controlplane.config.effective_json import effective_json
from controlplane.config.schema import AttachmentType, DrgConfig
from controlplane.engine.drgs import Drgs
from controlplane.engine.dump import COMPACT, DEFAULT, INDENTED, RoutePlan, iter_json, iter_table_json
from controlplane.errors import NotFound
from controlplane.events.bus import EventBus
from controlplane.events.event import EventType
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from controlplane.render_dump import iter_text

if TYPE_CHECKING:
    from controlplane.router.router import Router
    from controlplane.transport import Speaker

T = TypeVar("T")


def found(fn: Callable[[], T]) -> T:
    """KeyError (an unknown table, attachment or DRG) -> NotFound (404)."""
    try:
        return fn()
    except KeyError as exc:
        raise NotFound(str(exc.args[0]) if exc.args else str(exc)) from exc


class Queries:
    """The JSON documents of a running daemon (mixed into ``Daemon``)."""

    routers: dict[str, Router]
    drgs: Drgs
    speaker: Speaker
    bus: EventBus
    source: Any
    started_at: float

    @property
    def multi(self) -> bool:
        return self.drgs.multi

    def status(self) -> dict[str, Any]:
        names = list(self.routers)
        doc: dict[str, Any] = {"drgs": names} if self.multi else {"drg": names[0]}
        return {**doc, "uptimeSeconds": int(time.time() - self.started_at),
                "source": str(self.source) if self.source else None, "events": self.bus.published}

    def routes_json(self, table: str | None = None, attachment: str | None = None,
                    drg: str | None = None) -> dict[str, Any]:
        return found(lambda: self.drgs.routes(table, attachment, drg))

    def config_json(self, drg: str | None = None) -> dict[str, Any]:
        """The running effective configuration, as ``drg validate --json`` prints a file's: ``{"config"}``,
        or ``{"drgs": [{"drg", "config"}]}`` for a multi-DRG daemon."""
        names = found(lambda: self.drgs.select(drg))
        if not self.multi:
            return {"config": effective_json(self.routers[names[0]].effective)}
        return {"drgs": [{"drg": name, "config": effective_json(self.routers[name].effective)} for name in names]}

    def route_plan(self, table: str | None = None, attachment: str | None = None,
                   drg: str | None = None) -> RoutePlan:
        """The tables of :meth:`routes_json` and their engines (``Drgs.route_plan``; unknown names raise
        NotFound): what the streamed dumps and the console's pages read."""
        return found(lambda: self.drgs.route_plan(table, attachment, drg))

    def routes_chunks(self, table: str | None = None, attachment: str | None = None, drg: str | None = None,
                      text: bool = False, indent: bool = False) -> Iterator[str]:
        """The route dump as text pieces (``engine/dump.py``, ``render_dump.py``): the JSON of
        :meth:`routes_json` (``json.dumps``' defaults, or ``indent=2``), or with ``text`` the dump
        ``drg routes`` prints. Unknown names raise NotFound here, before the first piece."""
        plan = self.route_plan(table, attachment, drg)
        if text:
            return iter_text(plan)
        return iter_json(plan, INDENTED if indent else DEFAULT)

    def table_chunks(self, name: str, drg: str | None = None) -> Iterator[str]:
        """One table of :meth:`routes_json` as compact JSON pieces (the retained MQTT table)."""
        plan = self.route_plan(name, None, drg)
        if not plan.drgs:
            raise NotFound(f"no route table {name!r}")
        _, engine, _names = plan.drgs[0]
        return iter_table_json(engine, name, COMPACT)

    def sessions_json(self, drg: str | None = None) -> dict[str, Any]:
        sessions = []
        for name in found(lambda: self.drgs.select(drg)):
            router = self.routers[name]
            for att, session in router.effective.bgp_sessions():
                entry = self._session(router, att.name, att.type, session)
                if entry is not None:
                    sessions.append({**entry, "drg": name} if self.multi else entry)
            rpc = router.rpc  # R109: RPC sessions to the daemons of peer DRGs
            now = self.speaker.now()
            for rpc_name, n in self.speaker.neighbors.items():
                if rpc_name in rpc:
                    entry = rpc.session_json(rpc_name, n.peer, f"{n.address}:{n.port}", now)
                    sessions.append({**entry, "drg": name} if self.multi else entry)
        return {"sessions": sessions}

    def _session(self, router: Router, attachment: str, kind: str, session: Any) -> dict[str, Any] | None:
        neighbor = self.speaker.neighbors.get(session.session)
        if neighbor is None:
            return None
        peer = neighbor.peer
        tunnel = None
        down_reason = None
        if kind == AttachmentType.IPSEC_TUNNEL:
            up, down_reason = router.engine.tunnel_state(attachment)
            tunnel = "UP" if up else "DOWN"
        rib_in = peer.rib_in
        established = peer.established_at
        return {
            "attachment": attachment,
            "session": session.session,
            "addressFamilies": ["ipv4" if afi == AFI_IPV4 else "ipv6" for afi in session.families],
            "neighbor": session.customer_ip,
            "socket": f"{neighbor.address}:{neighbor.port}",
            "localAsn": router.config.drg.asn,
            "peerAsn": session.customer_asn,
            "state": peer.state.value,
            "uptimeSeconds": int(self.speaker.now() - established) if established is not None else None,
            "prefixesReceived": rib_in.count(AFI_IPV4) + rib_in.count(AFI_IPV6),
            "prefixesAdvertised": peer.rib_out.count(AFI_IPV4) + peer.rib_out.count(AFI_IPV6)
            if peer.state == State.ESTABLISHED else 0,  # an Adj-RIB-Out is empty until Established
            "lastError": peer.last_error,
            "prefixesRejected": dict(peer.rejected),
            "attributesDiscarded": dict(peer.discarded),
            "tunnel": tunnel,
            "downReason": down_reason,
        }

    def advertised_json(self, name: str, drg: str | None = None) -> dict[str, Any]:
        """The engine's Adj-RIB-Out with the session's RFC 4271 state (routes only while Established)."""
        _owner, doc = found(lambda: self.drgs.advertised(name, drg))
        doc = dict(doc)
        neighbor = self.speaker.neighbors.get(doc.get("session", doc["attachment"]))
        if neighbor is not None:
            doc["state"] = neighbor.peer.state.value
            if neighbor.peer.state != State.ESTABLISHED and doc["routes"]:  # nothing is sent before that
                doc["wouldAdvertise"], doc["routes"] = doc["routes"], []
        return doc

    def offered_json(self, name: str, drg: str | None = None) -> dict[str, Any]:
        """What an attachment offers for import (R22, R78-R81, R97), with the tables that import it."""
        return found(lambda: self.drgs.offered(name, drg))

    def trace_json(self, from_attachment: str, src: str, dst: str, inner_src: str | None = None,
                   inner_dst: str | None = None, drg: str | None = None) -> dict[str, Any]:
        return found(lambda: self.drgs.trace(from_attachment, src, dst, inner_src, inner_dst, drg))


class DrgScope:
    """One DRG of a multi-DRG daemon with the face of a single-DRG daemon (``events.mqtt_backlog.Daemon``)."""

    def __init__(self, daemon: Any, drg: str) -> None:
        self.daemon = daemon
        self.drg = drg
        self.bus = EventBus()  # this DRG's events and the daemon's own (config-applied)

    def _router(self) -> Router:
        router: Router | None = self.daemon.routers.get(self.drg)
        if router is None:
            raise NotFound(f"DRG {self.drg} is no longer in the configuration")
        return router

    @property
    def config(self) -> DrgConfig:
        return self._router().config

    @property
    def effective(self) -> EffectiveConfig:
        return self._router().effective

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any]) -> None:
        self.daemon.publish(kind, subject, data, drg=self.drg)

    def routes_json(self, table: str | None = None, attachment: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = self.daemon.routes_json(table, attachment, drg=self.drg)
        return {"routeTables": doc["drgs"][0]["routeTables"] if doc["drgs"] else []}

    def table_chunks(self, name: str) -> Iterator[str]:
        chunks: Iterator[str] = self.daemon.table_chunks(name, drg=self.drg)
        return chunks

    def advertised_json(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.daemon.advertised_json(name, drg=self.drg)
        return doc

    def sessions_json(self) -> dict[str, Any]:
        if self.drg not in self.daemon.routers:
            return {"sessions": []}
        doc: dict[str, Any] = self.daemon.sessions_json(drg=self.drg)
        return doc

    def session_names(self) -> list[str]:
        router = self.daemon.routers.get(self.drg)
        return router.session_names() if router is not None else []
