"""The running DRG: the asyncio edge around the sans-IO :class:`~controlplane.router.Router`.

The daemon wires the parts and carries out what the router asks for; it holds no routing logic:

    ExaBGP --TCP--> transport.Speaker --(Peer events)--> Daemon.bgp_event --> Router.bgp_event
        --> RouteEngine --> Changes --> Router outputs, drained in order by Daemon._drain:
            AddSession/RemoveSession/StartSession/StopSession/Flush -> transport.Speaker,
            DrgEvents -> the log and the bus (Drg.events(), drg events, MQTT)

It also loads and applies configurations (``drg apply``, SIGHUP, the OCI API), answers the JSON
queries of the control API and ``Drg``, and runs ``drg run``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.bgp import outputs as bgp
from controlplane.bgp.outputs import State
from controlplane.config.effective import EffectiveConfig
from controlplane.config.fields import split_host_port
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import AttachmentType, DrgConfig
from controlplane.config.validate import load_valid, parse_valid
from controlplane.config.vcn import vcn_changes
from controlplane.control import ControlServer, build_app
from controlplane.engine.engine import RouteEngine
from controlplane.errors import NotFound
from controlplane.events.bus import EventBus, Subscription
from controlplane.events.event import DrgEvent, EventType
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from controlplane.router import AddSession, Flush, Output, Router, StartSession, StopSession
from controlplane.transport import Speaker

if TYPE_CHECKING:
    from controlplane.events.mqtt import MqttEvents

log = logging.getLogger("controlplane.daemon")


class Daemon:
    """One emulated DRG: use ``await start()`` / ``await stop()`` or ``controlplane.Drg``."""

    def __init__(self, config: DrgConfig, source: Path | None = None, control: bool = True) -> None:
        self.source = source
        self.bus = EventBus()
        self.router = Router(config, clock=time.time, detail=self._detail)
        host, port = split_host_port(config.speaker.listen)
        self.speaker = Speaker(host, port, self.bgp_event)
        self._control_enabled = control
        self.control: ControlServer | None = None
        self.started_at = time.time()
        self._draining = False
        self.mqtt: MqttEvents | None = None  # events.mqtt: the publisher (and the embedded broker)

    @property
    def config(self) -> DrgConfig:
        return self.router.config

    @property
    def effective(self) -> EffectiveConfig:
        return self.router.effective

    @property
    def engine(self) -> RouteEngine:
        return self.router.engine

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.events.mqtt:  # first, so that the broker sees the sessions start
            from controlplane.events.mqtt import start_mqtt

            self.mqtt = await start_mqtt(self)
        try:
            await self.speaker.start()
        except OSError as exc:
            raise OSError(exc.errno, f"BGP listener speaker.listen {self.config.speaker.listen}: "
                                     f"{exc.strerror}") from exc
        if self._control_enabled:
            host, port = split_host_port(self.config.api.listen)
            self.control = ControlServer(build_app(self), host, port)
            try:
                await self.control.start()
            except OSError as exc:
                raise OSError(exc.errno, f"control API api.listen {self.config.api.listen}: "
                                         f"{exc.strerror}") from exc
        self.router.publish(EventType.CONFIG_APPLIED, None,
                            {"summary": f"started with {self.source or 'configuration'}"})
        self.router.start()
        self._drain()

    async def stop(self, communication: str = "DRG emulator shutting down") -> None:
        self.router.stopping = True  # sessions close now: no route churn, no tunnel teardown noise
        await self.speaker.close(communication)
        self._drain()
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.mqtt is not None:
            await self.mqtt.stop()
            self.mqtt = None

    def session_names(self) -> list[str]:
        return self.router.session_names()

    # ---- router <-> speaker and bus ----------------------------------------------------------------

    def bgp_event(self, event: bgp.Event) -> None:
        """The speaker's callback: one event of the BGP core."""
        self.router.bgp_event(event)
        self._drain()

    def _detail(self) -> bool:
        return bool(self.bus.subscriber_count) or log.isEnabledFor(logging.INFO)

    def _drain(self) -> None:
        """Carry out the router's outputs in order. An output can make the speaker report events at
        once (a stopped session changes state); the router appends what they cause, and this loop,
        not a nested one, carries it out."""
        if self._draining:
            return
        self._draining = True
        try:
            while outputs := self.router.take():
                for out in outputs:
                    self._carry_out(out)
        finally:
            self._draining = False

    def _carry_out(self, out: Output) -> None:
        speaker = self.speaker
        if isinstance(out, Flush):
            speaker.flush(out.name)
        elif isinstance(out, DrgEvent):
            log.info("%s", out.line())
            self.bus.publish(out)
        elif isinstance(out, StartSession):
            speaker.start_peer(out.name)
        elif isinstance(out, StopSession):
            speaker.stop_peer(out.name, out.subcode, out.communication)
        elif isinstance(out, AddSession):
            speaker.add_neighbor(out.peer, out.address, out.port, out.md5_key, start=out.start)
        else:
            speaker.remove_neighbor(out.name, out.subcode, out.communication)

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any]) -> None:
        self.router.publish(kind, subject, data)
        self._drain()

    # ---- queries (control API, Drg) ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"drg": self.config.drg.name, "uptimeSeconds": int(time.time() - self.started_at),
                "source": str(self.source) if self.source else None, "events": self.bus.published}

    def routes_json(self, table: str | None = None, attachment: str | None = None) -> dict[str, Any]:
        try:
            if attachment:
                table = self.engine.table_for_attachment(attachment)
            if table:
                return {"routeTables": [self.engine.route_table(table)]}
        except KeyError as exc:
            raise NotFound(str(exc.args[0]) if exc.args else str(exc)) from exc
        return dict(self.engine.route_tables())

    def sessions_json(self) -> dict[str, Any]:
        sessions = []
        now = self.speaker.now()
        for att, session in self.effective.bgp_sessions():
            neighbor = self.speaker.neighbors.get(session.session)
            if neighbor is None:
                continue
            peer = neighbor.peer
            tunnel = None
            down_reason = None
            if att.type == AttachmentType.IPSEC_TUNNEL:
                up, down_reason = self.engine.tunnel_state(att.name)
                tunnel = "UP" if up else "DOWN"
            rib_in = peer.rib_in
            established = peer.established_at
            sessions.append({
                "attachment": att.name,
                "session": session.session,
                "addressFamilies": ["ipv4" if afi == AFI_IPV4 else "ipv6" for afi in session.families],
                "neighbor": session.customer_ip,
                "socket": f"{neighbor.address}:{neighbor.port}",
                "localAsn": self.config.drg.asn,
                "peerAsn": session.customer_asn,
                "state": peer.state.value,
                "uptimeSeconds": int(now - established) if established is not None else None,
                "prefixesReceived": rib_in.count(AFI_IPV4) + rib_in.count(AFI_IPV6),
                "prefixesAdvertised": peer.rib_out.count(AFI_IPV4) + peer.rib_out.count(AFI_IPV6)
                if peer.state == State.ESTABLISHED else 0,  # an Adj-RIB-Out is empty until Established
                "lastError": peer.last_error,
                "prefixesRejected": dict(peer.rejected),
                "tunnel": tunnel,
                "downReason": down_reason,
            })
        rpc = self.router.rpc  # R109: RPC sessions to the daemons of peer DRGs
        sessions += [rpc.session_json(name, n.peer, f"{n.address}:{n.port}", now)
                     for name, n in self.speaker.neighbors.items() if name in rpc]
        return {"sessions": sessions}

    def advertised_json(self, name: str) -> dict[str, Any]:
        """The engine's Adj-RIB-Out with the session's RFC 4271 state (routes only while Established)."""
        try:
            doc = dict(self.engine.advertised(name))
        except KeyError as exc:
            raise NotFound(str(exc.args[0]) if exc.args else str(exc)) from exc
        neighbor = self.speaker.neighbors.get(doc.get("session", doc["attachment"]))
        if neighbor is not None:
            doc["state"] = neighbor.peer.state.value
            if neighbor.peer.state != State.ESTABLISHED and doc["routes"]:  # nothing is sent before that
                doc["wouldAdvertise"], doc["routes"] = doc["routes"], []
        return doc

    def offered_json(self, name: str) -> dict[str, Any]:
        """What an attachment offers for import (R22, R78-R81), with the tables that import it."""
        try:
            return self.engine.offered(name)
        except KeyError as exc:
            raise NotFound(str(exc.args[0]) if exc.args else str(exc)) from exc

    def trace_json(
        self, from_attachment: str, src: str, dst: str, inner_src: str | None = None, inner_dst: str | None = None
    ) -> dict[str, Any]:
        try:
            return dict(self.engine.trace(from_attachment, src, dst, inner_src=inner_src, inner_dst=inner_dst))
        except KeyError as exc:
            raise NotFound(str(exc.args[0]) if exc.args else str(exc)) from exc

    async def apply_text(self, text: str, filename: str) -> tuple[bool, dict[str, Any]]:
        try:
            config, _warnings = parse_valid(text, filename)
        except ConfigError as exc:
            errors = [p.to_json() for p in exc.problems]
            summary = f"{filename}: {len(errors)} problem(s); nothing changed"
            self.publish(EventType.CONFIG_REJECTED, None, {"file": filename, "errors": errors, "summary": summary})
            return False, {"valid": False, "errors": errors}
        try:
            return True, await self.apply(config, filename)
        except ConfigError as exc:
            errors = [p.to_json() for p in exc.problems]
            return False, {"valid": False, "errors": errors}

    async def apply(self, config: DrgConfig, filename: str = "<api>") -> dict[str, Any]:
        """Switch to a validated configuration atomically; only sessions whose settings changed are
        touched (Cease 6/6 Other Configuration Change; 6/3 for a removed session)."""
        if config.speaker.listen != self.config.speaker.listen or config.api.listen != self.config.api.listen:
            raise ConfigError([_restart_problem(filename)])
        vcn_lines = vcn_changes(self.config.vcns, config.vcns)
        touched, changes = self.router.apply(config)
        summary = changes.summary()
        lines = touched + vcn_lines + [f"route table {t}: +{c['add']} -{c['remove']} ~{c['change']}"
                           for t, c in summary["routeTables"].items()]
        lines += [f"advertised to {a}: +{c['announce']} -{c['withdraw']}"
                  for a, c in summary["advertisements"].items()]
        self.publish(EventType.CONFIG_APPLIED, None, {"file": filename, "changes": lines,
                                                      "summary": f"{filename}: {len(lines)} change(s)"})
        return {"applied": True, "file": filename, "changes": lines, "summary": summary}

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()


