"""Events out of the daemon: the bus every reader follows, the MQTT publisher, the embedded broker.

``bus`` is the in-process fan-out (log, ``drg events``, :meth:`Drg.events`); ``mqtt`` publishes the
bus and state snapshots to a broker through a bounded, coalescing queue; ``broker`` runs an amqtt
broker inside the daemon when asked. Reads the daemon only through a protocol, never imports it.
"""
