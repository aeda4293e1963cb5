"""BIRD 2 as the benchmark anchor: a receiver, exactly as in the appendix of exabgp-lab.md.

How it works:

* `ensure_bird()` finds `bird` and `birdc`; if missing it installs Debian's `bird2` with
  `apt-get install -y bird2` (root only; `apt-get update` once and retry if that fails on a stale
  list). BIRD is never run as a service.
* `BirdReceiver` writes `bird.conf` into a fresh temp dir: one passive, multihop BGP session
  `local 127.0.0.1 port PORT as 65000` / `neighbor 127.0.0.2 as 65001` (`strict bind`, so only
  127.0.0.1 is bound), `import all; export none;`, and next hops resolved through an IGP table
  holding only a static 0.0.0.0/0 blackhole (BIRD ignores `lo` and rejects 127/8 next hops).
  It runs `bird -f -c bird.conf -s bird.ctl -P bird.pid` in the foreground, in its own session.
  The command line, the next-hop resolver and the birdc runner are peers/bird.py's (shared with
  the BIRD lab peers).
* `wait_count(n)` polls `birdc -s bird.ctl show route count table master4` every 20 ms until
  "... for N networks" reaches n and returns the time.perf_counter() of that poll
  (`wait_count_at_most(n)`: until it is down to n, after the withdrawals);
  `rss_bytes()` reads VmRSS from /proc/PID/status.
* Leaving the context stops BIRD by PID: SIGTERM to its process group, SIGKILL after a bound.
* `BirdTable(routes)` is the anchor of the route-dump bench: BIRD with no session, holding ``routes``
  static /24s (64.0.0.0/24 upwards, as the dump bench's DRG table), and `dump_seconds()` times
  `birdc show route > /dev/null` from start to exit - BIRD's own route dump, end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Self

from bench import PollingReceiver, ReceiverSpec, proc_rss_bytes, register_receiver
from peers.bird import IGP_RESOLVER, bird_argv, birdc

__all__ = ["BirdReceiver", "BirdTable", "apt_install", "bird_receiver", "ensure_bird"]

_COUNT_RE = re.compile(r"for (\d+) networks")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


def apt_install(package: str) -> None:
    """`apt-get install -y PACKAGE` (root only; `apt-get update` once and retry if that fails)."""
    if os.geteuid() != 0:
        raise RuntimeError(f"install the Debian package {package} (needs root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", package]
    if subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=False)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install -y {package} failed:\n{done.stderr[-2000:]}")


async def ensure_bird() -> tuple[str, str]:
    """Paths of `bird` and `birdc`, installing Debian's bird2 first if they are missing."""
    if not (shutil.which("bird") and shutil.which("birdc")):
        await asyncio.to_thread(apt_install, "bird2")
    bird, birdc = shutil.which("bird"), shutil.which("birdc")
    if not (bird and birdc):
        raise RuntimeError("bird2 installed, but bird/birdc are not on PATH")
    return bird, birdc


def bird_config(spec: ReceiverSpec) -> str:
    return f"""\
router id {spec.host};
log stderr {{ warning, error, fatal, bug }};
protocol device {{ }}
{IGP_RESOLVER.rstrip()}
protocol bgp blaster {{
    local {spec.host} port {spec.port} as {spec.local_as};
    neighbor {spec.peer_address} as {spec.peer_as};
    strict bind yes;
    multihop;
    passive on;
    ipv4 {{
        import all;
        export none;
        igp table igp4;
    }};
}}
"""


class BirdReceiver(PollingReceiver):
    """One BIRD process receiving the blaster's routes; an async context manager."""

    program = "bird"

    def __init__(self, spec: ReceiverSpec) -> None:
        self.spec = spec
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._birdc = "birdc"

    @property
    def socket_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "bird.ctl"

    async def __aenter__(self) -> Self:
        bird, self._birdc = await ensure_bird()
        self._spawn(bird)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    def _spawn(self, bird: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-bird-"))
        conf = self.dir / "bird.conf"
        conf.write_text(self.config_text(), encoding="ascii")
        self._log = open(self.dir / "bird.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            bird_argv(bird, conf, self.socket_path, self.dir / "bird.pid"),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            start_new_session=True,
        )

    def config_text(self) -> str:
        return bird_config(self.spec)

    def log_tail(self) -> str:
        if self.dir is None:
            return ""
        with contextlib.suppress(FileNotFoundError):
            return "\n".join((self.dir / "bird.log").read_text(errors="replace").splitlines()[-10:])
        return ""

    async def _birdc_run(self, *args: str) -> str:
        return (await birdc(self._birdc, self.socket_path, *args, timeout=5.0))[1]

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bird exited with rc {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket_path.exists():
                out = await self._birdc_run("show", "protocols", "blaster")
                if "blaster" in out and "BGP" in out:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"bird not ready after {START_TIMEOUT} s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    async def count(self) -> int:
        """Networks in table master4 (what the blaster sent and BIRD installed)."""
        out = await self._birdc_run("show", "route", "count", "table", "master4")
        match = _COUNT_RE.search(out)
        if match is None:
            raise RuntimeError(f"unexpected birdc output: {out!r}")
        return int(match.group(1))

    async def poll_count(self) -> tuple[int, bool]:
        return await self.count(), True

    def check_running(self, last: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"bird is not running ({last} networks):\n{self.log_tail()}")

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return proc_rss_bytes(self.proc.pid)

    async def stop(self) -> None:
        """SIGTERM BIRD's process group, SIGKILL after STOP_TIMEOUT s; remove the temp dir."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                if await _exited(proc, STOP_TIMEOUT):
                    break
            if proc.poll() is None:
                raise RuntimeError(f"bird {proc.pid} survived SIGKILL")
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


async def _exited(proc: subprocess.Popen[bytes], bound: float) -> bool:
    deadline = time.monotonic() + bound
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def bird_receiver(spec: ReceiverSpec) -> BirdReceiver:
    return BirdReceiver(spec)


register_receiver("bird", bird_receiver)


class BirdTable(BirdReceiver):
    """BIRD holding ``routes`` static /24s and no session: the anchor of bench/dump_bench.py."""

    def __init__(self, routes: int) -> None:
        super().__init__(ReceiverSpec(port=0))
        self.routes = routes

    def config_text(self) -> str:
        statics = "\n".join(f"    route {64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24 blackhole;"
                             for i in range(self.routes))
        return (f"router id 127.0.0.1;\nlog stderr {{ warning, error, fatal, bug }};\nprotocol device {{ }}\n"
                f"protocol static table_routes {{\n    ipv4;\n{statics}\n}}\n")

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT + self.routes / 50_000
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bird exited with rc {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket_path.exists() and await self.count() >= self.routes:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"bird did not load {self.routes} routes:\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    async def dump_seconds(self) -> float:
        """``birdc show route > /dev/null``, from start to exit."""
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(self._birdc, "-s", str(self.socket_path), "show", "route",
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if await proc.wait() != 0:
            raise RuntimeError("birdc show route failed")
        return time.perf_counter() - started
