"""Reaching an MQTT broker: ``mqtt://`` URLs, the aiomqtt client (with TLS) and the reader that follows it.

How it works: :func:`parse_mqtt_url` turns ``mqtt://[user[:password]@]HOST:PORT`` or ``mqtts://...``
into an :class:`MqttTarget` (a ValueError says what is wrong). :func:`make_client` builds the
aiomqtt client for a target: with ``mqtts`` a TLS context with the system's CAs or ``tls_ca``
(``tls_insecure`` skips certificate and host name checks), and always a random client identifier.
Both the publisher (``events/mqtt_publisher.py``) and :func:`follow`, the subscriber behind
``drg events --mqtt``, reconnect with the same backoff: ``BACKOFF_FIRST`` doubling to ``BACKOFF_MAX``.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import secrets
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt
import paho.mqtt.client as mqtt

log = logging.getLogger("controlplane.events.mqtt")  # one logger for the whole MQTT side

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0


@dataclass(frozen=True)
class MqttTarget:
    """A parsed ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def display(self) -> str:
        """The URL without the password (for logs and events)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user[:password]@]HOST:PORT`` or ``mqtts://...`` -> MqttTarget; ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"{url!r}: the scheme must be mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if port is None or port == 0:
        raise ValueError(f"{url!r}: no port (write HOST:PORT, e.g. 127.0.0.1:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: nothing may follow HOST:PORT")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return MqttTarget(parts.hostname, port, username, password, parts.scheme == "mqtts")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails: paho-mqtt 2.2 drops such a socket unclosed (a
    ResourceWarning on every refused certificate, i.e. every retry)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def make_client(target: MqttTarget, *, tls_ca: str | None = None, tls_insecure: bool = False,
                identifier: str | None = None, keepalive: int = 15, timeout: float = 5.0) -> aiomqtt.Client:
    """An aiomqtt client for ``target`` (TLS context built here; OSError if ``tls_ca`` is unreadable)."""
    context: ssl.SSLContext | None = None
    if target.tls:
        context = ssl.create_default_context(cafile=tls_ca)
        context.sslsocket_class = _ClosingSSLSocket
        if tls_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return aiomqtt.Client(
        target.host, target.port, username=target.username, password=target.password,
        # Never the empty identifier paho sends by default: amqtt 0.12 hands every such client the same
        # session, so a new reader would get the subscriptions of the previous one.
        identifier=identifier or f"drg-client-{secrets.token_hex(6)}", keepalive=keepalive, timeout=timeout,
        tls_context=context,
        tls_insecure=True if (target.tls and tls_insecure) else None,
    )


# ---- big payloads: a retained table of a million rules is ~270 MB ---------------------------------

LARGE_PAYLOAD = 1 << 20  # payloads from this size on are framed, not copied
SEND_BUDGET = 4 << 20  # bytes paho may write to the socket in one event-loop step
RELEASE_STEP = 16 << 20  # bytes of a MappedPayload given back to the system per event-loop step


class _Framed:
    """A PUBLISH packet as its header bytes and the payload buffer, not copied into one: all paho's
    writer asks of a queued packet is its length and ``packet[pos:]`` (here a slice of one of the two)."""

    __slots__ = ("body", "head")

    def __init__(self, head: bytes, body: memoryview) -> None:
        self.head = head
        self.body = body

    def __len__(self) -> int:
        return len(self.head) + len(self.body)

    def __getitem__(self, index: slice) -> bytes | memoryview:
        pos = index.start or 0
        return self.head[pos:] if pos < len(self.head) else self.body[pos - len(self.head):]


class MappedPayload(bytearray):
    """A large payload written into an anonymous memory map as it is rendered: the map reserves address
    space for ``limit`` bytes and the kernel backs pages only as they are written, so nothing is
    zero-filled ahead and nothing written is ever copied to grow it (a bytearray growing past glibc's
    mmap threshold copies tens of megabytes in one event-loop step). Bytes past ``limit`` are only
    counted. paho takes it for the bytearray it is - its own buffer stays empty, ``len()`` is the size
    written - and a client prepared by :func:`frame_large_publishes` sends it from the map."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._map = mmap.mmap(-1, limit, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._size = 0

    def write(self, data: bytes | bytearray) -> None:
        end = self._size + len(data)
        if end <= len(self._map):
            self._map[self._size:end] = data
        self._size = end

    def __len__(self) -> int:
        return self._size

    async def release(self, step: int = RELEASE_STEP) -> None:
        """Give the written pages back to the system ``step`` bytes per event-loop step (returning a
        quarter of a gigabyte at once, as freeing the map does, takes tens of milliseconds); ``step`` is
        rounded to whole pages."""
        step = max(mmap.PAGESIZE, step - step % mmap.PAGESIZE)
        for start in range(0, min(self._size, len(self._map)), step):
            self._map.madvise(mmap.MADV_DONTNEED, start, min(step, len(self._map) - start))
            await asyncio.sleep(0)
        self._size = 0

    def view(self) -> memoryview:
        """The bytes written (ValueError past the limit: they were not kept)."""
        if self._size > len(self._map):
            raise ValueError(f"{self._size} bytes written, {len(self._map)} kept")
        return memoryview(self._map)[:self._size]


