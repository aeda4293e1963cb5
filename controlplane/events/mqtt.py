"""MQTT events: the daemon's state and events as JSON on a broker; :func:`start_mqtt` sets it all up.

Topics, under ``drg/<drg-name>/`` (each DRG of a multi-DRG daemon under its own name):

* ``sessions/<attachment>/state`` (retained): the session's element of ``drg sessions --json``;
* ``route-tables/<name>`` (retained): the table as in ``drg routes --json`` (its ``routeTables`` element);
* ``route-tables/<name>/changes``: one message per change of the table, or per run of its changes
  that waited for a slow or absent broker (merged: ``merged`` says how many), ``{"table", "time",
  "count", "counts", "first", "last", "complete", "missed", "merged", "changes": [{"op":
  "add"|"remove"|"change", "rule": {...}}]}`` (``count``/``counts`` exact, ``first``/``last`` the first
  and last change in words; ``complete`` is false when ``changes`` holds only the first rules (4);
  ``missed`` counts rule changes of this table dropped just before this message because the broker
  was too slow or away; a message with no changes and ``missed`` > 0 reports drops after the last
  queued change);
* ``advertised/<attachment>`` (retained): ``drg advertised <attachment> --json``;
* ``events``: every other :class:`~controlplane.events.bus.DrgEvent` (``DrgEvent.to_json()``).

How it works: ``events.mqtt`` in the configuration is a broker URL or ``embedded``; for ``embedded``
:func:`start_mqtt` first starts the amqtt broker of ``events/broker.py`` on ``events.embedded_listen``.
It then starts an :class:`~controlplane.events.mqtt_publisher.MqttPublisher` on the daemon's bus and
returns both as :class:`MqttEvents`, which the daemon stops on shutdown. The pieces, each a module:
``mqtt_client`` (URLs, the aiomqtt client with TLS, :func:`follow` for ``drg events --mqtt``),
``mqtt_backlog`` (what waits to be published: dirty items and bounded queues) and ``mqtt_publisher``
(connecting with backoff and sending); their public names are re-exported here.

URLs: ``mqtt://[user[:password]@]HOST:PORT`` and ``mqtts://...`` (TLS with the system's CAs, or
``events.tls_ca``; ``events.tls_insecure`` skips certificate and host name checks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from controlplane.events.mqtt_backlog import Daemon, PublisherStats
from controlplane.events.mqtt_client import MqttTarget, follow, make_client, parse_mqtt_url
from controlplane.events.mqtt_publisher import MqttPublisher

if TYPE_CHECKING:
    from controlplane.events.broker import EmbeddedBroker

log = logging.getLogger("controlplane.events.mqtt")


class MqttEvents:
    """What ``events.mqtt`` starts in the daemon: the embedded broker (``embedded``) and the publisher
    (one per DRG in a daemon of several DRGs; ``publisher`` is the first)."""

    def __init__(self, publishers: list[MqttPublisher], broker: EmbeddedBroker | None, url: str = "",
                 tls_ca: str | None = None, tls_insecure: bool = False) -> None:
        self.publishers = publishers
        self.publisher = publishers[0]
        self.broker = broker
        self._url, self._tls_ca, self._tls_insecure = url, tls_ca, tls_insecure

    async def add(self, target: Daemon) -> None:
        """A publisher for a DRG that a new configuration added (a daemon of several DRGs)."""
        publisher = MqttPublisher(target, self._url, target.config.drg.name, tls_ca=self._tls_ca,
                                  tls_insecure=self._tls_insecure)
        await publisher.start()
        self.publishers.append(publisher)

    async def remove(self, drg: str) -> None:
        """Stop the publisher of a DRG that a new configuration removed."""
        for publisher in [p for p in self.publishers if p.prefix == f"drg/{drg}/"]:
            await publisher.stop(final_state=False)
            self.publishers.remove(publisher)

    async def stop(self) -> None:
        for publisher in self.publishers:
            await publisher.stop()
        if self.broker is not None:
            await self.broker.stop()


async def start_mqtt(daemon: Daemon, scopes: list[Daemon] | None = None) -> MqttEvents:
    """Start the MQTT side of ``daemon`` from ``daemon.config.events`` (OSError if the embedded broker
    cannot listen): one publisher under ``drg/<name>/``, or one per DRG of a multi-DRG daemon
    (``scopes``: each DRG seen as a single-DRG daemon) on the one broker."""
    events = daemon.config.events
    assert events.mqtt is not None
    broker: EmbeddedBroker | None = None
    url = events.mqtt
    if url == "embedded":
        from controlplane.events.broker import EmbeddedBroker

        broker = EmbeddedBroker(events.embedded_listen)
        await broker.start()
        url = broker.url
    publishers = [MqttPublisher(target, url, target.config.drg.name, tls_ca=events.tls_ca,
                                tls_insecure=events.tls_insecure) for target in scopes or [daemon]]
    try:
        for publisher in publishers:
            await publisher.start()
    except BaseException:
        for publisher in publishers:
            await publisher.stop()
        if broker is not None:
            await broker.stop()
        raise
    if broker is not None:
        log.info("MQTT: embedded broker on %s; follow it with: drg events --mqtt %s", events.embedded_listen, url)
    return MqttEvents(publishers, broker, url, events.tls_ca, events.tls_insecure)


__all__ = ["MqttEvents", "MqttPublisher", "MqttTarget", "PublisherStats", "follow", "make_client",
           "parse_mqtt_url", "start_mqtt"]
