"""Many sessions: S BGP sessions, each announcing P distinct prefixes, into one DRG daemon process.

The shape of a real DRG at scale (issue 13): 500 sessions (IPSec tunnels and virtual circuits)
each at OCI's per-session limit of 2,000 IPv4 prefixes. `python -m bench --only sessions
[--sessions S --prefixes P]` runs it; `run_sessions()` is the whole measurement.

How it works:

* The daemon is a child process (`python -m bench.many_sessions HOST PORT S P`, the
  `bench.speaker_receiver` protocol: READY, then `target N` -> `REACHED <perf_counter>`), running
  `Daemon(config, control=False)` at `drg run`'s default log level (INFO, to /dev/null) for the
  config of `sessions_config()`: one VCN attachment whose table `rt-vcn` imports every tunnel and
  VC, so all S*P routes land in the Adj-RIB-In and one table; session i is a VIRTUAL_CIRCUIT when
  i % VC_EVERY == 0 (10 of 500: OCI's default VC limit) and an IPSEC_TUNNEL over the internet
  otherwise (needs no VC), tunnels spread over tables of TUNNELS_PER_TABLE (OCI allows 300 per
  table); the tunnel and VC tables import the VCN, so each session is sent one route. Every
  session is passive with `peer` = its sender's address, `source_address(i)` = 127.1.x.y, default
  hold time (30 s) and `max_prefixes.ipv4` = max(P, 2000).
* The child counts incrementally: after each BGP event it re-reads `engine.received_count()` of
  that event's session only (routes learned on it and applied to the tables) and keeps the sum,
  so checking the target costs O(1) per event, not O(S).
* The sender (`Fleet`) is one asyncio protocol object per TCP connection in this process, driven
  by its callbacks; the only tasks are one short-lived task per session while it connects, and
  there are none per route or per message. Each connection binds its own 127.1.x.y and dials the
  daemon; at most CONNECT_WINDOW sessions are between connect() and the daemon's OPEN at once, so
  the daemon's listen backlog (100) never overflows into SYN retries. On the daemon's OPEN it
  answers KEEPALIVE; on the daemon's KEEPALIVE (Established) it writes its pre-encoded UPDATEs
  (`encode_updates(P, first=i*P)`: prefixes distinct across sessions) and End-of-RIB in one
  write, then sends KEEPALIVE every hold/3 s from one `loop.call_later` timer per session. It
  offers hold time 90 s, so the daemon's default 30 s is what both sides use: keepalives every
  10 s per session in each direction.
* Figures: `up` = first OPEN sent -> all S Established; `installed` = first OPEN sent -> the
  child's REACHED for S*P routes; RSS after (and growth per route since the daemon was up with
  no session); CPU of the idle daemon (utime+stime from /proc/PID/stat over `idle_seconds`, after
  SETTLE_SECONDS) as a percentage of one core, while all S sessions keep exchanging keepalives.
* Only loopback addresses are used. The child is stopped by PID (its process group: SIGTERM,
  then SIGKILL), after the sender has sent every session a Cease and closed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench import ReceiverSpec, free_port
from bench.blaster import MARKER, encode_updates, keepalive, open_message
from bench.speaker_receiver import SpeakerReceiver, Target

__all__ = ["Fleet", "SessionsDaemon", "SessionsResult", "format_sessions", "run_sessions", "sessions_config"]

VC_EVERY = 50
TUNNELS_PER_TABLE = 250
CONNECT_WINDOW = 50
SENDER_HOLD = 90
SETTLE_SECONDS = 1.0
DRG_ASN = 31898  # OCI's
TUNNEL_ASN = 65002
VC_ASN = 65001
_OPEN, _UPDATE, _NOTIFICATION, _KEEPALIVE = 1, 2, 3, 4


def source_address(i: int) -> str:
    """The sender's address for session i: 127.1.0.1, ..., 127.1.0.250, 127.1.1.1, ..."""
    if not 0 <= i < 250 * 255:
        raise ValueError("session index out of range")
    return f"127.1.{i // 250}.{i % 250 + 1}"


def is_vc(i: int) -> bool:
    return i % VC_EVERY == 0


