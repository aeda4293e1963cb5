"""The running DRG: wiring of config, BGP speaker, route engine, events and control API.

This is the one module that knows every part. The data path is a loop of plain calls, no queues
and no per-route tasks:

    ExaBGP --TCP--> transport.Speaker --(Peer events)--> Daemon._on_bgp_event
        --> RouteEngine.announce/withdraw/... --> Changes
        --> Daemon._apply_changes: Adj-RIB-Out of each peer (UPDATEs), tunnel sessions up/down,
            DrgEvents on the bus (log, Drg.events(), drg events, MQTT)

Sessions: one BGP neighbor per VC attachment with a ``bgp`` block and per BGP IPSec tunnel. A
tunnel's neighbor exists from the start but is started only while the engine reports the tunnel
UP (its VC is Established and has a route to the CPE, R47); until then an incoming connection gets
Cease/Connection Rejected (6/5). When the tunnel goes down the session is closed with a Cease and
the engine withdraws its routes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.bgp import events as be
from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import SAFI_UNICAST
from controlplane.bgp.events import State
from controlplane.bgp.session import PeerConfig
from controlplane.changes import Changes
from controlplane.config import ConfigError, DrgConfig, Problem, parse_config
from controlplane.control import ControlServer, build_app
from controlplane.errors import NotFound
from controlplane.events import DrgEvent, EventBus, Subscription, advert_data, table_data
from controlplane.model import EffAttachment, EffBgp, EffectiveConfig, build_effective
from controlplane.policy import validate
from controlplane.prefix import AFI_IPV4, AFI_IPV6
from controlplane.routing import RouteEngine
from controlplane.transport import Speaker

if TYPE_CHECKING:
    from controlplane.publish import MqttEvents

log = logging.getLogger("controlplane.daemon")


def split_hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host.strip("[]"), int(port)


def parse_valid(text: str, filename: str) -> tuple[DrgConfig, list[str]]:
    """Parse and check a DRG file against every OCI rule: ConfigError lists all problems."""
    config = parse_config(text, filename)
    result = validate(config, filename)
    if result.errors:
        raise ConfigError(result.errors)
    return config, [w.message for w in result.warnings]


def load_valid(path: Path) -> tuple[DrgConfig, list[str]]:
    return parse_valid(path.read_text(), str(path))


def as_path_tuple(segments: tuple[tuple[int, tuple[int, ...]], ...]) -> tuple[int | tuple[int, ...], ...]:
    """AS_PATH segments -> the engine's flat form (AS_SET as a nested tuple)."""
    out: list[int | tuple[int, ...]] = []
    for seg_type, asns in segments:
        if seg_type == 1:  # AS_SET
            out.append(tuple(asns))
        else:
            out.extend(asns)
    return tuple(out)


