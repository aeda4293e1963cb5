"""``controlplane.Drg``: the asyncio Python API of product.md, over the same daemon ``drg run`` uses.

    async with Drg(load_config("lab.yaml")) as drg:   # speaker, engine, control API, events
        await drg.wait_established("att-vc1", timeout=10)
        drg.route_table("rt-vcn"); drg.advertised("att-vc1"); drg.trace(...)
        async for event in drg.events(): ...
        await drg.apply(new_config)                    # validated, atomic: all or nothing
    async with Drg("examples/two-regions.yaml") as drgs:  # several DRGs (drgs:), joined by RPCs
        drgs.route_table("autogen-rt-vcn", drg="drg-b"); drgs.route_tables(drg="drg-a")

``Drg`` validates the configuration on entry (ConfigError lists every problem), and the queries
return the JSON documents of product.md, exactly what the CLI prints with ``--json``. ``Drg`` is the
daemon itself, so its calls need no token; its HTTP listener enforces the ``api`` block's token,
OCI keys and TLS like ``drg run`` (``controlplane/auth.py``; a credential problem is a ConfigError
from ``start``). A script that talks to a daemon running elsewhere uses
``controlplane.client.ControlClient``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from controlplane.bgp.outputs import State
from controlplane.config.drgs import Design, load_valid_design, require_valid_design
from controlplane.config.problems import ConfigError
from controlplane.config.schema import DrgConfig
from controlplane.config.validate import parse_valid
from controlplane.daemon import Daemon
from controlplane.events.bus import Subscription
from controlplane.events.event import EventType


def _valid(config: Design | str | Path) -> tuple[Design, Path | None]:
    if isinstance(config, DrgConfig | list):
        require_valid_design(config, "<api>")
        return config, None
    path = Path(config)
    return load_valid_design(path)[0], path


class Drg:
    """The emulated DRGs of one configuration in this process: a DrgConfig, a list of them (several
    DRGs joined by their RPCs, R109), or a file of either form. ``control_api=False`` skips the HTTP
    listener. In a multi-DRG configuration the queries take ``drg=NAME`` where a name is ambiguous
    and return the multi-DRG documents (``route_tables()``: ``{"drgs": [...]}``)."""

    def __init__(self, config: Design | str | Path, *, control_api: bool = True) -> None:
        self._config, self._source = _valid(config)
        self._control_api = control_api
        self._daemon: Daemon | None = None

    @property
    def daemon(self) -> Daemon:
        if self._daemon is None:
            raise RuntimeError("the DRG is not running: use 'async with Drg(...) as drg'")
        return self._daemon

    async def start(self) -> None:
        self._daemon = Daemon(self._config, self._source, control=self._control_api)
        try:
            await self._daemon.start()
        except BaseException:
            await self._daemon.stop()
            self._daemon = None
            raise

    async def stop(self) -> None:
        if self._daemon is not None:
            await self._daemon.stop()
            self._daemon = None

    async def __aenter__(self) -> Drg:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_established(self, attachment: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until the BGP session of ``attachment`` is Established (TimeoutError saying its state)."""
        neighbors = self.daemon.speaker.neighbors
        if attachment not in neighbors:
            raise KeyError(f"{attachment!r} has no BGP session")
        deadline = time.monotonic() + timeout
        while neighbors[attachment].peer.state != State.ESTABLISHED:
            if time.monotonic() > deadline:
                peer = neighbors[attachment].peer
                raise TimeoutError(f"{attachment}: {peer.state.value} after {timeout} s "
                                   f"(last error: {peer.last_error})")
            await asyncio.sleep(0.02)

    def route_table(self, name: str, drg: str | None = None) -> dict[str, Any]:
        """One table as in ``drg routes NAME --json`` (its element of ``routeTables``); in a multi-DRG
        configuration, of ``drg`` (needed when several DRGs have a table of that name)."""
        if not self.daemon.multi:
            return dict(self.daemon.drgs.engines[self.daemon.drgs.select(drg)[0]].route_table(name))
        doc = self.daemon.routes_json(table=name, drg=drg)
        if len(doc["drgs"]) > 1:
            raise ValueError(f"{', '.join(d['drg'] for d in doc['drgs'])} all have a route table {name}: "
                             "give drg=NAME")
        return dict(doc["drgs"][0]["routeTables"][0])

    def route_tables(self, drg: str | None = None) -> dict[str, Any]:
        """``drg routes --json``: ``{"routeTables": [...]}``, or ``{"drgs": [{"drg", "routeTables"}]}``
        for a multi-DRG configuration (every DRG, or ``drg``)."""
        return self.daemon.routes_json(drg=drg)

    def advertised(self, attachment_or_neighbor: str, drg: str | None = None) -> dict[str, Any]:
        return self.daemon.advertised_json(attachment_or_neighbor, drg)

    def offered(self, attachment: str, drg: str | None = None) -> dict[str, Any]:
        """What an attachment offers for import into route tables, as ``drg offered --json``."""
        return self.daemon.offered_json(attachment, drg)

    def sessions(self, drg: str | None = None) -> dict[str, Any]:
        return self.daemon.sessions_json(drg)

    def trace(self, from_attachment: str, src: str, dst: str, inner_src: str | None = None,
              inner_dst: str | None = None, drg: str | None = None) -> dict[str, Any]:
        """``drg trace --json``: ``from_attachment`` names an attachment or a VCN (R69, R93)."""
        return self.daemon.trace_json(from_attachment, src, dst, inner_src, inner_dst, drg)

    def events(self) -> Subscription:
        """``async for event in drg.events()``; registered at once, so nothing after the call is missed."""
        return self.daemon.subscribe()

    async def apply(self, config: Design | str | Path) -> dict[str, Any]:
        """Validate and apply atomically; ConfigError (nothing changed) when OCI would refuse it."""
        if isinstance(config, DrgConfig | list):
            try:
                require_valid_design(config, "<api>")
            except ConfigError as exc:
                self.daemon.publish(EventType.CONFIG_REJECTED, None, {
                    "errors": [p.to_json() for p in exc.problems], "summary": "rejected; nothing changed"})
                raise
            return await self.daemon.apply(config)
        path = Path(config)
        text = await asyncio.to_thread(path.read_text)
        ok, doc = await self.daemon.apply_text(text, str(path))
        if not ok:
            raise ConfigError(_problems(doc))
        return doc


def _problems(doc: dict[str, Any]) -> list[Any]:
    from controlplane.config.problems import Problem

    return [Problem(file=e.get("file") or "", object=e["object"], field=e.get("field"), rule=e["rule"],
                    message=e["message"], fix=e.get("fix") or "") for e in doc.get("errors", [])]


__all__ = ["Drg", "parse_valid"]