def attachment_name(i: int) -> str:
    return f"vc{i}" if is_vc(i) else f"tun{i}"


def _session_bgp(i: int, prefixes: int) -> dict[str, Any]:
    k = i // VC_EVERY if is_vc(i) else i  # a /30 per session: VCs in 192.168/16, tunnels in 169.254.20+/16
    net = f"192.168.{k // 64}" if is_vc(i) else f"169.254.{20 + k // 64}"
    host = (k % 64) * 4
    return {
        "oracle_ip": f"{net}.{host + 1}/30", "customer_ip": f"{net}.{host + 2}/30",
        "customer_asn": VC_ASN if is_vc(i) else TUNNEL_ASN, "peer": source_address(i), "connect": "passive",
        "max_prefixes": {"ipv4": max(prefixes, 2000), "ipv6": 500},
    }


def sessions_config(host: str, port: int, sessions: int, prefixes: int) -> dict[str, Any]:
    """The DRG of the benchmark (see the module docstring), as the YAML document's dict."""
    vcn = {"name": "att-vcn", "type": "VCN", "vcn": "vcn-bench", "route_table": "rt-vcn"}
    attachments: list[dict[str, Any]] = [vcn]
    tables = {"rt-vcn": "rd-customer", "rt-vc": "rd-vcn"}
    tunnels = 0
    for i in range(sessions):
        if is_vc(i):
            attachments.append({"name": attachment_name(i), "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc",
                                "bgp": _session_bgp(i, prefixes)})
            continue
        table = f"rt-ipsec{tunnels // TUNNELS_PER_TABLE}"
        tables[table] = "rd-vcn"
        tunnels += 1
        attachments.append({"name": attachment_name(i), "type": "IPSEC_TUNNEL", "route_table": table,
                            "cpe_ip": "203.0.113.1", "bgp": _session_bgp(i, prefixes)})
    by_type = [{"priority": 10, "match": {"attachment_type": "IPSEC_TUNNEL"}},
               {"priority": 20, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}}]
    return {
        "drg": {"name": "bench-sessions", "asn": DRG_ASN},
        "speaker": {"listen": f"{host}:{port}"},
        "api": {"listen": f"{host}:{port + 1}"},  # not started (control=False)
        "vcns": [{"name": "vcn-bench", "cidrs": ["172.16.0.0/16"], "subnets": ["172.16.1.0/24"]}],
        "attachments": attachments,
        "route_tables": [{"name": name, "import_distribution": rd} for name, rd in tables.items()],
        "distributions": [{"name": "rd-customer", "statements": by_type},
                          {"name": "rd-vcn", "statements": [{"priority": 10, "match": {"attachment_type": "VCN"}}]}],
    }


# ------------------------------------------------------------------------------------- the sender


class _Session(asyncio.Protocol):
    """One BGP session of the fleet: OPEN, KEEPALIVE, its UPDATEs once Established, then keepalives."""

    def __init__(self, fleet: Fleet, index: int, data: bytes) -> None:
        self.fleet = fleet
        self.index = index
        self.address = source_address(index)
        self.data = data
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # the daemon's OPEN
        self.hold = 0
        self.established = False
        self.timer: asyncio.TimerHandle | None = None
        self.received = 0  # messages from the daemon
        self.updates = 0  # UPDATEs among them (the daemon's advertisements, End-of-RIB)
        self.failure: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fleet.first_open = self.fleet.first_open or time.perf_counter()
        asn = VC_ASN if is_vc(self.index) else TUNNEL_ASN
        transport.write(open_message(asn, self.address, SENDER_HOLD))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 19:
            length = struct.unpack_from("!H", self.buffer, 16)[0]
            if self.buffer[:16] != MARKER or length < 19:
                self._fail("not BGP")
                return
            if len(self.buffer) < length:
                return
            kind, body = self.buffer[18], bytes(self.buffer[19:length])
            del self.buffer[:length]
            self.received += 1
            self._message(kind, body)

    def _message(self, kind: int, body: bytes) -> None:
        assert self.transport is not None
        if kind == _OPEN:
            self.hold = min(SENDER_HOLD, struct.unpack_from("!H", body, 3)[0])
            self.transport.write(keepalive())
            if not self.opened.done():
                self.opened.set_result(None)
        elif kind == _KEEPALIVE and not self.established:
            self.established = True
            self.transport.write(self.data)
            self.data = b""
            self._arm()
            self.fleet.session_up()
        elif kind == _UPDATE:
            self.updates += 1
        elif kind == _NOTIFICATION:
            self._fail(f"NOTIFICATION {body[0]}/{body[1]}" if len(body) >= 2 else "NOTIFICATION")

    def _arm(self) -> None:
        if self.hold:
            self.timer = asyncio.get_running_loop().call_later(self.hold / 3, self._keepalive)

    def _keepalive(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(keepalive())
            self._arm()

    def _fail(self, why: str) -> None:
        if self.failure is None:
            self.failure = why
            self.fleet.session_failed(self, why)
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"{self.address}: {why}"))
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.fleet.closing:
            self._fail(f"connection lost ({exc})")
        self.transport = None

    def close(self, farewell: bytes = b"") -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None and not self.transport.is_closing():
            if farewell:
                self.transport.write(farewell)
            self.transport.close()


