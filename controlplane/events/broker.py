"""The embedded MQTT broker of ``events.mqtt: embedded``: amqtt, in a thread of its own.

How it works: :class:`EmbeddedBroker` runs an amqtt ``Broker`` (pure Python, maintained; anonymous
clients allowed, no ``$SYS`` topics, retained messages in memory) on its own asyncio event loop in a
daemon thread, so the broker's work never runs on the daemon's loop between BGP messages, and a
client of the broker (the publisher, ``drg events --mqtt``, a test) is an ordinary TCP client.
``start()`` returns once the listener is bound, or raises OSError (address in use ...); ``stop()``
shuts the broker down (clients are disconnected, retained messages are gone, like a Mosquitto
without persistence) and joins the thread, each bounded in time. The lab uses it so that nothing
has to be installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading

from amqtt.broker import Broker

from controlplane.config.fields import split_host_port

log = logging.getLogger("controlplane.events.broker")

# amqtt and its state machine library log every connection at INFO; the daemon logs at INFO.
for _name in ("amqtt", "transitions"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


class _NoStartupTraceback(logging.Filter):
    """amqtt logs a traceback when it cannot listen; start() raises that as one clear OSError."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Broker startup failed"


logging.getLogger("amqtt.broker").addFilter(_NoStartupTraceback())


class EmbeddedBroker:
    """An in-process MQTT broker listening on ``listen`` (``HOST:PORT``)."""

    def __init__(self, listen: str) -> None:
        self.listen = listen
        self.host, self.port = split_host_port(listen)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _config(self) -> dict[str, object]:
        bind = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return {
            "listeners": {"default": {"type": "tcp", "bind": bind}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    async def start(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        if self.running:
            return
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, args=(started,), name=f"mqtt-broker-{self.port}",
                                        daemon=True)
        self._thread.start()
        try:
            await asyncio.wait_for(asyncio.wrap_future(started), timeout)
        except BaseException:
            await self.stop()
            raise
        log.info("embedded MQTT broker listening on %s", self.listen)

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.warning("embedded MQTT broker on %s did not stop within %s s", self.listen, timeout)
        self._thread = self._loop = self._stop = None

    # ---- the broker's thread --------------------------------------------------------------------

    def _main(self, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(started))
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            if not started.done():
                started.set_exception(OSError(f"the embedded MQTT broker on {self.listen} stopped at start"))
            loop.close()

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        broker = Broker(self._config())
        try:
            await broker.start()
        except Exception as exc:
            cause = exc.__cause__ or exc
            started.set_exception(OSError(
                f"cannot start the embedded MQTT broker on {self.listen}: {cause}; fix: set "
                f"events.embedded_listen to a free address, or events.mqtt: mqtt://{self.listen} "
                "to use the broker that is already there"))
            return
        started.set_result(None)
        try:
            await self._stop.wait()
        finally:
            await broker.shutdown()


__all__ = ["EmbeddedBroker"]