async def startup_config(path: Path, command: str, log_level: str) -> DrgConfig | int:
    """Set up logging and load a file for ``drg run``/``drg lab``: the valid configuration, or the
    exit code after printing every problem (1) or why the file cannot be read (2) on stderr."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), format="%(asctime)s %(message)s")
    try:
        config, warnings = await asyncio.to_thread(load_valid, path)
    except ConfigError as exc:
        print(f"{command}: {path} is rejected, nothing was started:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p.object}.{p.field}: {p.message} [{p.rule}]\n    fix: {p.fix}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    return config


async def run_daemon(path: Path, log_level: str = "info") -> int:
    """``drg run``: until SIGINT/SIGTERM; SIGHUP re-reads the file like ``drg apply``."""
    config = await startup_config(path, "drg run", log_level)
    if isinstance(config, int):
        return config
    daemon = Daemon(config, path)
    try:
        await daemon.start()
    except OSError as exc:
        print(f"drg run: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        await daemon.stop()
        return 2
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    pending: set[asyncio.Task[None]] = set()

    def reload() -> None:
        async def go() -> None:
            try:
                text = await asyncio.to_thread(path.read_text)
            except OSError as exc:
                log.error("SIGHUP: cannot read %s: %s", path, exc)
                return
            await daemon.apply_text(text, str(path))

        task = loop.create_task(go())
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGINT, done.set)
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("DRG %s running: BGP on %s, API on %s", config.drg.name, config.speaker.listen, config.api.listen)
    await done.wait()
    await daemon.stop()
    return 0


def _restart_problem(filename: str) -> Problem:
    return Problem(file=filename, object="speaker/api", field="listen", rule="daemon",
                   message="speaker.listen and api.listen cannot change while the daemon runs",
                   fix="restart the daemon (drg run) to move its listeners")


__all__ = ["Daemon", "run_daemon"]
