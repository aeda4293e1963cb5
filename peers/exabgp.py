"""ExaBGP processes playing on-prem routers, driven from asyncio.

How it works (the recipes of shared/docs/exabgp-lab.md, followed to the letter):

* `ExaBGPPeer.start(workdir)` writes `<name>.conf` (one neighbor, families always set, an API
  process, `neighbor-changes` and `receive { parsed; update; notification; }`), makes the command
  FIFO `<name>.cmd` with mkfifo *before* ExaBGP starts, and runs `python -m exabgp server` in its
  own session (process group) with `exabgp_daemon_user=root`, `exabgp_api_cli=false`,
  `exabgp_log_short=false` and acks on. ExaBGP's log (stderr) goes to `<name>.log`.
* The API helper is `peers/bridge.py` (recipe 4), given absolute paths (helpers run in `/`). It
  copies what ExaBGP prints (JSON events, `done`/`error` acks) to `<name>-events.jsonl`, passes the
  lines written into the FIFO on to ExaBGP, and writes its pid to `<name>-bridge.pid`: ExaBGP puts
  helpers in their own process group, so `stop()` kills the bridge by that PID as well.
* `start()` returns once the bridge is up (the configuration was accepted and the helper runs)
  and, for a listening peer, once its `local_address:listen_port` is in LISTEN state
  (read from /proc/net/tcp, so nothing connects to it and confuses ExaBGP).
* The events file is read incrementally on every query; `received()` replays announces and
  withdraws in order into an Adj-RIB-In that is emptied when the session goes down, like a real
  one (`events()` keeps the whole history).
* `announce`/`withdraw`/`send` write one line into the FIFO and wait, bounded, for ExaBGP's
  `done` (an `error` raises `ExaBGPCommandError`).
* `stop()`: SIGTERM to ExaBGP's process group, SIGKILL after a bound (gotcha 4: a stalled
  ExaBGP ignores SIGTERM), then the bridge by PID the same way. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "BRIDGE",
    "KINDS",
    "ExaBGPCommandError",
    "ExaBGPPeer",
    "PeerSpec",
    "Route",
    "is_listening",
    "pid_running",
]

BRIDGE = Path(__file__).with_name("bridge.py")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COMMUNITY_RE = re.compile(r"^\d{1,5}:\d{1,5}$")
_LARGE_COMMUNITY_RE = re.compile(r"^\d{1,10}:\d{1,10}:\d{1,10}$")
_EXT_COMMUNITY_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9.:-]+$")
_AGGREGATOR_RE = re.compile(r"^\d{1,10}:\d{1,3}(\.\d{1,3}){3}$")
_ORIGINS = ("igp", "egp", "incomplete")
KINDS = ("exabgp", "frr", "bird")
_POLL = 0.05


class ExaBGPCommandError(RuntimeError):
    """ExaBGP answered `error` to an API command."""


@dataclass
class Route:
    """One route as an on-prem router announces it (ExaBGP syntax for the community strings).

    `next_hop` is "self" or an address of the prefix's family: an IPv6 prefix over an IPv4
    session takes an IPv4-mapped next hop such as "::ffff:127.0.0.2" ("self" is a config error
    there). `as_path` None lets ExaBGP send [local_as]; an explicit one is sent verbatim.
    `local_pref` is only sent over iBGP (ExaBGP drops it on eBGP, rightly).
    """

    prefix: str
    next_hop: str = "self"
    as_path: list[int] | None = None
    med: int | None = None
    local_pref: int | None = None
    communities: list[str] = field(default_factory=list)
    extended_communities: list[str] = field(default_factory=list)
    large_communities: list[str] = field(default_factory=list)
    origin: str | None = None
    atomic_aggregate: bool = False
    aggregator: str | None = None  # "ASN:router-id", e.g. "65001:192.0.2.1"

    @property
    def ipv6(self) -> bool:
        return ipaddress.ip_network(self.prefix, strict=False).version == 6

    def validate(self) -> None:
        """Raise ValueError for anything ExaBGP would reject or that could break a command line."""
        net = ipaddress.ip_network(self.prefix, strict=False)
        if self.next_hop == "self":
            if net.version == 6:
                raise ValueError(
                    f"{self.prefix}: 'next-hop self' on an IPv6 route is an ExaBGP config error; "
                    "give an address such as ::ffff:127.0.0.2"
                )
        else:
            nh = ipaddress.ip_address(self.next_hop)
            if nh.version != net.version:
                raise ValueError(f"{self.prefix}: next hop {self.next_hop} is not of the prefix's family")
        for asn in self.as_path or []:
            _check_uint(asn, 32, "AS number")
        if self.med is not None:
            _check_uint(self.med, 32, "med")
        if self.local_pref is not None:
            _check_uint(self.local_pref, 32, "local_pref")
        _check_all(self.communities, _COMMUNITY_RE, "community")
        _check_all(self.extended_communities, _EXT_COMMUNITY_RE, "extended community")
        _check_all(self.large_communities, _LARGE_COMMUNITY_RE, "large community")
        if self.origin is not None and self.origin not in _ORIGINS:
            raise ValueError(f"origin must be one of {_ORIGINS}, not {self.origin!r}")
        if self.aggregator is not None and not _AGGREGATOR_RE.match(self.aggregator):
            raise ValueError(f"aggregator must look like 65001:192.0.2.1, not {self.aggregator!r}")

    def render(self) -> str:
        """The route in ExaBGP syntax, e.g. `10.0.0.0/24 next-hop self as-path [ 65001 ] med 5`."""
        self.validate()
        parts = [self.prefix, "next-hop", self.next_hop]
        if self.origin is not None:
            parts += ["origin", self.origin]
        if self.as_path is not None:
            parts += ["as-path", _bracket(str(a) for a in self.as_path)]
        if self.med is not None:
            parts += ["med", str(self.med)]
        if self.local_pref is not None:
            parts += ["local-preference", str(self.local_pref)]
        if self.communities:
            parts += ["community", _bracket(self.communities)]
        if self.extended_communities:
            parts += ["extended-community", _bracket(self.extended_communities)]
        if self.large_communities:
            parts += ["large-community", _bracket(self.large_communities)]
        if self.atomic_aggregate:
            parts.append("atomic-aggregate")
        if self.aggregator is not None:
            parts += ["aggregator", f"( {self.aggregator} )"]
        return " ".join(parts)


@dataclass
class PeerSpec:
    """One ExaBGP process with one neighbor: the on-prem router of one BGP session.

    `connect_port` set: ExaBGP connects to peer_address:connect_port from local_address.
    `listen_port` set: ExaBGP listens on local_address:listen_port and accepts only
    peer_address. Only `listen_port`: passive. Both: it connects and listens.
    """

    name: str
    local_address: str
    local_as: int
    peer_as: int
    peer_address: str = "127.0.0.1"
    connect_port: int | None = None
    listen_port: int | None = None
    md5: str | None = None
    hold_time: int = 30
    router_id: str | None = None
    ipv4: bool = True
    ipv6: bool = True
    announce: list[Route] = field(default_factory=list)
    route_refresh: bool = True
    graceful_restart: int | None = None
    kind: str = "exabgp"  # the program a Lab runs for it: exabgp, frr (peers/frr.py) or bird (peers/bird.py)

    def validate(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"peer name {self.name!r}: use letters, digits, '.', '_' and '-'")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        for label, addr in (("local_address", self.local_address), ("peer_address", self.peer_address)):
            ip = ipaddress.ip_address(addr)
            if not ip.is_loopback:
                raise ValueError(f"{self.name}: {label} {addr} is not a loopback address")
        if self.router_id is not None and ipaddress.ip_address(self.router_id).version != 4:
            raise ValueError(f"{self.name}: router_id must be an IPv4 address")
        if self.connect_port is None and self.listen_port is None:
            raise ValueError(f"{self.name}: set connect_port, listen_port or both")
        for port in (self.connect_port, self.listen_port):
            if port is not None and not 0 < port < 65536:
                raise ValueError(f"{self.name}: bad port {port}")
        _check_uint(self.local_as, 32, "local_as")
        _check_uint(self.peer_as, 32, "peer_as")
        if self.hold_time != 0 and not 3 <= self.hold_time <= 65535:
            raise ValueError(f"{self.name}: hold_time must be 0 or 3..65535")
        if self.md5 is not None and (not self.md5 or any(c in self.md5 for c in '"\\\n;')):
            raise ValueError(f"{self.name}: md5 key must be non-empty without quotes, backslashes or ';'")
        if not (self.ipv4 or self.ipv6):
            raise ValueError(f"{self.name}: enable at least one family")
        if self.graceful_restart is not None and not 0 <= self.graceful_restart <= 4095:
            raise ValueError(f"{self.name}: graceful_restart must be 0..4095 seconds")
        for route in self.announce:
            route.validate()
            if (route.ipv6 and not self.ipv6) or (not route.ipv6 and not self.ipv4):
                raise ValueError(f"{self.name}: {route.prefix} is of a family the session does not carry")

    def render_config(self, bridge_argv: list[str]) -> str:
        """The ExaBGP configuration file for this peer; `bridge_argv` is the helper's command."""
        self.validate()
        run = " ".join(_quote(a) for a in bridge_argv)
        lines = [
            "process ctl {",
            f"    run {run};",
            "    encoder json;",
            "}",
            f"neighbor {self.peer_address} {{",
            f"    router-id {self.router_id or self.local_address};",
            f"    local-address {self.local_address};",
            f"    local-as {self.local_as};",
            f"    peer-as {self.peer_as};",
            f"    hold-time {self.hold_time};",
        ]
        if self.connect_port is None:
            lines.append("    passive;")
        else:
            lines.append(f"    connect {self.connect_port};")
        if self.listen_port is not None:
            lines.append(f"    listen {self.listen_port};")
        if self.md5 is not None:
            lines.append(f'    md5-password "{self.md5}";')
        families = [f for f, on in (("ipv4 unicast;", self.ipv4), ("ipv6 unicast;", self.ipv6)) if on]
        lines.append(f"    family {{ {' '.join(families)} }}")
        caps = [f"route-refresh {'enable' if self.route_refresh else 'disable'};"]
        if self.graceful_restart is not None:
            caps.append(f"graceful-restart {self.graceful_restart};")
        lines.append(f"    capability {{ {' '.join(caps)} }}")
        lines.append(
            "    api { processes [ ctl ]; neighbor-changes; receive { parsed; update; notification; } }"
        )
        v4 = [r for r in self.announce if not r.ipv6]
        v6 = [r for r in self.announce if r.ipv6]
        if v4 or v6:
            lines.append("    announce {")
            for fam, routes in (("ipv4", v4), ("ipv6", v6)):
                if routes:
                    lines.append(f"        {fam} {{")
                    lines += [f"            unicast {r.render()};" for r in routes]
                    lines.append("        }")
            lines.append("    }")
        lines.append("}")
        return "\n".join(lines) + "\n"


