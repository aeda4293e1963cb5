"""The read-only web console the daemon serves under ``/``: topology, route tables, sessions, events, trace.

How it works: ``add_console_routes`` (``console/app.py``) mounts a page, its static files and two
helpers on the control API's aiohttp application; the page (``console/static/``: plain HTML, CSS and
ES-module JavaScript, no build step, nothing fetched from outside) reads the same ``/v1`` documents as
the CLI's ``--json`` (config, sessions, advertised, offered, trace), pages a route table through
``/console/api/routes`` (``console/pages.py``: the rules of ``/v1/routes``, filtered and sliced on the
server) and follows the event bus through ``/console/events`` (server-sent events). It draws the
topology and the packet walk as SVG from those documents.
"""

from __future__ import annotations

from controlplane.console.app import add_console_routes

__all__ = ["add_console_routes"]