class Daemon:
    """One emulated DRG: use ``await start()`` / ``await stop()`` or ``controlplane.Drg``."""

    def __init__(self, config: DrgConfig, source: Path | None = None, control: bool = True) -> None:
        self.config = config
        self.source = source
        self.bus = EventBus()
        self.effective = build_effective(config)
        self.engine = RouteEngine(self.effective)
        host, port = split_hostport(config.speaker.listen, 179)
        self.speaker = Speaker(host, port, self._on_bgp_event)
        self._control_enabled = control
        self.control: ControlServer | None = None
        self.started_at = time.time()
        self._tunnels_up: set[str] = set()
        self._stopping = False
        self._attr_cache: dict[tuple[tuple[int, ...], str], PathAttributes] = {}
        self.mqtt: MqttEvents | None = None  # events.mqtt: the publisher (and the embedded broker)

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.events.mqtt:  # first, so that the broker sees the sessions start
            from controlplane.publish import start_mqtt

            self.mqtt = await start_mqtt(self)
        try:
            await self.speaker.start()
        except OSError as exc:
            raise OSError(exc.errno, f"BGP listener speaker.listen {self.config.speaker.listen}: "
                                     f"{exc.strerror}") from exc
        for att, session in self._bgp_sessions(self.effective):
            self._add_neighbor(att, session, start=att.type == "VIRTUAL_CIRCUIT")
        if self._control_enabled:
            host, port = split_hostport(self.config.api.listen, 8790)
            self.control = ControlServer(build_app(self), host, port)
            try:
                await self.control.start()
            except OSError as exc:
                raise OSError(exc.errno, f"control API api.listen {self.config.api.listen}: "
                                         f"{exc.strerror}") from exc
        self.publish("config-applied", None, {"summary": f"started with {self.source or 'configuration'}"})
        # Routes offered by the configuration, and every tunnel's first state (a tunnel that starts DOWN
        # says why, e.g. its VC has export_distribution none, R40).
        initial = self.engine.refresh()
        self._apply_changes(initial)
        for transition in initial.tunnels:
            if not transition.up:
                self.publish("tunnel-state", transition.tunnel, {
                    "state": "DOWN", "reason": transition.reason,
                    "summary": "DOWN" + (f": {transition.reason}" if transition.reason else "")})

    async def stop(self, communication: str = "DRG emulator shutting down") -> None:
        self._stopping = True  # sessions close now: no route churn, no tunnel teardown noise
        await self.speaker.close(communication)
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.mqtt is not None:
            await self.mqtt.stop()
            self.mqtt = None

    # ---- configuration -> sessions --------------------------------------------------------------

    @staticmethod
    def _bgp_sessions(effective: EffectiveConfig) -> list[tuple[EffAttachment, EffBgp]]:
        """Every BGP session: one per VC peering family (R53) and one per BGP tunnel (R38)."""
        return [(a, session) for a in effective.attachments if a.speaks_bgp for session in a.sessions]

    def session_names(self) -> list[str]:
        return [session.session for _, session in self._bgp_sessions(self.effective)]

    @staticmethod
    def _peer_config_for(session: EffBgp, effective: EffectiveConfig) -> PeerConfig:
        """The core's view of one session: a VC session negotiates its own family only (R53); a
        tunnel's both, IPv6 routes with the IPv4-mapped next hop."""
        router_id = effective.router_id
        if ":" in router_id:
            router_id = "127.0.0.1"
        oracle = session.oracle_ip
        v6 = ":" in oracle
        return PeerConfig(
            name=session.session,
            local_as=effective.asn,
            peer_as=session.customer_asn,
            router_id=router_id,
            connect=session.connect,
            hold_time=session.hold_time,
            max_prefixes={afi: session.max_prefixes[afi - 1] for afi in session.families},
            families=tuple((afi, SAFI_UNICAST) for afi in session.families),
            next_hop_ipv4="0.0.0.0" if v6 else oracle,
            next_hop_ipv6=oracle if v6 else f"::ffff:{oracle}",
        )

    def _add_neighbor(self, att: EffAttachment, session: EffBgp, start: bool) -> None:
        self.speaker.add_neighbor(self._peer_config_for(session, self.effective), session.peer,
                                  session.peer_port, session.md5_key, start=start)

    # ---- BGP -> engine ----------------------------------------------------------------------------

    def _on_bgp_event(self, event: be.Event) -> None:
        engine = self.engine
        if self._stopping and not isinstance(event, be.StateChanged | be.NotificationSent):
            return
        if isinstance(event, be.RoutesReceived):
            if event.withdrawn:
                self._apply_changes(engine.withdraw(event.peer, event.afi, event.withdrawn))
            if event.announced and event.attributes is not None:
                path = as_path_tuple(event.attributes.as_path)
                self._apply_changes(engine.announce(event.peer, event.afi, event.announced, path))
            return
        if isinstance(event, be.StateChanged):
            self.publish(
                "session-state",
                event.peer,
                {"old": event.old.value, "new": event.new.value, "reason": event.reason,
                 "summary": f"{event.old.value} -> {event.new.value}" + (f" ({event.reason})" if event.reason else "")},
            )
            if self._stopping:
                return
            if event.new == State.ESTABLISHED:
                self._apply_changes(engine.set_session_established(event.peer, True))
            elif event.old == State.ESTABLISHED:
                changes = engine.session_down(event.peer)
                self._apply_changes(changes)
                self._apply_changes(engine.set_session_established(event.peer, False))
            return
        if isinstance(event, be.NotificationSent | be.NotificationReceived):
            kind = "notification-sent" if isinstance(event, be.NotificationSent) else "notification-received"
            self.publish(kind, event.peer, {"code": event.code, "subcode": event.subcode,
                                             "data": event.data.hex(), "summary": event.text})
        elif isinstance(event, be.PrefixLimitExceeded):
            family = "ipv4" if event.afi == AFI_IPV4 else "ipv6"
            self.publish("prefix-limit", event.peer, {"afi": family, "limit": event.limit,
                                                       "summary": f"more than {event.limit} {family} prefixes "
                                                                  "(R58/R64): Cease 6/1, session down for 30 s"})
        elif isinstance(event, be.PeerWarning):
            self.publish("warning", event.peer, {"summary": event.text})

    # ---- engine -> BGP and events --------------------------------------------------------------

    def _apply_changes(self, changes: Changes) -> None:
        """Engine results -> UPDATEs, tunnel sessions and events."""
        for advert in changes.advertisements:
            neighbor = self.speaker.neighbors.get(advert.attachment)
            if neighbor is not None:
                attrs = self._attributes(advert.as_path, advert.next_hop)
                for afi, keys in advert.withdraw.items():
                    neighbor.peer.withdraw(afi, keys)
                for afi, keys in advert.announce.items():
                    neighbor.peer.advertise(afi, keys, attrs)
                self.speaker.flush(advert.attachment)
            if self.bus.subscriber_count or log.isEnabledFor(logging.INFO):
                self.publish("advertisement-change", advert.attachment, advert_data(advert.announced(),
                                                                                        advert.withdrawn()))
        if self.bus.subscriber_count or log.isEnabledFor(logging.INFO):
            for delta in changes.tables:
                self.publish("route-table-change", delta.table, table_data(delta))
        for transition in changes.tunnels:
            self._tunnel(transition.tunnel, transition.up, transition.reason)
        for limit in changes.prefix_limits:
            log.debug("engine: prefix limit on %s (%s)", limit.attachment, limit.prefix)
        for warning in changes.warnings:
            self.publish("warning", None, {"summary": warning})

    def _attributes(self, as_path: tuple[int, ...], next_hop: str) -> PathAttributes:
        """Attributes of what the DRG sends (R36); an IPv6 next hop travels in MP_REACH only."""
        key = (as_path, next_hop)
        attrs = self._attr_cache.get(key)
        if attrs is None:
            address = next_hop.split("/")[0]
            attrs = self._attr_cache[key] = PathAttributes.make(
                as_path=list(as_path), next_hop=None if ":" in address else address)
        return attrs

    def _tunnel(self, name: str, up: bool, reason: str | None) -> None:
        was = name in self._tunnels_up
        if up == was:
            return
        state = "UP" if up else "DOWN"
        self.publish("tunnel-state", name, {"state": state, "reason": reason,
                                             "summary": state + (f": {reason}" if reason else "")})
        neighbor = self.speaker.neighbors.get(name)
        if up:
            self._tunnels_up.add(name)
            if neighbor is not None:
                self.speaker.start_peer(name)
        else:
            self._tunnels_up.discard(name)
            if neighbor is not None:
                self.speaker.stop_peer(name, 2, f"IPSec tunnel down: {reason or 'no reason given'}")

    def publish(self, kind: str, subject: str | None, data: dict[str, Any]) -> None:
        event = DrgEvent(kind, subject, data)
        log.info("%s", event.line())
        self.bus.publish(event)

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
        for att, session in self._bgp_sessions(self.effective):
            neighbor = self.speaker.neighbors.get(session.session)
            if neighbor is None:
                continue
            peer = neighbor.peer
            tunnel = None
            down_reason = None
            if att.type == "IPSEC_TUNNEL":
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
            self.publish("config-rejected", None, {"file": filename, "errors": errors, "summary": summary})
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
        old_effective = self.effective
        old = {s.session: (a, s) for a, s in self._bgp_sessions(old_effective)}
        self.config = config
        self.effective = build_effective(config)
        new = {s.session: (a, s) for a, s in self._bgp_sessions(self.effective)}
        changes = self.engine.apply_config(self.effective)
        touched: list[str] = []
        for name in old:
            if name not in new:
                self.speaker.remove_neighbor(name, 3, "session removed from the configuration")
                self._tunnels_up.discard(name)
                touched.append(f"session {name} removed")
        for name, (att, session) in new.items():
            before = old.get(name)
            if before is not None and \
                    self._session_key(before[1], old_effective) == self._session_key(session, self.effective):
                continue
            if before is not None:
                self.speaker.remove_neighbor(name, 6, "session settings changed")
                self._tunnels_up.discard(name)
            up = att.type == "VIRTUAL_CIRCUIT" or self.engine.tunnel_state(name)[0]
            self._add_neighbor(att, session, start=up)
            if att.type == "IPSEC_TUNNEL" and up:
                self._tunnels_up.add(name)
            self._load_rib_out(name)
            touched.append(f"session {name} {'re-created' if before is not None else 'added'}")
        self._apply_changes(changes)
        summary = changes.summary()
        lines = touched + [f"route table {t}: +{c['add']} -{c['remove']} ~{c['change']}"
                           for t, c in summary["routeTables"].items()]
        lines += [f"advertised to {a}: +{c['announce']} -{c['withdraw']}"
                  for a, c in summary["advertisements"].items()]
        self.publish("config-applied", None, {"file": filename, "changes": lines,
                                               "summary": f"{filename}: {len(lines)} change(s)"})
        return {"applied": True, "file": filename, "changes": lines, "summary": summary}

    def _session_key(self, session: EffBgp, effective: EffectiveConfig) -> tuple[Any, ...]:
        return (self._peer_config_for(session, effective), session.peer, session.peer_port, session.md5_key)

    def _load_rib_out(self, name: str) -> None:
        """A new neighbor starts with the engine's whole advertisement for it (R33, R36)."""
        full = self.engine.adj_rib_out(name)
        peer = self.speaker.neighbors[name].peer
        attrs = self._attributes(full.as_path, full.next_hop)
        for afi, keys in full.announce.items():
            peer.advertise(afi, keys, attrs)

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


__all__ = ["Daemon", "load_valid", "parse_valid", "run_daemon"]
