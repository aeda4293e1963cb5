"""The running DRGs: the asyncio edge around the sans-IO :class:`~controlplane.router.Router` (one per DRG).

The daemon wires the parts and carries out what the routers ask for; it holds no routing logic:

    ExaBGP --TCP--> transport.Speaker --(Peer events)--> Daemon.bgp_event --> Router.bgp_event
        --> RouteEngine --> Changes --> Router outputs, drained in order by Daemon._drain:
            AddSession/RemoveSession/StartSession/StopSession/Flush -> transport.Speaker,
            DrgEvents -> the log and the bus (Drg.events(), drg events, MQTT)

A file may describe several DRGs (``drgs:``, oci-drg-transit.md section 7): the daemon then runs one
Router per DRG behind its one speaker (a BGP event goes to the router of its session; session names
are unique in the file) and keeps their engines' RPC routes at a fixed point (R109): before each
round of outputs, the table changes the routers report (``Router.take_changes``) go through the
:class:`~controlplane.engine.rpc.RpcFabric`, whose resulting Changes reach the peer DRGs' routers
(``Router.apply_changes``: tables, UPDATEs to their BGP peers, events naming the DRG).

It also loads and applies configurations (``drg apply``, SIGHUP, the OCI API), answers the JSON
queries of the control API and ``Drg`` (``controlplane/queries.py``), and runs ``drg run``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.auth import load_api_auth
from controlplane.bgp import outputs as bgp
from controlplane.bgp.constants import CeaseSubcode
from controlplane.config.drgs import (
    Design,
    configs_of,
    is_multi,
    load_valid_design,
    parse_valid_design,
)
from controlplane.config.effective import EffectiveConfig
from controlplane.config.fields import split_host_port
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import DrgConfig
from controlplane.config.vcn import vcn_changes
from controlplane.control import ControlServer, build_app
from controlplane.engine.changes import Changes
from controlplane.engine.drgs import Drgs
from controlplane.engine.engine import RouteEngine
from controlplane.events.bus import EventBus, Subscription
from controlplane.events.event import SAMPLE, DrgEvent, EventType
from controlplane.events.log import EventLog
from controlplane.queries import DrgScope, Queries
from controlplane.router.router import AddSession, Flush, Output, RemoveSession, Router, StartSession, StopSession
from controlplane.transport import Speaker

if TYPE_CHECKING:
    from controlplane.events.mqtt import MqttEvents

log = logging.getLogger("controlplane.daemon")
LOG_FORMAT = "%(asctime)s %(message)s"  # what `drg run` writes (the benchmarks log the same way)


class Daemon(Queries):
    """The emulated DRGs of one file: use ``await start()`` / ``await stop()`` or ``controlplane.Drg``.

    ``config`` is a :data:`~controlplane.config.drgs.Design`: one DrgConfig, or the list of a
    ``drgs:`` file. ``config``/``effective``/``engine``/``router`` are the first DRG's (the only one
    of a single-DRG file); ``routers`` has them all, by DRG name, in file order.
    """

    def __init__(self, config: Design, source: Path | None = None, control: bool = True) -> None:
        self.source = source
        self.bus = EventBus()
        self.routers: dict[str, Router] = {}
        self._multi = is_multi(config)
        for c in configs_of(config):
            self.routers[c.drg.name] = self._new_router(c)
        self._link()
        host, port = split_host_port(self.config.speaker.listen)
        self.speaker = Speaker(host, port, self.bgp_event)
        self._control_enabled = control
        self.control: ControlServer | None = None
        self.started_at = time.time()
        self._draining = False
        self._event_log = EventLog(log)
        self._own: list[DrgEvent] = []  # the daemon's events (config-applied), before the routers' outputs
        self._settled: dict[str, list[Changes]] = {}  # what the last fabric settle changed, per DRG
        self.scopes: dict[str, DrgScope] = {}  # per-DRG views of a multi-DRG daemon (MQTT)
        self.mqtt: MqttEvents | None = None  # events.mqtt: the publisher(s) (and the embedded broker)

    def _new_router(self, config: DrgConfig) -> Router:
        return Router(config, clock=time.time, detail=self._detail, drg=config.drg.name if self._multi else None)

    def _link(self) -> None:
        """The engines' queries and RPC fabric, and which DRG owns each session (after every change)."""
        self.drgs = Drgs({name: r.engine for name, r in self.routers.items()}, self._multi)
        for router in self.routers.values():
            router.record_changes = bool(self.drgs.fabric.links)
        self._owner = {s: name for name, r in self.routers.items()
                       for s in [*r.session_names(), *r.rpc.specs]}  # RPC sessions to other daemons too (R109)

    @property
    def router(self) -> Router:
        return next(iter(self.routers.values()))

    @property
    def config(self) -> DrgConfig:
        return self.router.config

    @property
    def effective(self) -> EffectiveConfig:
        return self.router.effective

    @property
    def engine(self) -> RouteEngine:
        return self.router.engine

    @property
    def design(self) -> Design:
        configs = [r.config for r in self.routers.values()]
        return configs if self._multi else configs[0]

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the listeners, the routers and MQTT; the API's credentials are read first
        (``controlplane/auth.py``: ConfigError, before any socket is opened)."""
        auth = load_api_auth(self.config.api, self.source) if self._control_enabled else None
        if auth is not None and auth.generated:
            log.warning("control API token generated into %s (mode 0600): give it to drg with --token-file, "
                        "DRG_TOKEN_FILE or DRG_TOKEN", auth.token_file)
        if self.config.events.mqtt:  # first, so that the broker sees the sessions start
            from controlplane.events.mqtt import start_mqtt

            if self._multi:
                self.scopes = {name: DrgScope(self, name) for name in self.routers}
            self.mqtt = await start_mqtt(self, list(self.scopes.values()) or None)
        try:
            await self.speaker.start()
        except OSError as exc:
            raise OSError(exc.errno, f"BGP listener speaker.listen {self.config.speaker.listen}: "
                                     f"{exc.strerror}") from exc
        if auth is not None:
            host, port = split_host_port(self.config.api.listen)
            # OCI API: the daemon itself is its target, every DRG served (oci/scope.py OciTarget)
            self.control = ControlServer(build_app(self, auth=auth), host, port, auth.ssl)
            try:
                await self.control.start()
            except OSError as exc:
                raise OSError(exc.errno, f"control API api.listen {self.config.api.listen}: "
                                         f"{exc.strerror}") from exc
        self.publish(EventType.CONFIG_APPLIED, None, {"summary": f"started with {self.source or 'configuration'}"},
                     drain=False)
        for router in self.routers.values():
            router.start()
        self._settle(full=True)
        self._drain()

    async def stop(self, communication: str = "DRG emulator shutting down") -> None:
        for router in self.routers.values():
            router.stopping = True  # sessions close now: no route churn, no tunnel teardown noise
        await self.speaker.close(communication)
        self._drain()
        self._event_log.flush()
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.mqtt is not None:
            await self.mqtt.stop()
            self.mqtt = None

    def session_names(self) -> list[str]:
        return [s for r in self.routers.values() for s in r.session_names()]

    # ---- routers <-> speaker and bus ----------------------------------------------------------------

    def bgp_event(self, event: bgp.Event) -> None:
        """The speaker's callback: one event of the BGP core, for the router of its session."""
        owner = self._owner.get(event.peer)
        if owner is not None:
            self.routers[owner].bgp_event(event)
        self._drain()

    def _detail(self) -> int | None:
        """Who reads route events: readers or a DEBUG log get a sample of rules, an INFO log only counts."""
        if (self.bus.subscriber_count or any(s.bus.subscriber_count for s in self.scopes.values())
                or log.isEnabledFor(logging.DEBUG)):
            return SAMPLE
        return 0 if log.isEnabledFor(logging.INFO) else None

    def _settle(self, full: bool = False) -> None:
        """RPC routes between the DRGs to a fixed point (R109): every link (start, a new configuration),
        else the links whose table a router's engine changed; the results go to the peers' routers."""
        fabric = self.drgs.fabric
        self._settled = {}
        if not fabric.links:
            return
        changed = [(name, c) for name, r in self.routers.items() for c in r.take_changes()]
        results: dict[str, list[Changes]] = {}
        for drg, changes in ([(None, None)] if full else changed):
            for peer, found in fabric.settle(None if drg is None or changes is None else {drg: changes}).items():
                results.setdefault(peer, []).extend(found)
        for peer, found in results.items():
            for changes in found:
                self.routers[peer].apply_changes(changes)
        self._settled = results

    def _drain(self) -> None:
        """Carry out the routers' outputs in order. An output can make the speaker report events at
        once (a stopped session changes state); the router appends what they cause, and this loop,
        not a nested one, carries it out."""
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                self._settle()
                outputs: list[tuple[str | None, Output]] = [(None, e) for e in self._own]
                self._own = []
                outputs += [(name, out) for name, r in self.routers.items() for out in r.take()]
                if not outputs:
                    break
                for drg, out in outputs:
                    self._carry_out(drg, out)
        finally:
            self._draining = False

    def _carry_out(self, drg: str | None, out: Output) -> None:
        speaker = self.speaker
        if isinstance(out, Flush):
            speaker.flush(out.name)
        elif isinstance(out, DrgEvent):
            self._event_log.write(out)  # route changes: one line per table and burst at INFO
            self.bus.publish(out)
            for name, scope in self.scopes.items():
                if out.drg in (None, name):
                    scope.bus.publish(out)
        elif isinstance(out, StartSession):
            speaker.start_peer(out.name)
        elif isinstance(out, StopSession):
            speaker.stop_peer(out.name, out.subcode, out.communication)
        elif isinstance(out, AddSession):
            if out.peer.config.name in speaker.neighbors:  # an attachment that moved to another DRG
                speaker.remove_neighbor(out.peer.config.name, CeaseSubcode.OTHER_CONFIGURATION_CHANGE,
                                        "session moved to another DRG")
            speaker.add_neighbor(out.peer, out.address, out.port, out.md5_key, start=out.start)
        elif isinstance(out, RemoveSession) and self._owner.get(out.name, drg) == drg and out.name in speaker.neighbors:
            speaker.remove_neighbor(out.name, out.subcode, out.communication)

    def publish(self, kind: EventType, subject: str | None, data: dict[str, Any], drg: str | None = None,
                drain: bool = True) -> None:
        """An event of the daemon (``drg`` None) or of one of its DRGs."""
        if drg is not None and drg in self.routers:
            self.routers[drg].publish(kind, subject, data)
        elif not self._multi:
            self.router.publish(kind, subject, data)
        else:
            self._own.append(DrgEvent(kind, subject, data, time.time()))
        if drain:
            self._drain()

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()

    # ---- configuration changes --------------------------------------------------------------------

    async def apply_text(self, text: str, filename: str) -> tuple[bool, dict[str, Any]]:
        try:
            design, _warnings = parse_valid_design(text, filename)
        except ConfigError as exc:
            errors = [p.to_json() for p in exc.problems]
            summary = f"{filename}: {len(errors)} problem(s); nothing changed"
            self.publish(EventType.CONFIG_REJECTED, None, {"file": filename, "errors": errors, "summary": summary})
            return False, {"valid": False, "errors": errors}
        try:
            return True, await self.apply(design, filename)
        except ConfigError as exc:
            errors = [p.to_json() for p in exc.problems]
            return False, {"valid": False, "errors": errors}

    async def apply(self, config: Design, filename: str = "<api>") -> dict[str, Any]:
        """Switch to a validated configuration atomically; only sessions whose settings changed are
        touched (Cease 6/6 Other Configuration Change; 6/3 for a removed session). In a multi-DRG
        daemon, DRGs may come and go; a removed DRG's sessions close with Cease 6/3."""
        configs = configs_of(config)
        first = configs[0]
        if first.speaker.listen != self.config.speaker.listen or first.api != self.config.api:
            raise ConfigError([_restart_problem(filename)])
        if is_multi(config) != self._multi:
            raise ConfigError([_form_problem(filename, self._multi)])
        if not self._multi:
            report = self._apply_one(self.router, configs[0])
            self._link()
            return self._summary(filename, [report])
        new = {c.drg.name: c for c in configs}
        reports = []
        for name in [n for n in self.routers if n not in new]:
            router = self.routers[name]
            empty = router.config.model_copy(update={"vcns": [], "attachments": [], "route_tables": [],
                                                     "distributions": [], "onprem": []})
            touched, _ = router.apply(empty)
            for out in router.take():
                self._carry_out(name, out)
            del self.routers[name]
            reports.append((name, [f"DRG {name} removed", *touched], Changes([], [], [], [], [])))
        routers = {}
        for name, cfg in new.items():  # file order
            known = self.routers.get(name)
            if known is None:
                routers[name] = self._new_router(cfg)
                routers[name].start()
                reports.append((name, [f"DRG {name} added"], Changes([], [], [], [], [])))
            else:
                routers[name] = known
                reports.append(self._apply_one(known, cfg))
        self.routers = routers
        self._link()
        self._settle(full=True)
        summary = self._summary(filename, reports, self._settled)
        await self._follow_drgs()
        return summary

    async def _follow_drgs(self) -> None:
        """MQTT: a publisher for each DRG a new configuration added, none for a removed one."""
        if self.mqtt is None or not self.scopes:
            return
        for name in [n for n in self.scopes if n not in self.routers]:
            del self.scopes[name]
            await self.mqtt.remove(name)
        for name in [n for n in self.routers if n not in self.scopes]:
            self.scopes[name] = DrgScope(self, name)
            await self.mqtt.add(self.scopes[name])

    def _apply_one(self, router: Router, config: DrgConfig) -> tuple[str, list[str], Changes]:
        vcn_lines = vcn_changes(router.config.vcns, config.vcns)
        touched, changes = router.apply(config)
        return router.config.drg.name, touched + vcn_lines, changes

    def _summary(self, filename: str, reports: list[tuple[str, list[str], Changes]],
                 settled: dict[str, list[Changes]] | None = None) -> dict[str, Any]:
        """The ``drg apply`` answer and its config-applied event: one summary per DRG in a multi-DRG file,
        RPC routes that moved between DRGs included."""
        lines: list[str] = []
        summaries = []
        for name, touched, changes in reports:
            summary = _merge([changes, *(settled or {}).get(name, [])])
            own = touched + [f"route table {t}: +{c['add']} -{c['remove']} ~{c['change']}"
                             for t, c in summary["routeTables"].items()]
            own += [f"advertised to {a}: +{c['announce']} -{c['withdraw']}"
                    for a, c in summary["advertisements"].items()]
            lines += [f"{name}: {line}" for line in own] if self._multi else own
            summaries.append({"drg": name, **summary})
        self.publish(EventType.CONFIG_APPLIED, None, {"file": filename, "changes": lines,
                                                      "summary": f"{filename}: {len(lines)} change(s)"})
        if not self._multi:
            summaries[0].pop("drg")
            return {"applied": True, "file": filename, "changes": lines, "summary": summaries[0]}
        return {"applied": True, "file": filename, "changes": lines, "summary": {"drgs": summaries}}