@dataclass
class Fleet:
    """S sessions from one process to host:port (see the module docstring)."""

    host: str
    port: int
    sessions: int
    prefixes: int
    first_open: float = 0.0
    all_up: float = 0.0
    closing: bool = False
    members: list[_Session] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _up: int = 0
    _done: asyncio.Future[None] | None = None

    def session_up(self) -> None:
        self._up += 1
        if self._up == self.sessions:
            self.all_up = time.perf_counter()
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    def session_failed(self, session: _Session, why: str) -> None:
        self.failures.append(f"{session.address} ({attachment_name(session.index)}): {why}")
        if self._done is not None and not self._done.done():
            self._done.set_exception(ConnectionError(self.failures[-1]))

    @property
    def up(self) -> int:
        return sum(1 for s in self.members if s.established and s.failure is None)

    async def start(self, timeout: float) -> None:  # noqa: ASYNC109
        """Open every session and return once all are Established (their UPDATEs written)."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        encoded = [encode_updates(self.prefixes, VC_ASN if is_vc(i) else TUNNEL_ASN, first=i * self.prefixes).data
                   for i in range(self.sessions)]  # before the first OPEN
        window = asyncio.Semaphore(CONNECT_WINDOW)

        async def one(i: int) -> None:
            async with window:
                session = _Session(self, i, encoded[i])
                self.members.append(session)
                await loop.create_connection(lambda: session, self.host, self.port, local_addr=(session.address, 0))
                await session.opened  # the daemon accepted it: the next one may dial

        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(i) for i in range(self.sessions)))
            await self._done

    async def stop(self) -> None:
        """Cease (administrative shutdown) on every session, then close them."""
        self.closing = True
        cease = MARKER + struct.pack("!HBBB", 21, _NOTIFICATION, 6, 2)
        for session in self.members:
            session.close(cease)
        await asyncio.sleep(0)


# -------------------------------------------------------------------------- the daemon and figures


class SessionsDaemon(SpeakerReceiver):
    """The child DRG daemon of the benchmark; `wait_count(S*P)` answers when every route is in."""

    module = "bench.many_sessions"
    stderr = asyncio.subprocess.DEVNULL  # INFO logging, as `drg run` does; the lines are dropped

    def __init__(self, spec: ReceiverSpec, sessions: int, prefixes: int) -> None:
        super().__init__(spec)
        self.sessions = sessions
        self.prefixes = prefixes

    def child_args(self) -> list[str]:
        return [self.spec.host, str(self.spec.port), str(self.sessions), str(self.prefixes)]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class SessionsResult:
    sessions: int
    prefixes: int  # per session
    routes: int  # installed in the engine when the child answered (S*P)
    sessions_up: int  # still Established at the end
    up_seconds: float  # first OPEN -> all Established
    install_seconds: float  # first OPEN -> all routes installed
    rss_before: int
    rss_after: int
    idle_seconds: float
    idle_cpu_seconds: float
    hold_time: int  # negotiated

    @property
    def idle_cpu_percent(self) -> float:
        return 100.0 * self.idle_cpu_seconds / self.idle_seconds if self.idle_seconds else 0.0

    @property
    def bytes_per_route(self) -> float:
        return (self.rss_after - self.rss_before) / self.routes if self.routes else 0.0


async def run_sessions(sessions: int, prefixes: int, idle_seconds: float = 10.0,
                       wait_limit: float = 600.0) -> SessionsResult:
    """Daemon child up, S sessions open and announce, wait for S*P routes, measure idle, all down."""
    spec = ReceiverSpec(port=free_port())
    fleet = Fleet(spec.host, spec.port, sessions, prefixes)
    async with SessionsDaemon(spec, sessions, prefixes) as daemon:
        try:
            rss_before = daemon.rss_bytes()
            await fleet.start(wait_limit)
            reached = await daemon.wait_count(sessions * prefixes, wait_limit)
            rss_after = daemon.rss_bytes()
            await asyncio.sleep(SETTLE_SECONDS if idle_seconds else 0)
            cpu0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            await asyncio.sleep(idle_seconds)
            cpu1, t1 = cpu_seconds(daemon.pid), time.monotonic()
            if fleet.failures:
                raise ConnectionError("; ".join(fleet.failures[:5]))
            up = fleet.up
        finally:
            await fleet.stop()
    return SessionsResult(
        sessions=sessions, prefixes=prefixes, routes=sessions * prefixes, sessions_up=up,
        up_seconds=fleet.all_up - fleet.first_open, install_seconds=reached - fleet.first_open,
        rss_before=rss_before, rss_after=rss_after, idle_seconds=t1 - t0, idle_cpu_seconds=cpu1 - cpu0,
        hold_time=min(s.hold for s in fleet.members),
    )


def format_sessions(r: SessionsResult) -> str:
    """The figures, as a small two-column table."""
    rows = [
        ("sessions (up at the end)", f"{r.sessions:,} ({r.sessions_up:,})"),
        ("prefixes per session", f"{r.prefixes:,}"),
        ("routes installed", f"{r.routes:,}"),
        ("first OPEN -> all Established (s)", f"{r.up_seconds:.3f}"),
        ("first OPEN -> last route installed (s)", f"{r.install_seconds:.3f}"),
        ("routes/s", f"{r.routes / r.install_seconds:,.0f}" if r.install_seconds > 0 else "-"),
        ("daemon RSS after (MB)", f"{r.rss_after / 2**20:,.1f}"),
        ("bytes/route (RSS growth)", f"{r.bytes_per_route:.0f}"),
        (f"idle CPU over {r.idle_seconds:.1f} s (% of one core)", f"{r.idle_cpu_percent:.2f}"),
        ("hold time / keepalive (s)", f"{r.hold_time} / {r.hold_time // 3}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


# --------------------------------------------------------------------------------------- the child


async def _child(host: str, port: int, sessions: int, prefixes: int) -> None:
    import logging

    import yaml

    from controlplane.config.validate import parse_valid
    from controlplane.daemon import LOG_FORMAT, Daemon

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # `drg run`'s default
    config, _ = parse_valid(yaml.safe_dump(sessions_config(host, port, sessions, prefixes)), "bench-sessions")
    daemon = Daemon(config, control=False)
    counts: dict[str, int] = {}
    total = 0
    target = Target(lambda: total)
    inner = daemon.bgp_event

    def on_event(event: Any) -> None:
        nonlocal total
        inner(event)
        peer = getattr(event, "peer", None)
        if peer in counts:
            engine = daemon.engine
            now = engine.received_count(peer) if engine.is_established(peer) else 0
            total += now - counts[peer]
            counts[peer] = now
            target.check()

    counts.update({name: 0 for name in daemon.session_names()})
    daemon.speaker.on_event = on_event
    await daemon.start()
    await target.serve()
    await daemon.stop("benchmark done")


if __name__ == "__main__":
    h, p, s, n = sys.argv[1:5]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child(h, int(p), int(s), int(n)))
