"""Events out of the daemon: the bus every reader follows, the MQTT publisher, the embedded broker.

``event`` is the event itself (:class:`DrgEvent`, :class:`EventType`; pure, the router makes them);
``bus`` is the in-process fan-out (log, ``drg events``, :meth:`Drg.events`); ``mqtt`` is the face of
MQTT publishing: ``mqtt_client`` (broker URLs, TLS, the ``drg events --mqtt`` reader),
``mqtt_backlog`` (what is still to publish: bounded, coalescing), ``mqtt_publisher`` (the connection
loop); ``broker`` runs an amqtt broker inside the daemon when asked. Reads the daemon only through
a protocol, never imports it.
"""
