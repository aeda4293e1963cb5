"""A BGP fuzzer against a real daemon: mutated messages over real Established sessions on loopback.

`python -m bench --only fuzz [--messages N]` (default 1,000,000) runs it and prints counts per
reaction, crashes, unhandled exceptions and messages per second.

How it works. :class:`FuzzDaemon` runs a real :class:`~controlplane.daemon.Daemon` (speaker, engine, no
control API) on its own event loop in a thread, with one VC, ``att-fuzz`` (peer 127.0.1.1, AS 65001),
whose table the DRG fills with the VCN's routes (10.200.x). It records the speaker's events, every
log record at WARNING and above, and every exception the event loop's handler sees. The DRG's idle
hold (1 s, RFC 4271 s.8.1.1 damping) is set to 0 on the fuzz session only, so a reset costs a
reconnect rather than a second.

:class:`FuzzClient` is a blocking socket from 127.0.1.1: OPEN, KEEPALIVE, the DRG's table and
End-of-RIB (a real OPEN exchange each time). Each step writes, in one go, a withdrawal of the step's
probe prefix P, the mutated message M (seeds announce P with assorted attributes, or are a
withdrawal, KEEPALIVE, ROUTE-REFRESH or OPEN; ``mutate`` flips, sets, inserts, deletes and
truncates octets and keeps the header's length true unless it breaks it on purpose), and a
ROUTE-REFRESH as a marker: the DRG answers it with its table, after M in the same stream, so once the
answer is read M has been processed. The reaction is then classified by observing the session:

* ``reset``: a NOTIFICATION arrived (counted by code/subcode), and the DRG closed the connection;
* ``treat-as-withdraw``: P is not in the Adj-RIB-In and the DRG reported an RFC 7606 action;
* ``attribute-discard``: P is installed and the DRG reported an RFC 7606 action;
* ``accepted``: P is installed, nothing to report (the mutation left a valid UPDATE);
* ``ignored``: no route and nothing reported (a KEEPALIVE, a refresh, a mutated-away NLRI).

Anything else is a violation: no NOTIFICATION yet the session is not Established, a NOTIFICATION not
followed by a close, no marker answer within 5 s, the DRG's "internal error" path (an exception its
sans-IO core caught), an exception in the event loop, or an ERROR log record. The reading of the
daemon's state happens while the daemon waits for the next bytes, so it is consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from bench.blaster import keepalive, open_message

MARKER = b"\xff" * 16
LOCAL = "127.0.1.1"
ASN = 65001
TABLE_PREFIX = bytes([10, 200])  # the VCN's 10.200.x prefixes in NLRI form: the marker's answer
REFRESH = MARKER + struct.pack("!HB", 23, 5) + b"\x00\x01\x00\x01"
OPS = ("flip", "set", "insert", "delete", "truncate", "header", "badlen")


def _message(kind: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def probe(index: int) -> bytes:
    """The NLRI of the step's probe prefix: 100.64.0.0/24 onward (4,096 of them, reused)."""
    n = index % 4096
    return bytes([24, 100, 64 + (n >> 8), n & 255])


def _attr(flags: int, code: int, value: bytes) -> bytes:
    if len(value) > 255:
        return bytes([flags | 0x10, code]) + struct.pack("!H", len(value)) + value
    return bytes([flags, code, len(value)]) + value


def _update(attrs: bytes, nlri: bytes, withdrawn: bytes = b"") -> bytes:
    return _message(2, struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri)


BASE = _attr(0x40, 1, b"\x00") + _attr(0x40, 2, b"\x02\x02" + struct.pack("!II", ASN, 64512)) + \
    _attr(0x40, 3, bytes([192, 168, 100, 2]))
