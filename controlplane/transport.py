"""The asyncio edge of the BGP speaker: one listener, outgoing dials, TCP MD5, timers.

:class:`Speaker` owns the sockets and the event loop's timers and nothing else. Every byte read is
handed to the neighbor's sans-IO :class:`~controlplane.bgp.session.Peer` with ``loop.time()`` as
``now``; after each call the speaker performs the peer's actions (write, close, dial), re-arms one
``loop.call_at`` timer per peer at ``peer.next_deadline()`` and passes the peer's events to the
``on_event`` callback. There are no per-route tasks and no per-message tasks: one protocol object
per TCP connection, one task per outgoing dial.

One listening socket serves every neighbor: an accepted connection is matched to its neighbor by
source address (``bgp.peer`` in the config); an unknown source gets Cease/Connection Rejected
(RFC 4486) and is closed, which disturbs no other session. Neighbors with an MD5 key (RFC 2385)
get the Linux ``TCP_MD5SIG`` socket option (14) on the listener and on their outgoing sockets; a
SYN without the right signature is dropped by the kernel, so such a peer never establishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.bgp.constants import CeaseSubcode, ErrorCode
from controlplane.bgp.messages import Negotiated, Notification, encode
from controlplane.bgp.outputs import Close, Dial, Event, NotificationSent, Send
from controlplane.bgp.session import Peer, PeerConfig

log = logging.getLogger("controlplane.speaker")

TCP_MD5SIG = 14  # linux/tcp.h; Python's socket module has no constant for it
TCP_MD5SIG_MAXKEYLEN = 80
LINGER = 2.0  # seconds a closed connection waits for the peer to read our NOTIFICATION and close


def md5sig_option(address: str, key: str | None) -> bytes:
    """``struct tcp_md5sig`` for ``address`` (an empty key removes the signature)."""
    raw = (key or "").encode()
    if len(raw) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError(f"MD5 key longer than {TCP_MD5SIG_MAXKEYLEN} bytes")
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        sockaddr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + ip.packed
    else:
        sockaddr = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + ip.packed + b"\0" * 4
    sockaddr = sockaddr.ljust(128, b"\0")  # struct sockaddr_storage
    # flags (u8), prefixlen (u8), keylen (u16), ifindex (u32), key[80]
    return sockaddr + struct.pack("=BBHI", 0, 0, len(raw), 0) + raw.ljust(TCP_MD5SIG_MAXKEYLEN, b"\0")


def set_md5(sock: socket.socket, address: str, key: str | None) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig_option(address, key))


@dataclass
class Neighbor:
    """A peer plus the speaker's bookkeeping for it."""

    peer: Peer
    address: str  # the peer's socket address (bgp.peer)
    port: int  # bgp.peer_port, for outgoing connections
    md5_key: str | None = None
    transports: dict[int, asyncio.Transport] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None
    timer_at: float | None = None
    dials: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.peer.config.name


class _BGPProtocol(asyncio.Protocol):
    """One TCP connection; bytes go straight into the neighbor's Peer."""

    def __init__(self, speaker: Speaker, neighbor: Neighbor | None, conn_id: int | None) -> None:
        self.speaker = speaker
        self.neighbor = neighbor
        self.conn_id = conn_id
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.neighbor is None:  # accepted by the listener: find out who it is
            self.speaker._accepted(self, transport)

    def data_received(self, data: bytes) -> None:
        neighbor = self.neighbor
        if neighbor is None or self.conn_id is None:
            return
        neighbor.peer.receive_data(self.conn_id, data, self.speaker.now())
        self.speaker._pump(neighbor)

    def connection_lost(self, exc: Exception | None) -> None:
        neighbor = self.neighbor
        if neighbor is None or self.conn_id is None:
            return
        if neighbor.transports.pop(self.conn_id, None) is not None:
            neighbor.peer.connection_lost(self.conn_id, self.speaker.now())
            self.speaker._pump(neighbor)