def frame_large_publishes(client: aiomqtt.Client) -> bool:
    """Keep paho (2.x, MQTT 3.1.1) from copying a large payload in one event-loop step: it builds every
    PUBLISH by appending the payload to a new bytearray, then sends ``packet[pos:]`` - a fresh copy of
    the rest - at each socket write, hundreds of milliseconds each for a 270 MB retained table. A
    payload of ``LARGE_PAYLOAD`` bytes or more is queued as a :class:`_Framed` packet instead: the same
    bytes on the wire, written from memoryviews (a :class:`MappedPayload` from its map). Any other paho
    (or MQTT 5) is left alone; the answer says whether the client was prepared (only then may it be
    given a MappedPayload)."""
    inner: Any = getattr(client, "_client", None)
    needed = ("_send_publish", "_packet_queue", "_pack_remaining_length", "_pack_str16", "_protocol")
    if inner is None or not all(hasattr(inner, name) for name in needed) or \
            not paho.mqtt.__version__.startswith("2.") or inner._protocol != mqtt.MQTTv311:
        return False
    original = inner._send_publish

    def send_publish(mid: int, topic: bytes, payload: bytes | bytearray = b"", qos: int = 0,
                     retain: bool = False, dup: bool = False, info: Any = None, properties: Any = None) -> Any:
        if (len(payload) < LARGE_PAYLOAD and not isinstance(payload, MappedPayload)) or inner._sock is None:
            return original(mid, topic, payload, qos, retain, dup, info, properties)
        head = bytearray((mqtt.PUBLISH | ((dup & 1) << 3) | (qos << 1) | retain,))
        inner._pack_remaining_length(head, 2 + len(topic) + len(payload) + (2 if qos > 0 else 0))
        inner._pack_str16(head, topic)
        if qos > 0:
            head.extend(struct.pack("!H", mid))
        body = payload.view() if isinstance(payload, MappedPayload) else memoryview(payload)
        return inner._packet_queue(mqtt.PUBLISH, _Framed(bytes(head), body), mid, qos, info)

    inner._send_publish = send_publish
    _budget_sends(inner)
    return True


def _budget_sends(inner: Any) -> None:
    """paho writes its queue in a loop until the socket says EAGAIN; to a broker that reads as fast as
    we write, a 270 MB packet is one event-loop step of a second or more. Here at most ``SEND_BUDGET``
    bytes go out per step: past it the write reports EAGAIN (paho keeps the rest queued and asks for
    the writer callback), and the budget comes back on the loop's next turn."""
    loop = asyncio.get_running_loop()
    original = inner._sock_send
    left = [SEND_BUDGET]

    def refill() -> None:
        left[0] = SEND_BUDGET

    def sock_send(buf: Any) -> int:
        if left[0] <= 0:
            inner._call_socket_register_write()
            raise BlockingIOError
        if left[0] == SEND_BUDGET:
            loop.call_soon(refill)
        sent = int(original(buf[:left[0]] if len(buf) > left[0] else buf))
        left[0] -= sent
        return sent

    inner._sock_send = sock_send


# ---- the reading side: ``drg events --mqtt`` ---------------------------------------------------------


async def follow(url: str, topic_filter: str, on_message: Callable[[str, bytes, bool], None], *,
                 tls_ca: str | None = None, tls_insecure: bool = False, reconnect: bool = True) -> None:
    """Subscribe to ``topic_filter`` and call ``on_message(topic, payload, retained)`` for each message
    until cancelled. The first connection must succeed (ConnectionError otherwise); a connection lost
    later is retried with backoff (the broker then replays its retained messages)."""
    target = parse_mqtt_url(url)
    delay = BACKOFF_FIRST
    first = True
    while True:
        try:
            async with make_client(target, tls_ca=tls_ca, tls_insecure=tls_insecure) as client:
                first = False
                delay = BACKOFF_FIRST
                await client.subscribe(topic_filter, qos=1)
                async for message in client.messages:
                    if not message.topic.matches(topic_filter):
                        # amqtt 0.12.1 sends a new connection the retained messages of *every* client's
                        # subscriptions, not only its own: drop what this filter does not ask for.
                        continue
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                    on_message(str(message.topic), data, bool(message.retain))
        except (aiomqtt.MqttError, OSError) as exc:
            if first or not reconnect:
                raise ConnectionError(f"{target.display()}: {exc}") from exc
            log.warning("MQTT: %s: %s; reconnecting in %.1f s", target.display(), exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX)


__all__ = ["BACKOFF_FIRST", "BACKOFF_MAX", "LARGE_PAYLOAD", "MappedPayload", "MqttTarget", "follow",
           "frame_large_publishes", "make_client", "parse_mqtt_url"]