EXTRAS = [
    b"",
    _attr(0x80, 4, struct.pack("!I", 100)),  # MED
    _attr(0xC0, 8, struct.pack("!II", (ASN << 16) | 100, 0xFFFFFF01)),  # COMMUNITIES
    _attr(0xC0, 16, bytes.fromhex("0002fde900000001")),  # EXTENDED_COMMUNITIES
    _attr(0xC0, 32, struct.pack("!III", ASN, 1, 2)),  # LARGE_COMMUNITIES
    _attr(0x40, 6, b"") + _attr(0xC0, 7, struct.pack("!I", ASN) + bytes([192, 0, 2, 1])),  # ATOMIC_AGG., AGGREGATOR
    _attr(0xC0, 99, b"unknown-transitive"),  # an unknown optional transitive attribute: passed on
    _attr(0x80, 14, struct.pack("!HBB", 2, 1, 16) + bytes(16) + b"\x00" + bytes([48, 0x20, 0x01, 0x0D, 0xB8, 0, 1])),
]


def seeds(index: int) -> list[bytes]:
    """The valid messages step ``index`` mutates: UPDATEs announcing its probe prefix, a withdrawal,
    a KEEPALIVE, a ROUTE-REFRESH and an OPEN (which Established does not accept: 5/3)."""
    nlri = probe(index)
    updates = [_update(BASE + extra, nlri) for extra in EXTRAS]
    return [*updates, _update(b"", b"", nlri), keepalive(), REFRESH, open_message(ASN, LOCAL, 30)]


def mutate(data: bytes, ops: Sequence[tuple[str, int, int, bytes]]) -> bytes:
    """``data`` with each ``(op, position, amount, octets)`` applied to its body (position modulo the
    body's size), or to its header (``header``: a flipped bit of the marker or type); the header's length
    is then set to the size, except by ``badlen`` (a length under 19 or over 4,096)."""
    out = bytearray(data)
    badlen = None
    for op, position, amount, octets in ops:
        at = 19 + position % max(len(out) - 19, 1)
        if op == "flip" and len(out) > 19:
            out[at] ^= 1 << (amount % 8)
        elif op == "set" and len(out) > 19:
            out[at] = amount % 256
        elif op == "insert":
            out[at:at] = octets
        elif op == "delete" and len(out) > 19:
            del out[at : at + 1 + amount % 8]
        elif op == "truncate":
            del out[at:]
        elif op == "header":
            spot = (0, 5, 15, 18)[amount % 4]
            out[spot] ^= 1 << (position % 8)
        elif op == "badlen":
            badlen = amount % 19 if amount % 2 else 4097 + amount % 1000
    if len(out) < 19:
        out += bytes(19 - len(out))
    out[16:18] = struct.pack("!H", badlen if badlen is not None else min(len(out), 65535))
    return bytes(out)


def random_ops(rng: random.Random) -> list[tuple[str, int, int, bytes]]:
    """One to four mutations; half the time only in place (flip, set), which keeps the layout and so
    reaches the attribute checks rather than the framing ones; rarely the header or a bad length."""
    ops = []
    kinds = OPS[:2] if rng.random() < 0.5 else OPS[:5]
    for _ in range(rng.randint(1, 4)):
        luck = rng.random()
        op = "badlen" if luck < 0.01 else "header" if luck < 0.03 else rng.choice(kinds)
        ops.append((op, rng.randrange(4096), rng.randrange(256), rng.randbytes(rng.randint(1, 8))))
    return ops


def fuzz_doc(port: int) -> dict[str, Any]:
    """The fuzzed DRG: one VC (127.0.1.1, AS 65001) and one VCN on one route table."""
    return {
        "drg": {"name": "drg-fuzz"},
        "speaker": {"listen": f"127.0.0.1:{port}"},
        "api": {"listen": f"127.0.0.1:{port + 1}"},  # not started
        "vcns": [{"name": "vcn1", "cidrs": ["10.200.0.0/16"], "subnets": ["10.200.1.0/24"]}],
        "attachments": [
            {"name": "att-vcn", "type": "VCN", "vcn": "vcn1", "route_table": "rt"},
            {"name": "att-fuzz", "type": "VIRTUAL_CIRCUIT", "route_table": "rt",
             "bgp": {"oracle_ip": "192.168.100.1/30", "customer_ip": "192.168.100.2/30", "customer_asn": ASN,
                     "peer": LOCAL, "max_prefixes": {"ipv4": 100_000, "ipv6": 100_000}}},
        ],
        "route_tables": [{"name": "rt", "import_distribution": "rd"}],
        "distributions": [{"name": "rd", "statements": [{"priority": 10, "match": "all"}]}],
    }


