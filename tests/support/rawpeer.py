"""Raw-socket BGP peers for the survival tests, and the DRG file they talk to.

:class:`RawPeer` is a BGP speaker reduced to what the tests observe: it connects from a loopback
address, sends OPEN and KEEPALIVE (``bench.blaster``'s encoders), then KEEPALIVEs every hold/3 s.
With ``read=True`` a task reads everything the DRG sends and records it: the arrival time and type
of each message (``log``), the NOTIFICATIONs, and the IPv4 prefixes the DRG currently advertises
(``routes``, UPDATEs decoded by the project's codec). With ``read=False`` it never calls ``recv``
and its receive buffer is made tiny (``SO_RCVBUF``), so its TCP window closes: a peer that keeps
sending KEEPALIVEs but stops reading. Every socket is on 127.0.0.0/8.

``running(doc)`` runs a real :class:`~controlplane.daemon.Daemon` in the test's event loop and records
its speaker's events. ``survive_doc`` is a DRG whose VCs (``att-vc1``... at ``127.0.1.N``, AS 6500N)
share one route table that imports every attachment: what the VCN and the table's static routes
offer is advertised to every VC (what a VC announces is not: OCI carries no routes between on-prem
peers, R33). ``flipped`` swaps its 100 static routes for another 100, to churn every VC's table.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import yaml

from bench.blaster import keepalive, open_message
from controlplane.bgp.messages import Negotiated, Update, decode_message
from controlplane.bgp.outputs import Event, NotificationSent, State, StateChanged
from controlplane.config.drgs import Design, parse_valid_design
from controlplane.daemon import Daemon
from tests.support.ports import free_port

MARKER = b"\xff" * 16
NEGOTIATED = Negotiated(asn4=True, families=frozenset({(1, 1)}))


def message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def update(prefixes: list[tuple[int, int, int, int]], local_as: int, withdraw: bool = False) -> bytes:
    """An UPDATE announcing (ORIGIN IGP, AS_PATH [local_as], NEXT_HOP 192.168.100.2) or withdrawing
    ``a.b.c.0/24`` for each ``(a, b, c, _)``; at most ~1000 prefixes."""
    nlri = b"".join(bytes([24, a, b, c]) for a, b, c, _ in prefixes)
    if withdraw:
        return message(2, struct.pack("!H", len(nlri)) + nlri + b"\x00\x00")
    attrs = (b"\x40\x01\x01\x00" + b"\x40\x02\x06\x02\x01" + struct.pack("!I", local_as)
             + b"\x40\x03\x04" + bytes([192, 168, 100, 2]))
    return message(2, b"\x00\x00" + struct.pack("!H", len(attrs)) + attrs + nlri)


class RawPeer:
    """One BGP connection to the DRG from ``local`` (see the module docstring)."""

    def __init__(self, local: str, port: int, asn: int, hold: int = 3, read: bool = True) -> None:
        self.local, self.port, self.asn, self.hold, self.read = local, port, asn, hold, read
        self.sock: socket.socket | None = None
        self.log: list[tuple[float, int]] = []  # (monotonic time, message type) of what the DRG sent
        self.notifications: list[tuple[int, int]] = []
        self.routes: set[int] = set()
        self.closed = False  # the DRG closed the connection
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        sock = socket.socket()
        if not self.read:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)  # the kernel's minimum: ~2.3 KB
        sock.bind((self.local, 0))
        sock.setblocking(False)
        self.sock = sock
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port)), timeout)

    async def establish(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Connect, OPEN + KEEPALIVE, then the keepalive (and reader) tasks; a reading peer waits for
        the DRG's OPEN and KEEPALIVE."""
        await self.connect(timeout)
        await self.send(open_message(self.asn, self.local, self.hold) + keepalive())
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._keepalives()))
        if self.read:
            self._tasks.append(loop.create_task(self._reader()))
            deadline = time.monotonic() + timeout
            while [k for _, k in self.log[:2]] != [1, 4]:
                if time.monotonic() > deadline or self.closed:
                    raise TimeoutError(f"{self.local}: no OPEN + KEEPALIVE from the DRG: {self.log[:3]} "
                                       f"{self.notifications}")
                await asyncio.sleep(0.01)

    async def send(self, data: bytes) -> None:
        assert self.sock is not None
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    def keepalive_gaps(self, since: float) -> list[float]:
        """Seconds between the DRG's consecutive messages after ``since`` (any message restarts its
        keepalive timer, RFC 4271 s.4.4)."""
        times = [t for t, _ in self.log if t >= since]
        return [b - a for a, b in itertools.pairwise(times)]

    async def _keepalives(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                await asyncio.sleep(self.hold / 3)
                await self.send(keepalive())

    async def _reader(self) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        buffer = b""
        while True:
            try:
                data = await loop.sock_recv(self.sock, 65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return
            buffer += data
            now = time.monotonic()
            while len(buffer) >= 19:
                length = int.from_bytes(buffer[16:18], "big")
                if len(buffer) < length:
                    break
                kind, body, buffer = buffer[18], buffer[19:length], buffer[length:]
                self.log.append((now, kind))
                if kind == 3:
                    self.notifications.append((body[0], body[1]))
                elif kind == 2:
                    self._update(body)

    def _update(self, body: bytes) -> None:
        got = decode_message(2, memoryview(body), NEGOTIATED)
        assert isinstance(got, Update)
        self.routes.difference_update(got.withdrawn)
        self.routes.update(got.nlri)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def statics(flip: int, n: int = 100) -> list[dict[str, str]]:
    """``n`` static routes (OCI's most per table) to the VCN: 20.x.y.0/24 for even ``flip``, 21.x.y.0/24
    for odd, so that applying the next flip withdraws every one and announces as many."""
    return [{"destination": f"{20 + flip % 2}.{i // 256}.{i % 256}.0/24", "next_hop": "att-vcn"} for i in range(n)]


def flipped(doc: dict[str, Any], flip: int) -> Design:
    """``doc`` (a ``survive_doc``) with ``statics(flip)`` in its route table, validated for ``Daemon.apply``."""
    table = {**doc["route_tables"][0], "static_routes": statics(flip)}
    return parse_valid_design(yaml.safe_dump({**doc, "route_tables": [table]}, sort_keys=False), "survive.yaml")[0]


def survive_doc(vcs: int, hold: int = 3, flip: int | None = None) -> dict[str, Any]:
    """A DRG file's dict with ``vcs`` VCs (``att-vcN``, peer 127.0.1.N, AS 6500N, hold time ``hold``) and one
    VCN, all on a route table that imports every attachment (with ``statics(flip)`` when given)."""
    attachments: list[dict[str, Any]] = [{"name": "att-vcn", "type": "VCN", "vcn": "vcn1", "route_table": "rt-all"}]
    for n in range(1, vcs + 1):
        attachments.append({
            "name": f"att-vc{n}", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-all",
            "bgp": {"oracle_ip": f"192.168.100.{4 * n + 1}/30", "customer_ip": f"192.168.100.{4 * n + 2}/30",
                    "customer_asn": 65000 + n, "peer": f"127.0.1.{n}", "hold_time": hold,
                    "max_prefixes": {"ipv4": 100_000, "ipv6": 100}},
        })
    table: dict[str, Any] = {"name": "rt-all", "import_distribution": "rd-all"}
    if flip is not None:
        table["static_routes"] = statics(flip)
    return {
        "drg": {"name": "drg-survive"},
        "speaker": {"listen": f"127.0.0.1:{free_port()}"},
        "api": {"listen": f"127.0.0.1:{free_port()}"},
        "vcns": [{"name": "vcn1", "cidrs": ["10.200.0.0/16"], "subnets": ["10.200.1.0/24"]}],
        "attachments": attachments,
        "route_tables": [table],
        "distributions": [{"name": "rd-all", "statements": [{"priority": 10, "match": "all"}]}],
    }


def survive_config(tmp: Path, vcs: int, hold: int = 3, flip: int | None = None) -> Path:
    """``survive_doc`` written into ``tmp`` (free loopback ports)."""
    path = tmp / "survive.yaml"
    path.write_text(yaml.safe_dump(survive_doc(vcs, hold, flip), sort_keys=False))
    return path


class Running:
    """A real :class:`~controlplane.daemon.Daemon` (no control API) in this process, recording what its
    speaker reports."""

    def __init__(self, design: Design) -> None:
        self.daemon = Daemon(design, control=False)
        self.events: list[Event] = []
        inner = self.daemon.bgp_event

        def record(event: Event) -> None:
            self.events.append(event)
            inner(event)

        self.daemon.speaker.on_event = record

    @property
    def port(self) -> int:
        return self.daemon.speaker.bound_port

    def state(self, name: str) -> State:
        return self.daemon.speaker.neighbors[name].peer.state

    def transitions(self, name: str) -> list[StateChanged]:
        return [e for e in self.events if isinstance(e, StateChanged) and e.peer == name]

    def sent(self, name: str) -> list[tuple[int, int]]:
        return [(e.code, e.subcode) for e in self.events if isinstance(e, NotificationSent) and e.peer == name]

    async def until(self, predicate: Callable[[], bool], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not within {limit} s; last events: {self.events[-10:]}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(doc: dict[str, Any]) -> AsyncIterator[Running]:
    """The daemon for the DRG file ``doc`` (validated as ``drg run`` would), stopped afterwards."""
    design, _ = parse_valid_design(yaml.safe_dump(doc, sort_keys=False), "survive.yaml")
    run = Running(design)
    await run.daemon.start()
    try:
        yield run
    finally:
        await run.daemon.stop()
