"""Which DRG an OCI request is about: the daemon's DRGs as one snapshot of views, and id lookups.

How it works: the OCI API reads the daemon only through :class:`OciTarget` (``controlplane.daemon.Daemon``
provides it): its DRGs by name, in file order (``routers``, one per DRG), the running
:data:`~controlplane.config.drgs.Design` (one DrgConfig, or the list of a ``drgs:`` file) and ``apply``.
:func:`snapshot` turns that into a :class:`Snapshot`: one :class:`~controlplane.oci.views.View` per DRG,
taken at the same moment. A single-DRG daemon is a snapshot of one view, and answers as it always has.

- Lists cover every DRG (:meth:`Snapshot.scoped`); a ``drgId`` query narrows them to that DRG, as OCI
  does, and an unknown ``drgId`` is a 404.
- Gets and changes find the DRG from the object's id: every id is ``ocid1.<resource>.emu.<drg>.<name>``
  (``oci/views.py``). DRG names may hold dots, so :meth:`Snapshot.locate` tries each DRG whose prefix the
  id carries, longest name first, until the object is found there; an id of no DRG is looked up in the
  first one, so that the 404 reads as it always did.
- A change builds a new DrgConfig for the DRG of its object; :meth:`Snapshot.replaced` puts it in the
  design, which ``oci/api.py`` validates as a whole (``drg apply``'s checks, R94 across DRGs), writes
  back (``oci/writeback.py``, under ``drgs[i]`` of a multi-DRG file) and applies.

Every view of a multi-DRG daemon also carries all its DRGs' configurations (``View.drgs``), for what an
object says about another DRG (an RPC's ``peerRegionName``, ``oci/rpc.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from controlplane.config.drgs import Design, configs_of, is_multi
from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import DrgConfig
from controlplane.engine.engine import RouteEngine
from controlplane.oci import views as m
from controlplane.oci.requests import OciError, not_found

T = TypeVar("T")


class DrgState(Protocol):
    """One running DRG as the OCI API reads it (``controlplane.router.Router`` provides it)."""

    @property
    def config(self) -> DrgConfig: ...
    @property
    def effective(self) -> EffectiveConfig: ...
    @property
    def engine(self) -> RouteEngine: ...


@runtime_checkable
class OciTarget(Protocol):
    """What the OCI API needs of the daemon (``controlplane.daemon.Daemon`` provides it)."""

    speaker: m.Sessions
    source: Path | None
    started_at: float

    @property
    def routers(self) -> Mapping[str, DrgState]: ...
    @property
    def design(self) -> Design: ...

    async def apply(self, config: Design, filename: str = "<api>") -> dict[str, Any]: ...


@dataclass(frozen=True)
class Snapshot:
    """Every DRG of the daemon at one moment: one view each, in file order, and the running design."""

    views: tuple[m.View, ...]
    design: Design

    @property
    def multi(self) -> bool:
        return is_multi(self.design)

    @property
    def first(self) -> m.View:
        return self.views[0]

    def view(self, drg: str) -> m.View:
        return next(v for v in self.views if v.drg == drg)

    def scoped(self, drg_id: str | None) -> tuple[m.View, ...]:
        """Every DRG, or only the one with id ``drg_id`` (a list's ``drgId``); 404 for an unknown one."""
        if drg_id is None:
            return self.views
        found = tuple(v for v in self.views if m.drg_id(v.drg) == drg_id)
        if not found:
            ids = ", ".join(m.drg_id(v.drg) for v in self.views)
            raise not_found(f"DRG {drg_id} not found (this emulator {'runs' if self.multi else 'is'} {ids})")
        return found

    def locate(self, resource: str, value: str, lookup: Callable[[m.View], T]) -> tuple[m.View, T]:
        """The DRG that holds the ``resource`` with id ``value``, and what ``lookup`` finds there."""
        candidates = sorted((v for v in self.views if m.name_from_id(resource, v.drg, value) is not None),
                            key=lambda v: -len(v.drg)) or [self.first]
        missing: OciError | None = None
        for view in candidates:
            try:
                return view, lookup(view)
            except OciError as exc:
                if exc.status != 404:
                    raise
                missing = exc
        assert missing is not None
        raise missing

    def replaced(self, config: DrgConfig) -> Design:
        """The design with ``config`` in place of its DRG's configuration."""
        if not self.multi:
            return config
        return [config if c.drg.name == config.drg.name else c for c in configs_of(self.design)]


def snapshot(target: OciTarget) -> Snapshot:
    design = target.design
    everyone = tuple(configs_of(design)) if is_multi(design) else ()
    views = tuple(m.View(r.config, r.effective, r.engine, target.speaker, target.started_at, everyone)
                  for r in target.routers.values())
    return Snapshot(views, design)