class _Records(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.into.append(self.format(record))


class FuzzDaemon:
    """A real Daemon on an event loop of its own thread (see the module docstring)."""

    def __init__(self, port: int) -> None:
        from controlplane.config.drgs import parse_valid_design
        from controlplane.daemon import Daemon

        design, _ = parse_valid_design(yaml.safe_dump(fuzz_doc(port)), "fuzz.yaml")
        self.daemon = Daemon(design, control=False)
        self.port = port
        self.events: list[Any] = []
        self.errors: list[str] = []  # ERROR log records, exceptions the event loop saw
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(str(ctx.get("exception", ctx))))
        self._handler = _Records(self.errors)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuzz-daemon", daemon=True)
        inner = self.daemon.bgp_event

        def record(event: Any) -> None:
            self.events.append(event)
            inner(event)

        self.daemon.speaker.on_event = record

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.daemon.start())
        neighbor = self.daemon.speaker.neighbors["att-fuzz"]
        neighbor.peer.config = dataclasses.replace(neighbor.peer.config, idle_hold_time=0.0)
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.daemon.stop("fuzzing done"))
        self.loop.close()

    def start(self) -> None:
        logging.getLogger().addHandler(self._handler)
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the fuzzed daemon did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        logging.getLogger().removeHandler(self._handler)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def state(self) -> str:
        return str(self.daemon.speaker.neighbors["att-fuzz"].peer.state.value)

    def handled(self) -> tuple[int, int]:
        """(routes not installed for an error, attributes discarded) so far: the session's counters."""
        peer = self.daemon.speaker.neighbors["att-fuzz"].peer
        return sum(peer.rejected.values()), sum(peer.discarded.values())

    def installed(self, nlri: bytes) -> bool:
        from controlplane.prefix import AFI_IPV4, parse_prefix

        key = parse_prefix(f"{nlri[1]}.{nlri[2]}.{nlri[3]}.0/24")[1]
        return key in self.daemon.speaker.neighbors["att-fuzz"].peer.rib_in.routes[AFI_IPV4]


