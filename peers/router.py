"""What the FRR and BIRD lab peers share: one routing daemon process driven from asyncio.

How it works:

* `RouterPeer.start(workdir)` checks that the programs exist (`RouterMissing` names the Debian
  package to install), writes the generated configuration into `workdir`, and runs the daemon in
  the foreground in its own session (process group); stdout and stderr go to `<name>.log`. It
  returns once the daemon answers on its control socket (`vtysh`/`birdc`) and, for a listening
  peer, once `local_address:listen_port` is in LISTEN (read from /proc/net/tcp).
* Queries run the daemon's CLI (`vtysh -c ...`, `birdc ...`), bounded by `cli_timeout`.
  `state()` and `received()` run it synchronously (a few ms); `wait_for` refreshes both
  asynchronously and lets the predicate see that snapshot, so polling never blocks the loop.
* `state()` speaks ExaBGP's vocabulary: "up" once the session is Established, "down" otherwise,
  None before the daemon answers; `router_state()` is the daemon's own word ("Active", "Connect").
* `received()` is the routes learned from the DRG, in the shape of `ExaBGPPeer.received()`:
  prefix -> {"family", "next-hop", "as-path" (ints, an AS_SET as a nested list), "origin", "med"?}.
* `stop()`: SIGTERM to the process group, SIGKILL after `stop_timeout`, every wait bounded.

Routes: the generated configurations announce `PeerSpec.announce` with what both daemons can set
on an eBGP route: `next_hop`, `as_path` (it must start with the peer's own AS, which eBGP
prepends; the rest is prepended by policy), `med`, `communities`, `large_communities`, `origin`.
IPv4 prefixes only. Anything else (`extended_communities`, `local_pref`, `atomic_aggregate`,
`aggregator`, IPv6) is refused by `check_routes` with a clear error.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from peers.exabgp import PeerSpec, Route, _terminate_group, is_listening

__all__ = ["RouterMissing", "RouterPeer", "check_routes", "parse_as_path", "path_after_local_as"]

_POLL = 0.1
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes


class RouterMissing(RuntimeError):
    """The routing daemon's program is not installed; the message says which package to install."""


def find_program(name: str, package: str, candidates: tuple[str, ...] = ()) -> str:
    """Absolute path of `name` (PATH, then `candidates`); RouterMissing says `apt-get install PACKAGE`."""
    found = shutil.which(name)
    if found:
        return found
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    raise RouterMissing(f"{name} is not installed: apt-get install {package}")


def path_after_local_as(route: Route, local_as: int, kind: str) -> list[int]:
    """The AS numbers to prepend by policy so that eBGP (which adds `local_as`) sends `route.as_path`."""
    if route.as_path is None:
        return []
    path = list(route.as_path)
    if not path or path[0] != local_as or any(not isinstance(a, int) for a in path):
        raise ValueError(
            f"{route.prefix}: kind {kind} sends as_path {path} only if it starts with the peer's own AS "
            f"{local_as} (eBGP prepends it) and holds plain AS numbers; use kind exabgp for any other path"
        )
    return path[1:]


def check_routes(spec: PeerSpec, kind: str) -> None:
    """Refuse what the FRR/BIRD configurations cannot announce (see the module docstring)."""
    for route in spec.announce:
        route.validate()
        if ipaddress.ip_network(route.prefix, strict=False).version != 4:
            raise ValueError(f"{spec.name}: {route.prefix}: kind {kind} announces IPv4 prefixes only")
        unsupported = [
            label
            for label, present in (
                ("extended_communities", bool(route.extended_communities)),
                ("local_pref", route.local_pref is not None),
                ("atomic_aggregate", route.atomic_aggregate),
                ("aggregator", route.aggregator is not None),
            )
            if present
        ]
        if unsupported:
            raise ValueError(
                f"{spec.name}: {route.prefix}: kind {kind} does not support {', '.join(unsupported)}; "
                "use kind exabgp"
            )
        path_after_local_as(route, spec.local_as, kind)
    if spec.md5 is not None and any(c.isspace() or c in "\"'\\" for c in spec.md5):
        raise ValueError(f"{spec.name}: kind {kind} takes an MD5 key without blanks, quotes or backslashes")


