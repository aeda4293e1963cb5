"""Helpers shared by the test modules; no test module imports another test module.

``paths``: where the repository's files are. ``ports``: free and busy loopback ports.
``factory``: builders of small DRG configurations and compact table views.
``bgp``: two in-memory sans-IO BGP peers on a fake wire and clock.
``vectors``: the ``.ci`` hex-vector files and the ExaBGP capture's expectations.
``lab``: the daemon in-process with ExaBGP on-prem peers (start, stop, wait, CLI).
``mqtt``: real MQTT brokers and subscribers that read back what the daemon published.
``oci``: OCI's own CLI and SDK pointed at a running daemon.
"""