@dataclass
class Tally:
    """What a fuzz run saw."""

    reactions: Counter[str] = field(default_factory=Counter)
    notifications: Counter[tuple[int, int]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    messages: int = 0
    sessions: int = 0
    seconds: float = 0.0


def _is_notification(message: bytes) -> bool:
    """Whether the DRG reads ``message`` as a well-formed NOTIFICATION (which it must not answer)."""
    return message[:16] == MARKER and message[18] == 3 and len(message) >= 21


class FuzzClient:
    """The fuzzing peer: one blocking socket at a time from 127.0.1.1 (see the module docstring)."""

    def __init__(self, target: FuzzDaemon, tally: Tally) -> None:
        self.target = target
        self.tally = tally
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _recv(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next message from the DRG, or None when it closed the connection."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        while len(self.buffer) < 19 or len(self.buffer) < int.from_bytes(self.buffer[16:18], "big"):
            try:
                data = self.sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                return None
            self.buffer += data
        length = int.from_bytes(self.buffer[16:18], "big")
        kind, body, self.buffer = self.buffer[18], self.buffer[19:length], self.buffer[length:]
        return kind, body

    def connect(self) -> None:
        """A real OPEN exchange; until the DRG's End-of-RIB (retrying while the DRG refuses)."""
        for _ in range(200):
            self.close()
            sock = socket.socket()
            sock.bind((LOCAL, 0))
            sock.connect(("127.0.0.1", self.target.port))
            self.sock, self.buffer = sock, b""
            sock.sendall(open_message(ASN, LOCAL, 30) + keepalive())
            while (got := self._recv()) is not None and got[0] != 3:
                if got == (2, b"\x00\x00\x00\x00"):  # End-of-RIB: Established, table sent
                    self.tally.sessions += 1
                    return
            time.sleep(0.01)  # refused (the previous connection still closing): again
        raise ConnectionError("the DRG never accepted the fuzzing session")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def step(self, index: int, message: bytes) -> str:
        """Send ``message`` for probe ``index`` and classify the DRG's reaction."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        seen = len(self.target.events)
        handled = self.target.handled()
        nlri = probe(index)
        self.sock.sendall(_update(b"", b"", nlri) + message + REFRESH)
        self.tally.messages += 1
        answered = False
        while True:
            got = self._recv()
            if got is None and _is_notification(message):
                self.close()  # RFC 4271 s.6: a NOTIFICATION received closes the connection, unanswered
                return self._seen(index, message, seen, "closed (our NOTIFICATION)")
            if got is None:
                return self._violation(index, message, "closed without a NOTIFICATION")
            kind, body = got
            if kind == 3:
                self.tally.notifications[(body[0], body[1])] += 1
                while got is not None:
                    got = self._recv()  # the DRG must close after its NOTIFICATION (a timeout raises)
                self.close()
                return self._seen(index, message, seen, "reset")
            if kind == 2 and TABLE_PREFIX in body:
                if message == REFRESH and not answered:  # still a ROUTE-REFRESH: its answer came first
                    answered = True
                    continue
                return self._classify(index, message, seen, nlri, handled)

    def _classify(self, index: int, message: bytes, seen: int, nlri: bytes, before: tuple[int, int]) -> str:
        if self.target.state() != "Established":
            return self._violation(index, message, f"no NOTIFICATION, session {self.target.state()}")
        rejected, discarded = (now - then for now, then in zip(self.target.handled(), before, strict=True))
        installed = self.target.installed(nlri)
        if rejected:  # the session's counters say why (drg sessions: prefixesRejected, attributesDiscarded)
            kind = "treat-as-withdraw"
        elif discarded:
            kind = "attribute-discard"
        else:
            kind = "accepted" if installed else "ignored"
        return self._seen(index, message, seen, kind)

    def _seen(self, index: int, message: bytes, seen: int, kind: str) -> str:
        from controlplane.bgp.outputs import PeerWarning

        bugs = [e.text for e in self.target.events[seen:] if isinstance(e, PeerWarning) and "internal error" in e.text]
        if bugs or self.target.errors:
            return self._violation(index, message, f"unhandled exception: {bugs or self.target.errors}")
        self.tally.reactions[kind] += 1
        return kind

    def _violation(self, index: int, message: bytes, what: str) -> str:
        self.tally.violations.append(f"step {index}: {what}: {message.hex()}")
        self.close()
        return "violation"


def run(messages: int, seed: int = 14, progress: Callable[[Tally], None] | None = None) -> Tally:
    """``messages`` mutated messages against a fresh daemon; the tally of reactions."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    target = FuzzDaemon(port)
    tally = Tally()
    rng = random.Random(seed)
    target.start()
    client = FuzzClient(target, tally)
    started = time.perf_counter()
    try:
        for index in range(messages):
            choices = seeds(index)
            client.step(index, mutate(rng.choice(choices), random_ops(rng)))
            if progress is not None and index % 20000 == 19999:
                tally.seconds = time.perf_counter() - started
                progress(tally)
    finally:
        tally.seconds = time.perf_counter() - started
        client.close()
        target.stop()
    if not target.alive and target.errors:
        tally.violations.append(f"daemon errors: {target.errors[:5]}")
    return tally


def format_tally(tally: Tally) -> str:
    rate = tally.messages / tally.seconds if tally.seconds else 0.0
    lines = [f"fuzz: {tally.messages:,} mutated messages over {tally.sessions:,} sessions in {tally.seconds:.1f} s "
             f"({rate:,.0f} messages/s)"]
    lines += [f"  {kind:<18} {n:>10,}" for kind, n in tally.reactions.most_common()]
    top = ", ".join(f"{c}/{s}: {n:,}" for (c, s), n in tally.notifications.most_common(12))
    lines.append(f"  NOTIFICATIONs by code/subcode: {top}")
    lines.append(f"  crashes: 0, unhandled exceptions / violations: {len(tally.violations)}")
    lines += [f"    {v[:300]}" for v in tally.violations[:10]]
    return "\n".join(lines)


def main(messages: int = 1_000_000) -> int:
    import sys

    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        tally = run(messages, progress=lambda t: print(f"  {t.messages:,} messages, {t.seconds:.0f} s",
                                                       file=sys.stderr, flush=True))
        print(format_tally(tally), flush=True)
        return 1 if tally.violations else 0
    return 130