def _merge(all_changes: list[Changes]) -> dict[str, Any]:
    """One ``Changes.summary()`` for several Changes of one DRG (counts added up)."""
    out: dict[str, Any] = {"routeTables": {}, "advertisements": {}, "tunnels": [], "prefixLimits": [],
                           "warnings": []}
    for changes in all_changes:
        summary = changes.summary()
        for section in ("routeTables", "advertisements"):
            for name, counts in summary[section].items():
                into = out[section].setdefault(name, dict.fromkeys(counts, 0))
                for key, n in counts.items():
                    into[key] += n
        for section in ("tunnels", "prefixLimits", "warnings"):
            out[section] += summary[section]
    return out


async def startup_config(path: Path, command: str, log_level: str) -> Design | int:
    """Set up logging and load a file for ``drg run``/``drg lab``: the valid configuration (one DRG or
    several), or the exit code after printing every problem (1) or why the file cannot be read (2)."""
    logging.basicConfig(level=getattr(logging, log_level.upper()), format=LOG_FORMAT)
    try:
        design, warnings = await asyncio.to_thread(load_valid_design, path)
    except ConfigError as exc:
        if exc.problems and exc.problems[0].rule == "io":
            why = exc.problems[0].message.removeprefix("cannot read the file: ")
            print(f"{command}: cannot read {path}: {why}", file=sys.stderr)
            return 2
        print_problems(command, path, exc.problems)
        return 1
    except OSError as exc:
        print(f"{command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    return design


def print_problems(command: str, path: Path, problems: list[Problem]) -> None:
    print(f"{command}: {path} is rejected, nothing was started:", file=sys.stderr)
    for p in problems:
        drg = f"{p.drg}: " if p.drg else ""
        print(f"  {drg}{p.object}.{p.field}: {p.message} [{p.rule}]\n    fix: {p.fix}", file=sys.stderr)


async def run_daemon(path: Path, log_level: str = "info") -> int:
    """``drg run``: until SIGINT/SIGTERM; SIGHUP re-reads the file like ``drg apply``."""
    design = await startup_config(path, "drg run", log_level)
    if isinstance(design, int):
        return design
    daemon = Daemon(design, path)
    try:
        await daemon.start()
    except ConfigError as exc:  # the API's credentials (token, keys, TLS files)
        print_problems("drg run", path, exc.problems)
        await daemon.stop()
        return 1
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
    config = daemon.config
    log.info("DRG %s running: BGP on %s, API on %s", ", ".join(daemon.routers), config.speaker.listen,
             config.api.listen)
    await done.wait()
    await daemon.stop()
    return 0


def _restart_problem(filename: str) -> Problem:
    return Problem(file=filename, object="speaker/api", field="listen", rule="daemon",
                   message="speaker.listen and the api block (listen, token, TLS, OCI keys) cannot change while "
                           "the daemon runs",
                   fix="restart the daemon (drg run) to move its listeners or change who may use its API")


def _form_problem(filename: str, multi: bool) -> Problem:
    now, other = ("a multi-DRG file (drgs:)", "a single-DRG file") if multi else ("a single-DRG file",
                                                                                  "a multi-DRG file (drgs:)")
    return Problem(file=filename, object="<file>", field=None, rule="daemon",
                   message=f"the daemon runs {now}; it cannot switch to {other} while it runs",
                   fix="keep the file's form, or restart the daemon (drg run) with the new file")


__all__ = ["Daemon", "run_daemon"]