def parse_as_path(text: str) -> list[Any]:
    """ "65001 {65010 65011} 31898" or "65001 {65010,65011}" -> [65001, [65010, 65011], 31898]."""
    out: list[Any] = []
    current: list[int] | None = None
    for token in text.replace("{", " { ").replace("}", " } ").replace(",", " ").split():
        if token == "{":
            current = []
        elif token == "}":
            out.append(current or [])
            current = None
        elif token.isdigit():
            (current if current is not None else out).append(int(token))
    return out


class RouterPeer(abc.ABC):
    """One routing daemon playing one on-prem router with one neighbor (the DRG)."""

    kind = "router"
    start_timeout = 20.0
    stop_timeout = 5.0
    cli_timeout = 5.0

    def __init__(self, spec: PeerSpec) -> None:
        spec.validate()
        check_routes(spec, self.kind)
        self.spec = spec
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._snapshot: tuple[str | None, dict[str, dict[str, Any]]] | None = None

    # ------------------------------------------------------------ subclasses

    @abc.abstractmethod
    def programs(self) -> None:
        """Find the daemon and its CLI (raise RouterMissing); called before anything is written."""

    @abc.abstractmethod
    def render_config(self) -> str:
        """The daemon's configuration file."""

    @abc.abstractmethod
    def argv(self) -> list[str]:
        """The daemon's command line (foreground)."""

    @abc.abstractmethod
    def cli_argv(self, *command: str) -> list[str]:
        """The CLI command line that runs `command` against this daemon."""

    @abc.abstractmethod
    def state_command(self) -> tuple[str, ...]: ...

    @abc.abstractmethod
    def routes_command(self) -> tuple[str, ...]: ...

    @abc.abstractmethod
    def parse_state(self, text: str) -> str | None:
        """The daemon's session state ("Established", "Active", ...) from `state_command`'s output."""

    @abc.abstractmethod
    def parse_routes(self, text: str) -> dict[str, dict[str, Any]]:
        """Routes learned from the DRG from `routes_command`'s output."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Remove stale files (sockets) before the daemon starts."""

    # ----------------------------------------------------------------- files

    def _path(self, suffix: str) -> Path:
        if self.workdir is None:
            raise RuntimeError(f"{self.spec.name}: not started")
        return self.workdir / f"{self.spec.name}{suffix}"

    @property
    def config_path(self) -> Path:
        return self._path(".conf")

    @property
    def log_path(self) -> Path:
        return self._path(".log")

    @property
    def pid_path(self) -> Path:
        return self._path(".pid")

    def socket_path(self, suffix: str) -> Path:
        path = self._path(suffix)
        if len(str(path)) > _SOCKET_PATH_MAX:
            raise ValueError(f"{self.spec.name}: socket path {path} is too long; use a shorter work directory")
        return path

    # ------------------------------------------------------------- lifecycle

    async def start(self, workdir: Path) -> None:
        """Write the config and start the daemon; return once it answers (and listens, if it must)."""
        if self._proc is not None:
            raise RuntimeError(f"{self.spec.name}: already started")
        self.programs()
        self._spawn(workdir)
        try:
            await self._wait_running()
        except BaseException:
            await self.stop()
            raise

    def _spawn(self, workdir: Path) -> None:
        self.workdir = Path(workdir).absolute()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._snapshot = None
        self.prepare()
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )

    async def _wait_running(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self.running:
                raise RuntimeError(
                    f"{self.spec.name}: {self.kind} exited with rc {self.returncode} during start\n{self.log_tail()}"
                )
            answers = False
            with contextlib.suppress(RuntimeError, TimeoutError):
                answers = (await self._cli_async(*self.state_command())) is not None
            listening = self.spec.listen_port is None or is_listening(self.spec.local_address, self.spec.listen_port)
            if answers and listening:
                return
            if time.monotonic() > deadline:
                what = "answer on its control socket" if not answers else "listening socket"
                raise TimeoutError(f"{self.spec.name}: no {what} after {self.start_timeout} s\n{self.log_tail()}")
            await asyncio.sleep(_POLL)

    async def stop(self) -> None:
        """SIGTERM the daemon's process group, SIGKILL after a bound; leaves no process."""
        proc = self._proc
        if proc is not None:
            await _terminate_group(proc, self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> RouterPeer:
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
        """The daemon's PID (it starts no helper)."""
        return [self._proc.pid] if self._proc is not None else []

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, RuntimeError):
            return "(no log)"
        kept = [line for line in text.splitlines() if not self.noise(line)]
        return "\n".join(kept[-lines:])

    def noise(self, line: str) -> bool:
        """Log lines that log_tail leaves out (repeated and harmless)."""
        return False

    # ---------------------------------------------------------------- queries

    def cli(self, *command: str) -> str:
        """Run one CLI command against the daemon (bounded); its output. RuntimeError if it fails."""
        try:
            done = subprocess.run(
                self.cli_argv(*command),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.cli_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.spec.name}: {' '.join(command)!r} took over {self.cli_timeout} s") from None
        if done.returncode != 0:
            raise RuntimeError(f"{self.spec.name}: {' '.join(command)!r}: {done.stdout.decode(errors='replace')}"
                               f"{done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    async def _cli_async(self, *command: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            *self.cli_argv(*command),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.cli_timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"{self.spec.name}: {' '.join(command)!r}: {out.decode(errors='replace')}"
                               f"{err.decode(errors='replace')}")
        return out.decode(errors="replace")

    def router_state(self) -> str | None:
        """The daemon's own session state ("Established", "Active", ...); None if it does not answer."""
        if self._snapshot is not None:
            return self._snapshot[0]
        if not self.running:
            return None
        try:
            return self.parse_state(self.cli(*self.state_command()))
        except (RuntimeError, TimeoutError):
            return None

    def state(self) -> str | None:
        """ "up" when Established, "down" otherwise, None when the daemon does not answer."""
        raw = self.router_state()
        return None if raw is None else ("up" if raw.lower() == "established" else "down")

    def received(self) -> dict[str, dict[str, Any]]:
        """Routes learned from the DRG: prefix -> {"family", "next-hop", "as-path", "origin", ...}."""
        if self._snapshot is not None:
            return dict(self._snapshot[1])
        if not self.running:
            return {}
        return self.parse_routes(self.cli(*self.routes_command()))

    async def _fetch(self) -> tuple[str | None, dict[str, dict[str, Any]]]:
        """State and routes, queried asynchronously (for wait_for)."""
        raw: str | None = None
        routes: dict[str, dict[str, Any]] = {}
        if self.running:
            with contextlib.suppress(RuntimeError, TimeoutError):
                raw = self.parse_state(await self._cli_async(*self.state_command()))
                routes = self.parse_routes(await self._cli_async(*self.routes_command()))
        return raw, routes

    async def wait_for(
        self,
        predicate: Callable[[Any], bool],
        timeout: float,  # noqa: ASYNC109 - the polling loop enforces the bound itself
    ) -> None:
        """Poll `predicate(self)` every 100 ms on a fresh snapshot; TimeoutError saying what arrived."""
        deadline = time.monotonic() + timeout
        while True:
            self._snapshot = await self._fetch()
            try:
                if predicate(self):
                    return
            finally:
                self._snapshot = None
            if not self.running:
                raise RuntimeError(f"{self.spec.name}: {self.kind} is not running; {self.describe()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.spec.name}: condition not met within {timeout} s; {self.describe()}")
            await asyncio.sleep(_POLL)

    async def wait_state(self, state: str, timeout: float) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda p: p.state() == state, timeout)

    def describe(self, max_prefixes: int = 20) -> str:
        """State, received prefixes and log tail, for error messages."""
        try:
            prefixes = sorted(self.received())
        except (RuntimeError, TimeoutError) as exc:
            prefixes = [f"(query failed: {exc})"]
        shown = ", ".join(prefixes[:max_prefixes]) + (" ..." if len(prefixes) > max_prefixes else "")
        return (
            f"kind={self.kind}, state={self.router_state()!r}, running={self.running} rc={self.returncode}, "
            f"received {len(prefixes)} prefix(es) [{shown}]\n"
            f"--- {self.spec.name}.log (tail) ---\n{self.log_tail()}"
        )
