"""What a query of the running DRG can fail with; the control API answers 404 and 400 for them.

They live apart from ``control.py`` so that the parts that raise them (the daemon, the MQTT publisher)
do not import the HTTP server.
"""


class NotFound(Exception):
    """An unknown table, attachment or neighbor (HTTP 404)."""


class BadRequest(Exception):
    """A request the daemon cannot act on (HTTP 400)."""