class ExaBGPPeer:
    """One running ExaBGP process (see the module docstring)."""

    start_timeout = 20.0  # config parse + helper start + listen socket
    stop_timeout = 5.0  # SIGTERM exit takes ~2 s (gotcha 5)
    command_timeout = 10.0

    def __init__(self, spec: PeerSpec) -> None:
        spec.validate()
        self.spec = spec
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._bridge_pids: set[int] = set()
        self._lock = asyncio.Lock()
        self._reset_state()

    # ----------------------------------------------------------------- files

    def _path(self, suffix: str) -> Path:
        if self.workdir is None:
            raise RuntimeError(f"{self.spec.name}: not started")
        return self.workdir / f"{self.spec.name}{suffix}"

    @property
    def config_path(self) -> Path:
        return self._path(".conf")

    @property
    def fifo_path(self) -> Path:
        return self._path(".cmd")

    @property
    def events_path(self) -> Path:
        return self._path("-events.jsonl")

    @property
    def bridge_pid_path(self) -> Path:
        return self._path("-bridge.pid")

    @property
    def log_path(self) -> Path:
        return self._path(".log")

    # ------------------------------------------------------------- lifecycle

    async def start(self, workdir: Path) -> None:
        """Write the config, mkfifo, start ExaBGP; return once it runs (bridge up, port bound)."""
        if self._proc is not None:
            raise RuntimeError(f"{self.spec.name}: already started")
        self._spawn(workdir)
        try:
            await self._wait_running()
        except BaseException:
            await self.stop()
            raise

    def _spawn(self, workdir: Path) -> None:
        self.workdir = Path(workdir).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._reset_state()
        for stale in (self.fifo_path, self.bridge_pid_path):
            stale.unlink(missing_ok=True)
        os.mkfifo(self.fifo_path, 0o600)  # BEFORE ExaBGP: else an early write makes a plain file
        self.events_path.write_bytes(b"")
        bridge_argv = [
            sys.executable,
            str(BRIDGE),
            str(self.fifo_path),
            str(self.events_path),
            str(self.bridge_pid_path),
        ]
        self.config_path.write_text(self.spec.render_config(bridge_argv), encoding="utf-8")
        env = dict(os.environ)
        env.update(
            {
                "exabgp_daemon_user": "root",  # else helpers run as nobody (gotcha 1)
                "exabgp_daemon_daemonize": "false",
                "exabgp_api_cli": "false",
                "exabgp_api_ack": "true",  # `send` waits for done/error
                "exabgp_log_short": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("PYTHONWARNINGS", None)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "exabgp", "server", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
        )

    async def _wait_running(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._collect_bridge_pid()
            listening = self.spec.listen_port is None or is_listening(
                self.spec.local_address, self.spec.listen_port
            )
            if self._bridge_pids and listening:
                return
            if not self.running:
                raise RuntimeError(
                    f"{self.spec.name}: ExaBGP exited with rc {self.returncode} during start\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                what = "bridge helper" if not self._bridge_pids else "listening socket"
                raise TimeoutError(
                    f"{self.spec.name}: no {what} after {self.start_timeout} s\n{self.log_tail()}"
                )
            await asyncio.sleep(_POLL)

    async def stop(self) -> None:
        """Stop ExaBGP (process group) and its bridge by PID; bounded; leaves no process."""
        proc = self._proc
        if proc is not None:
            await _terminate_group(proc, self.stop_timeout)
        if self.workdir is not None:
            self._collect_bridge_pid()
            fifo = str(self.fifo_path)
            for pid in sorted(self._bridge_pids):
                await _terminate_pid(pid, fifo, grace=2.0, bound=self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.workdir is not None:
            self._refresh()

    async def __aenter__(self) -> ExaBGPPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def pids(self) -> list[int]:
        """PIDs of the ExaBGP process and of every bridge it started (for leak checks)."""
        if self.workdir is not None:
            self._collect_bridge_pid()
        own = [self._proc.pid] if self._proc is not None else []
        return own + sorted(self._bridge_pids)

    def _collect_bridge_pid(self) -> None:
        try:
            text = self.bridge_pid_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return
        if text.isdigit():
            self._bridge_pids.add(int(text))

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, RuntimeError):
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -------------------------------------------------------------- commands

    async def send(self, raw_command: str, timeout: float | None = None) -> list[str]:  # noqa: ASYNC109
        """Write one API command into the FIFO; return ExaBGP's answer lines once it says `done`.

        Raises ExaBGPCommandError on `error`, TimeoutError if no answer comes within `timeout`.
        """
        if "\n" in raw_command or "\r" in raw_command:
            raise ValueError("one command per call, without newlines")
        if not self.running:
            raise RuntimeError(f"{self.spec.name}: ExaBGP is not running\n{self.log_tail()}")
        limit = self.command_timeout if timeout is None else timeout
        async with self._lock:
            self._refresh()
            first = len(self._answers)
            await _write_fifo(self.fifo_path, (raw_command + "\n").encode(), limit)
            deadline = time.monotonic() + limit
            while True:
                self._refresh()
                answer = self._answers[first:]
                for i, line in enumerate(answer):
                    if line in ("done", "error"):
                        if line == "error":
                            raise ExaBGPCommandError(f"{self.spec.name}: ExaBGP rejected {raw_command!r}")
                        return answer[:i]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.spec.name}: no answer to {raw_command!r} within {limit} s")
                if not self.running:
                    raise RuntimeError(f"{self.spec.name}: ExaBGP exited\n{self.log_tail()}")
                await asyncio.sleep(0.005)

    async def announce(self, route: Route) -> None:
        if (route.ipv6 and not self.spec.ipv6) or (not route.ipv6 and not self.spec.ipv4):
            raise ValueError(f"{self.spec.name}: {route.prefix} is of a family the session does not carry")
        await self.send(f"neighbor {self.spec.peer_address} announce route {route.render()}")

    async def withdraw(self, prefix: str) -> None:
        ipaddress.ip_network(prefix, strict=False)
        await self.send(f"neighbor {self.spec.peer_address} withdraw route {prefix}")

    # ----------------------------------------------------------------- views

    def events(self) -> list[dict[str, Any]]:
        """Every JSON event ExaBGP printed so far, in order."""
        self._refresh()
        return list(self._events)

    def received(self) -> dict[str, dict[str, Any]]:
        """Adj-RIB-In: prefix -> attributes ("family", "next-hop", "as-path" as a list of ints
        (an AS_SET as a nested list), "origin", "med", "community" ["65001:100"],
        "extended-community" ["target:65001:1"], "large-community" ["65001:1:2"], ...).
        Emptied when the session goes down. Do not mutate the inner dicts."""
        self._refresh()
        return dict(self._rib)

    def eor_received(self) -> set[str]:
        """Families whose End-of-RIB arrived in the current session, e.g. {"ipv4 unicast"}."""
        self._refresh()
        return set(self._eor)

    def state(self) -> str | None:
        """Last neighbor state seen: "connected", "up" or "down" (None: nothing yet)."""
        self._refresh()
        return self._state

    def notifications(self) -> list[dict[str, Any]]:
        """BGP NOTIFICATIONs ExaBGP received: {"code", "subcode", "data", ...} as ExaBGP prints them."""
        self._refresh()
        return list(self._notifications)

    async def wait_for(
        self,
        predicate: Callable[[ExaBGPPeer], bool],
        timeout: float,  # noqa: ASYNC109 - the polling loop enforces the bound itself
    ) -> None:
        """Poll `predicate(self)` every 50 ms; TimeoutError (saying what arrived) after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            self._refresh()
            if predicate(self):
                return
            if not self.running:
                await asyncio.sleep(_POLL)  # let the bridge flush what ExaBGP wrote last
                self._refresh()
                if predicate(self):
                    return
                raise RuntimeError(f"{self.spec.name}: ExaBGP is not running; {self.describe()}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.spec.name}: condition not met within {timeout} s; {self.describe()}"
                )
            await asyncio.sleep(_POLL)

    async def wait_state(self, state: str, timeout: float) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda p: p.state() == state, timeout)

    def describe(self, max_prefixes: int = 20) -> str:
        """What this peer has seen: state, received prefixes, EoRs, notifications, log tail."""
        self._refresh()
        prefixes = sorted(self._rib)
        shown = ", ".join(prefixes[:max_prefixes]) + (" ..." if len(prefixes) > max_prefixes else "")
        return (
            f"state={self._state!r}, running={self.running} rc={self.returncode}, "
            f"received {len(prefixes)} prefix(es) [{shown}], eor={sorted(self._eor)}, "
            f"notifications={self._notifications}, events={len(self._events)}\n"
            f"--- {self.spec.name}.log (tail) ---\n{self.log_tail()}"
        )

    # ---------------------------------------------------------------- parsing

    def _reset_state(self) -> None:
        self._offset = 0
        self._partial = b""
        self._events: list[dict[str, Any]] = []
        self._answers: list[str] = []
        self._rib: dict[str, dict[str, Any]] = {}
        self._eor: set[str] = set()
        self._state: str | None = None
        self._notifications: list[dict[str, Any]] = []

    def _refresh(self) -> None:
        if self.workdir is None:
            return
        try:
            with open(self.events_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                self._consume(line)

    def _consume(self, line: str) -> None:
        msg: Any = None
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
        if not isinstance(msg, dict) or "exabgp" not in msg or "type" not in msg:
            self._answers.append(line)  # done / error / show output
            return
        self._events.append(msg)
        neighbor = msg.get("neighbor")
        if not isinstance(neighbor, dict):
            return  # e.g. {"type": "notification", "notification": "shutdown"}: ExaBGP's own
        kind = msg["type"]
        if kind == "state":
            self._state = neighbor.get("state")
            if self._state == "down":
                self._rib.clear()
                self._eor.clear()
            return
        message = neighbor.get("message", {})
        if kind == "notification":
            # ExaBGP 5 puts it beside "direction"; older formats under "message"
            notification = neighbor.get("notification", message.get("notification"))
            if isinstance(notification, dict) and neighbor.get("direction", "receive") == "receive":
                self._notifications.append(dict(notification))
            return
        if kind != "update":
            return
        if "eor" in message:
            eor = message["eor"]
            self._eor.add(f"{eor.get('afi')} {eor.get('safi')}")
        update = message.get("update", {})
        for nlris in update.get("withdraw", {}).values():
            for nlri in nlris:
                self._rib.pop(_nlri_key(nlri), None)
        announce = update.get("announce", {})
        if announce:
            attrs = normalize_attributes(update.get("attribute", {}))
            for family, by_next_hop in announce.items():
                for next_hop, nlris in by_next_hop.items():
                    for nlri in nlris:
                        entry = {"family": family, "next-hop": next_hop, **attrs}
                        self._rib[_nlri_key(nlri)] = entry


def normalize_attributes(attribute: dict[str, Any]) -> dict[str, Any]:
    """ExaBGP's JSON attributes, flattened: as-path a list of ints (AS_SET: nested list),
    communities as "a:b" strings, extended communities by their string, large as "a:b:c"."""
    out: dict[str, Any] = {}
    for key, value in attribute.items():
        if key == "as-path" and isinstance(value, dict):
            path: list[Any] = []
            for _, segment in sorted(value.items(), key=lambda kv: int(kv[0])):
                members = list(segment.get("value", []))
                if segment.get("element", "").endswith("set"):
                    path.append(members)
                else:
                    path.extend(members)
            out[key] = path
        elif key == "community":
            out[key] = [f"{a}:{b}" for a, b in value]
        elif key == "large-community":
            out[key] = [":".join(str(x) for x in c) for c in value]
        elif key == "extended-community":
            out[key] = [c.get("string", c.get("value")) if isinstance(c, dict) else c for c in value]
        else:
            out[key] = value
    return out


def _nlri_key(nlri: Any) -> str:
    if isinstance(nlri, dict):
        return str(nlri.get("nlri"))
    return str(nlri)


# ------------------------------------------------------------------ helpers


def _check_uint(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise ValueError(f"bad {what}: {value!r}")


def _check_all(values: Iterable[str], pattern: re.Pattern[str], what: str) -> None:
    for v in values:
        if not isinstance(v, str) or not pattern.match(v):
            raise ValueError(f"bad {what}: {v!r}")


def _bracket(items: Iterable[str]) -> str:
    return "[ " + " ".join(items) + " ]"


def _quote(arg: str) -> str:
    if '"' in arg or "\n" in arg:
        raise ValueError(f"cannot quote {arg!r} for ExaBGP")
    return f'"{arg}"'


def pid_running(pid: int) -> bool:
    """True if /proc/PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the state follows the command name, which is in parentheses and may hold spaces
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def is_listening(address: str, port: int) -> bool:
    """True if a TCP socket is in LISTEN on address:port (IPv4, read from /proc/net/tcp)."""
    ip = ipaddress.ip_address(address)
    if ip.version != 4:
        raise ValueError("only IPv4 listeners are checked")
    want = f"{int.from_bytes(ip.packed, 'little'):08X}:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for row in f:
            cols = row.split()
            if cols[1] == want and cols[3] == "0A":
                return True
    return False


async def _write_fifo(path: Path, data: bytes, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:  # ENXIO: nobody reads the FIFO yet (bridge respawning)
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            await asyncio.sleep(_POLL)
    try:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"FIFO {path} stayed full for {timeout} s") from None
                await asyncio.sleep(0.005)
    finally:
        os.close(fd)


async def _terminate_group(proc: subprocess.Popen[bytes], bound: float) -> None:
    """SIGTERM the process group led by proc, SIGKILL it after `bound` s; reap proc."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            os.killpg(proc.pid, signal.SIGCONT)  # a stopped (SIGSTOP) ExaBGP must run to see it
        if not await _wait(lambda: proc.poll() is not None, bound):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await _wait(lambda: proc.poll() is not None, bound)
    if proc.poll() is None:
        raise RuntimeError(f"process {proc.pid} survived SIGKILL")


async def _terminate_pid(pid: int, marker: str, grace: float, bound: float) -> None:
    """Wait `grace` s for pid to exit by itself, then SIGTERM, then SIGKILL (bounded).

    Only signals a process whose command line still contains `marker` (no PID-reuse accidents)."""
    if await _wait(lambda: not pid_running(pid), grace):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if marker not in _cmdline(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if await _wait(lambda: not pid_running(pid), bound):
            return
    raise RuntimeError(f"process {pid} survived SIGKILL")


async def _wait(done: Callable[[], bool], bound: float) -> bool:
    deadline = time.monotonic() + bound
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
