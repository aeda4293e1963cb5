"""A small, fast BGP sender for benchmarks: N distinct IPv4 /24s in dense UPDATEs.

How it works:

* `encode_updates(n)` builds every UPDATE before any socket exists: prefixes 10.0.0.0/24,
  10.0.1.0/24, ... wrap into the next usable /8 every 65,536 prefixes (11/8, 12/8, ...; 127/8
  and everything from 224/8 up are skipped), all sharing one attribute set (ORIGIN IGP,
  AS_PATH [local_as] as 4-octet ASNs, NEXT_HOP 198.51.100.1, a documentation address), 1,013
  prefixes per 4,096-byte UPDATE, followed by the IPv4 unicast End-of-RIB (an empty UPDATE).
  The NLRI bytes are built with strided slice assignment, so 1M prefixes take well under a second.
  `first=K` starts at the K-th prefix instead (bench/many_sessions.py gives each session its own).
* `encode_withdrawals(n)` likewise pre-encodes UPDATEs that withdraw those prefixes: Withdrawn
  Routes only, 1,018 /24s per 4,096-byte UPDATE, no End-of-RIB.
* `blast()` connects from `local_address` (or, with connect=False, listens there and accepts
  the peer), exchanges OPEN (4-octet AS and multiprotocol IPv4 unicast capabilities) and
  KEEPALIVE, records `t0` (time.perf_counter) just before the first UPDATE byte is written,
  writes everything in one go and waits until the kernel has taken all of it.
* It then returns a `BlastResult` while two background tasks keep the session alive (KEEPALIVE
  every hold/3 s; reading and counting whatever the peer sends, recording a NOTIFICATION) until
  `await result.stop()`, which sends a Cease NOTIFICATION and closes the socket. Meanwhile
  `await result.send(data)` writes more (the withdrawals) and returns its own t0.

Sockets are only ever opened on the addresses given (loopback in the benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
import time
from dataclasses import dataclass, field

__all__ = [
    "MAX_PREFIXES",
    "NEXT_HOP",
    "PREFIXES_PER_UPDATE",
    "WITHDRAWALS_PER_UPDATE",
    "BlastResult",
    "EncodedUpdates",
    "PeerOpen",
    "blast",
    "encode_updates",
    "encode_withdrawals",
    "keepalive",
    "open_message",
    "prefix_at",
]

MARKER = b"\xff" * 16
OPEN, UPDATE, NOTIFICATION, KEEPALIVE = 1, 2, 3, 4
MAX_MESSAGE = 4096
NEXT_HOP = "198.51.100.1"
AS_TRANS = 23456
_ATTRS_LEN = 4 + 9 + 7  # ORIGIN, AS_PATH (one 4-octet ASN), NEXT_HOP
PREFIXES_PER_UPDATE = (MAX_MESSAGE - 19 - 2 - 2 - _ATTRS_LEN) // 4  # 1013
WITHDRAWALS_PER_UPDATE = (MAX_MESSAGE - 19 - 2 - 2) // 4  # 1018
_FIRST_OCTETS = [o for o in range(10, 224) if o != 127]
MAX_PREFIXES = len(_FIRST_OCTETS) * 65536
EOR_IPV4 = MARKER + struct.pack("!HBHH", 23, UPDATE, 0, 0)


def _message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def keepalive() -> bytes:
    return _message(KEEPALIVE, b"")


def open_message(local_as: int, router_id: str, hold_time: int = 90) -> bytes:
    """OPEN with the multiprotocol (IPv4 unicast) and 4-octet AS capabilities."""
    caps = struct.pack("!BBHBB", 1, 4, 1, 0, 1) + struct.pack("!BBI", 65, 4, local_as)
    params = struct.pack("!BB", 2, len(caps)) + caps
    my_as = local_as if local_as <= 0xFFFF else AS_TRANS
    rid = ipaddress.IPv4Address(router_id).packed
    body = struct.pack("!BHH", 4, my_as, hold_time) + rid + struct.pack("!B", len(params)) + params
    return _message(OPEN, body)


def _notification(code: int, subcode: int) -> bytes:
    return _message(NOTIFICATION, bytes([code, subcode]))


def prefix_at(index: int) -> str:
    """The index-th prefix the blaster sends, e.g. prefix_at(65536) == '11.0.0.0/24'."""
    first = _FIRST_OCTETS[index >> 16]
    return f"{first}.{(index >> 8) & 255}.{index & 255}.0/24"


def _nlri(n: int, first: int = 0) -> bytes:
    """The NLRI bytes of prefixes first .. first+n-1 (see prefix_at), 4 bytes per /24."""
    out = bytearray(4 * n)
    out[0::4] = b"\x18" * n
    second = b"".join(bytes([b]) * 256 for b in range(256))  # b of a.b.c.0/24, per index in its /8
    third = bytes(range(256)) * 256
    done = 0
    while done < n:
        index = first + done
        block, within = index >> 16, index & 0xFFFF
        count = min(65536 - within, n - done)
        view = slice(4 * done, 4 * (done + count))
        chunk = out[view]
        chunk[1::4] = bytes([_FIRST_OCTETS[block]]) * count
        chunk[2::4] = second[within : within + count]
        chunk[3::4] = third[within : within + count]
        out[view] = chunk
        done += count
    return bytes(out)


@dataclass(frozen=True)
class EncodedUpdates:
    n_prefixes: int
    n_updates: int  # without the End-of-RIB
    data: bytes  # every UPDATE then the End-of-RIB, ready to write
    local_as: int
    encode_seconds: float


def _check_range(n_prefixes: int, first: int) -> None:
    if first < 0 or not 0 <= n_prefixes <= MAX_PREFIXES - first:
        raise ValueError(f"prefixes first .. first+n-1 must lie in 0..{MAX_PREFIXES - 1}")


def encode_updates(
    n_prefixes: int, local_as: int = 65001, next_hop: str = NEXT_HOP, first: int = 0
) -> EncodedUpdates:
    """Every UPDATE for n_prefixes /24s (see the module docstring), then the IPv4 End-of-RIB.

    `first` starts at prefix_at(first) instead of 10.0.0.0/24 (distinct prefixes per session).
    """
    _check_range(n_prefixes, first)
    started = time.perf_counter()
    attrs = (
        b"\x40\x01\x01\x00"  # ORIGIN IGP
        + b"\x40\x02\x06\x02\x01"  # AS_PATH: one AS_SEQUENCE of one 4-octet ASN
        + struct.pack("!I", local_as)
        + b"\x40\x03\x04"
        + ipaddress.IPv4Address(next_hop).packed
    )
    assert len(attrs) == _ATTRS_LEN
    nlri = _nlri(n_prefixes, first)
    step = 4 * PREFIXES_PER_UPDATE
    pieces = []
    for offset in range(0, len(nlri), step):
        chunk = nlri[offset : offset + step]
        body_len = 2 + 2 + len(attrs) + len(chunk)
        pieces.append(MARKER + struct.pack("!HBHH", 19 + body_len, UPDATE, 0, len(attrs)) + attrs + chunk)
    pieces.append(EOR_IPV4)
    return EncodedUpdates(
        n_prefixes=n_prefixes,
        n_updates=len(pieces) - 1,
        data=b"".join(pieces),
        local_as=local_as,
        encode_seconds=time.perf_counter() - started,
    )


def encode_withdrawals(n_prefixes: int, local_as: int = 65001, first: int = 0) -> EncodedUpdates:
    """UPDATEs withdrawing what encode_updates(n_prefixes, first=first) announced: Withdrawn Routes
    only (no attributes, no NLRI), WITHDRAWALS_PER_UPDATE /24s per 4,096-byte UPDATE, no End-of-RIB."""
    _check_range(n_prefixes, first)
    started = time.perf_counter()
    withdrawn = _nlri(n_prefixes, first)
    step = 4 * WITHDRAWALS_PER_UPDATE
    pieces = []
    for offset in range(0, len(withdrawn), step):
        chunk = withdrawn[offset : offset + step]
        body_len = 2 + len(chunk) + 2
        pieces.append(MARKER + struct.pack("!HBH", 19 + body_len, UPDATE, len(chunk)) + chunk + b"\0\0")
    return EncodedUpdates(
        n_prefixes=n_prefixes,
        n_updates=len(pieces),
        data=b"".join(pieces),
        local_as=local_as,
        encode_seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class PeerOpen:
    version: int
    asn: int  # the 4-octet AS if the capability was there
    hold_time: int
    router_id: str
    capabilities: dict[int, bytes]


def _parse_open(body: bytes) -> PeerOpen:
    version, my_as, hold = struct.unpack_from("!BHH", body)
    router_id = str(ipaddress.IPv4Address(body[5:9]))
    params_len = body[9]
    params = body[10 : 10 + params_len]
    caps: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(params):
        ptype, plen = params[i], params[i + 1]
        value = params[i + 2 : i + 2 + plen]
        if ptype == 2:
            j = 0
            while j + 2 <= len(value):
                code, clen = value[j], value[j + 1]
                caps[code] = value[j + 2 : j + 2 + clen]
                j += 2 + clen
        i += 2 + plen
    asn = struct.unpack("!I", caps[65])[0] if len(caps.get(65, b"")) == 4 else my_as
    return PeerOpen(version, asn, hold, router_id, caps)


async def _read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(19)
    if header[:16] != MARKER:
        raise ConnectionError("BGP marker missing: not a BGP peer")
    length, kind = struct.unpack("!HB", header[16:])
    if not 19 <= length <= 65535:
        raise ConnectionError(f"bad BGP message length {length}")
    return kind, await reader.readexactly(length - 19)


@dataclass
class BlastResult:
    """What blast() did; the session stays up (keepalives, reading) until stop()."""

    n_prefixes: int
    n_updates: int
    bytes_sent: int
    encode_seconds: float
    t0: float  # perf_counter just before the first UPDATE byte was written
    t_written: float  # perf_counter when the kernel had taken every byte (End-of-RIB included)
    peer_open: PeerOpen
    hold_time: int
    messages_received: int = 0
    notification: tuple[int, int, bytes] | None = None
    _writer: asyncio.StreamWriter | None = field(default=None, repr=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    @property
    def send_seconds(self) -> float:
        return self.t_written - self.t0

    @property
    def alive(self) -> bool:
        return self._writer is not None and not self._writer.is_closing() and self.notification is None

    async def send(self, data: bytes, timeout: float = 30.0) -> tuple[float, float]:  # noqa: ASYNC109
        """Write more pre-encoded messages (e.g. encode_withdrawals().data) on the session: the
        perf_counter() just before the first byte, and when the kernel had taken the last."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionError("the blaster's session is closed")
        t0 = time.perf_counter()
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)
        return t0, time.perf_counter()

    async def stop(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109
        """Send Cease/Administrative Shutdown, stop the background tasks, close (bounded)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        writer, self._writer = self._writer, None
        if writer is None:
            return
        with contextlib.suppress(Exception):
            if not writer.is_closing():
                writer.write(_notification(6, 2))
                await asyncio.wait_for(writer.drain(), timeout)
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), timeout)

    async def __aenter__(self) -> BlastResult:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _connect(
    host: str, port: int, local_address: str, connect: bool, within: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    deadline = time.monotonic() + within
    if connect:
        while True:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(host, port, local_addr=(local_address, 0)),
                    max(0.1, deadline - time.monotonic()),
                )
            except (ConnectionRefusedError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)  # the receiver may still be starting
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if accepted.done() or peer is None or peer[0] != host:
            writer.close()
            return
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_connect, local_address, port)
    try:
        return await asyncio.wait_for(accepted, within)
    finally:
        server.close()
        await server.wait_closed()


async def blast(
    host: str,
    port: int,
    local_address: str,
    local_as: int,
    peer_as: int,
    n_prefixes: int,
    connect: bool = True,
    *,
    encoded: EncodedUpdates | None = None,
    hold_time: int = 90,
    timeout: float = 30.0,  # noqa: ASYNC109 - bounds connect, OPEN exchange and the write
) -> BlastResult:
    """Send n_prefixes /24s to the BGP speaker at host:port (see the module docstring).

    With connect=False it listens on local_address:port and accepts `host` instead.
    Pass `encoded` (from encode_updates) to reuse UPDATEs across runs.
    """
    if encoded is None:
        encoded = encode_updates(n_prefixes, local_as)
    elif encoded.n_prefixes != n_prefixes or encoded.local_as != local_as:
        raise ValueError("encoded UPDATEs do not match n_prefixes/local_as")
    reader, writer = await _connect(host, port, local_address, connect, timeout)
    try:
        writer.write(open_message(local_as, local_address, hold_time))
        peer_open = await _exchange_open(reader, writer, peer_as, timeout)
        negotiated = min(hold_time, peer_open.hold_time)
        writer.transport.set_write_buffer_limits(high=0)  # drain() returns once all is in the kernel
        t0 = time.perf_counter()
        writer.write(encoded.data)
        await asyncio.wait_for(writer.drain(), timeout)
        t_written = time.perf_counter()
    except BaseException:
        writer.close()
        raise
    result = BlastResult(
        n_prefixes=n_prefixes,
        n_updates=encoded.n_updates,
        bytes_sent=len(encoded.data),
        encode_seconds=encoded.encode_seconds,
        t0=t0,
        t_written=t_written,
        peer_open=peer_open,
        hold_time=negotiated,
        _writer=writer,
    )
    result._tasks = [
        asyncio.create_task(_read_loop(reader, result), name="blaster-reader"),
        asyncio.create_task(_keepalive_loop(writer, negotiated), name="blaster-keepalive"),
    ]
    return result


async def _exchange_open(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer_as: int, timeout: float  # noqa: ASYNC109
) -> PeerOpen:
    """Read the peer's OPEN (checked), answer KEEPALIVE, wait for its KEEPALIVE (Established)."""
    kind, body = await asyncio.wait_for(_read_message(reader), timeout)
    if kind == NOTIFICATION:
        raise ConnectionError(f"peer refused the session: NOTIFICATION {body[0]}/{body[1]}")
    if kind != OPEN:
        raise ConnectionError(f"expected OPEN, got message type {kind}")
    peer_open = _parse_open(body)
    if peer_open.asn != peer_as:
        raise ConnectionError(f"peer AS is {peer_open.asn}, expected {peer_as}")
    if 65 not in peer_open.capabilities:
        raise ConnectionError("peer lacks the 4-octet AS capability the UPDATEs are encoded for")
    writer.write(keepalive())
    while True:  # its KEEPALIVE confirms our OPEN
        kind, body = await asyncio.wait_for(_read_message(reader), timeout)
        if kind == KEEPALIVE:
            return peer_open
        if kind == NOTIFICATION:
            raise ConnectionError(f"peer sent NOTIFICATION {body[0]}/{body[1]}")


async def _read_loop(reader: asyncio.StreamReader, result: BlastResult) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            kind, body = await _read_message(reader)
            result.messages_received += 1
            if kind == NOTIFICATION:
                result.notification = (body[0], body[1], body[2:])
                return


async def _keepalive_loop(writer: asyncio.StreamWriter, hold_time: int) -> None:
    if hold_time == 0:
        return
    with contextlib.suppress(ConnectionError):
        while not writer.is_closing():
            await asyncio.sleep(hold_time / 3)
            writer.write(keepalive())
            await writer.drain()