class Speaker:
    """All BGP sessions of the DRG on one event loop."""

    def __init__(self, listen_host: str, listen_port: int, on_event: Callable[[Event], None]) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.on_event = on_event
        self.neighbors: dict[str, Neighbor] = {}
        self._by_address: dict[str, Neighbor] = {}
        self._server: asyncio.Server | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lingering: set[asyncio.Transport] = set()  # closed by us, waiting for the peer's FIN

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    @property
    def bound_port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.listen_host, self.listen_port))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        for neighbor in self.neighbors.values():
            if neighbor.md5_key:
                set_md5(sock, neighbor.address, neighbor.md5_key)
        self._server = await self._loop.create_server(
            lambda: _BGPProtocol(self, None, None), sock=sock
        )

    async def close(self, communication: str = "DRG emulator shutting down") -> None:
        """Cease (Administrative Shutdown, RFC 9003 message) to every peer, then close everything."""
        for neighbor in list(self.neighbors.values()):
            neighbor.peer.stop(self.now(), 2, communication)
            self._pump(neighbor)
        if self._server is not None:
            self._server.close()
        for neighbor in self.neighbors.values():
            for task in list(neighbor.dials):
                task.cancel()
            if neighbor.timer is not None:
                neighbor.timer.cancel()
        await asyncio.sleep(0.05)  # let the NOTIFICATIONs leave
        for neighbor in self.neighbors.values():
            for transport in list(neighbor.transports.values()):
                transport.abort()
            neighbor.transports.clear()
        for transport in list(self._lingering):
            transport.abort()
        self._lingering.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    # ---- neighbors ---------------------------------------------------------------------------

    def add_neighbor(
        self, peer: Peer | PeerConfig, address: str, port: int, md5_key: str | None = None, start: bool = True
    ) -> Peer:
        """Register a neighbor for a sans-IO Peer (or a new one made from its config)."""
        if isinstance(peer, PeerConfig):
            peer = Peer(peer)
        config = peer.config
        if config.name in self.neighbors:
            raise ValueError(f"neighbor {config.name} exists")
        if address in self._by_address:
            raise ValueError(f"address {address} is already used by {self._by_address[address].name}")
        neighbor = Neighbor(peer, address, port, md5_key)
        self.neighbors[config.name] = neighbor
        self._by_address[address] = neighbor
        if self._sock is not None and md5_key:
            set_md5(self._sock, address, md5_key)
        if start and self._loop is not None:
            self.start_peer(config.name)
        return neighbor.peer

    def remove_neighbor(self, name: str, subcode: int = 3, communication: str = "") -> None:
        """Cease (default Peer De-configured) and forget the neighbor."""
        neighbor = self.neighbors.pop(name)
        self._by_address.pop(neighbor.address, None)
        neighbor.peer.stop(self.now(), subcode, communication)
        self._pump(neighbor)
        if neighbor.timer is not None:
            neighbor.timer.cancel()
        for task in list(neighbor.dials):
            task.cancel()
        if self._sock is not None and neighbor.md5_key:
            with contextlib.suppress(OSError):
                set_md5(self._sock, neighbor.address, None)

    def start_peer(self, name: str) -> None:
        neighbor = self.neighbors[name]
        neighbor.peer.start(self.now())
        self._pump(neighbor)

    def stop_peer(self, name: str, subcode: int = 2, communication: str = "") -> None:
        neighbor = self.neighbors[name]
        neighbor.peer.stop(self.now(), subcode, communication)
        self._pump(neighbor)

    def flush(self, name: str) -> None:
        """Send the neighbor's pending Adj-RIB-Out changes (after advertise/withdraw calls)."""
        neighbor = self.neighbors[name]
        neighbor.peer.flush(self.now())
        self._pump(neighbor)

    # ---- plumbing ----------------------------------------------------------------------------

    def _accepted(self, protocol: _BGPProtocol, transport: asyncio.Transport) -> None:
        peername = transport.get_extra_info("peername")
        source = str(peername[0]) if peername else "?"
        neighbor = self._by_address.get(source)
        if neighbor is None:
            # Unknown source: Cease/Connection Rejected, nobody else is touched.
            rejected = (ErrorCode.CEASE, CeaseSubcode.CONNECTION_REJECTED)
            transport.write(encode(Notification(*rejected, b""), Negotiated()))
            transport.close()
            self.on_event(
                NotificationSent(f"<{source}>", *rejected, b"", "Cease/Connection Rejected: no neighbor "
                                                           f"configured for {source}")
            )
            return
        sockname = transport.get_extra_info("sockname")
        addresses = (str(sockname[0]), source) if sockname else None  # for the NEXT_HOP check (RFC 4271 s6.3)
        conn_id = neighbor.peer.incoming_connection(self.now(), addresses)
        protocol.neighbor = neighbor
        protocol.conn_id = conn_id
        neighbor.transports[conn_id] = transport
        self._pump(neighbor)

    def _pump(self, neighbor: Neighbor) -> None:
        peer = neighbor.peer
        for action in peer.take_actions():
            if isinstance(action, Send):
                transport = neighbor.transports.get(action.connection)
                if transport is not None and not transport.is_closing():
                    transport.write(action.data)
            elif isinstance(action, Close):
                transport = neighbor.transports.pop(action.connection, None)
                if transport is not None:
                    self._linger_close(transport)
            elif isinstance(action, Dial):
                assert self._loop is not None
                task = self._loop.create_task(self._dial(neighbor, action.connection))
                neighbor.dials.add(task)
                task.add_done_callback(neighbor.dials.discard)
        for event in peer.take_events():
            self.on_event(event)
        self._arm_timer(neighbor)

    def _linger_close(self, transport: asyncio.Transport) -> None:
        """Close so that a NOTIFICATION just written reaches the peer: send FIN after the buffered bytes
        and discard what still arrives until the peer closes (or 2 s pass). A plain close with unread
        bytes (a keepalive in flight) would send a TCP RST, and the peer could lose the NOTIFICATION."""
        protocol = transport.get_protocol()
        if isinstance(protocol, _BGPProtocol):
            protocol.conn_id = None  # detached: whatever still arrives is dropped
        if transport.is_closing() or not transport.can_write_eof() or self._loop is None:
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the peer is already gone
            transport.abort()
            return
        self._lingering.add(transport)

        def done() -> None:
            self._lingering.discard(transport)
            transport.abort()  # a no-op once the peer's FIN closed it

        self._loop.call_later(LINGER, done)

    def _arm_timer(self, neighbor: Neighbor) -> None:
        deadline = neighbor.peer.next_deadline()
        if deadline == neighbor.timer_at and (neighbor.timer is not None or deadline is None):
            return
        if neighbor.timer is not None:
            neighbor.timer.cancel()
            neighbor.timer = None
        neighbor.timer_at = deadline
        if deadline is not None and neighbor.name in self.neighbors and self._loop is not None:
            neighbor.timer = self._loop.call_at(deadline, self._on_timer, neighbor)

    def _on_timer(self, neighbor: Neighbor) -> None:
        neighbor.timer = None
        neighbor.timer_at = None
        neighbor.peer.handle_timers(self.now())
        self._pump(neighbor)

    async def _dial(self, neighbor: Neighbor, conn_id: int) -> None:
        assert self._loop is not None
        peer = neighbor.peer
        family = socket.AF_INET6 if ":" in neighbor.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        ok = False
        addresses: tuple[str, str] | None = None
        try:
            sock.setblocking(False)
            sock.bind((self.listen_host, 0))
            if neighbor.md5_key:
                set_md5(sock, neighbor.address, neighbor.md5_key)
            await asyncio.wait_for(
                self._loop.sock_connect(sock, (neighbor.address, neighbor.port)),
                timeout=peer.config.connect_retry_time,
            )
            transport, _ = await self._loop.create_connection(
                lambda: _BGPProtocol(self, neighbor, conn_id), sock=sock
            )
            assert isinstance(transport, asyncio.Transport)
            if self.neighbors.get(neighbor.name) is not neighbor:
                transport.abort()
                return
            neighbor.transports[conn_id] = transport
            addresses = (str(sock.getsockname()[0]), neighbor.address)
            ok = True
        except (OSError, TimeoutError) as exc:
            sock.close()
            log.debug("%s: connect to %s:%s failed: %s", neighbor.name, neighbor.address, neighbor.port, exc)
        except asyncio.CancelledError:
            sock.close()
            raise
        if self.neighbors.get(neighbor.name) is neighbor:
            peer.dial_result(conn_id, self.now(), ok, addresses)
            self._pump(neighbor)
