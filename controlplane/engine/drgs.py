"""The DRGs of one file together: their engines, the RPC fabric between them, and the per-DRG queries.

:class:`Drgs` holds one :class:`~controlplane.engine.engine.RouteEngine` per DRG of a file (in file
order) and the :class:`~controlplane.engine.rpc.RpcFabric` that keeps their RPC routes at a fixed
point (R109). The offline mode builds one from files (:func:`drgs_from_files`: every engine, the
learned file replayed into the DRG that holds each listed attachment, then the fabric settled once,
so the tables are a function of the files alone); the daemon builds its queries on the engines of
its routers. The queries answer the JSON documents of product.md:

* a single-DRG file keeps its documents unchanged (``{"routeTables": [...]}``);
* a multi-DRG file's route dump is ``{"drgs": [{"drg": NAME, "routeTables": [...]}, ...]}`` - every
  DRG, the ``drg`` one, the DRGs that have a table of that name, or the DRG of an attachment;
* ``advertised``, ``offered`` and ``trace`` find the attachment (or VCN) by name in every DRG
  (attachment names are unique in a file) and add ``"drg"`` to the document in a multi-DRG file; a
  name found in several DRGs (a VCN, a neighbor address) needs ``drg`` (ValueError otherwise).

Unknown names raise KeyError (the daemon answers 404, the CLI exits 1). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controlplane.config.drgs import Design, configs_of, is_multi, load_design, require_valid_design
from controlplane.config.effective import build_effective
from controlplane.config.load import load_config, load_learned
from controlplane.config.problems import ConfigError, Problem, did_you_mean
from controlplane.config.validate import require_valid
from controlplane.engine.dump import RoutePlan
from controlplane.engine.engine import RouteEngine
from controlplane.engine.offline import apply_learned
from controlplane.engine.rpc import RpcFabric, RpcStore


class Drgs:
    """The engines of a file's DRGs (``multi``: the file has ``drgs:``) and the fabric between them."""

    def __init__(self, engines: Mapping[str, RouteEngine], multi: bool) -> None:
        self.engines = dict(engines)
        self.multi = multi
        stores: dict[str, RpcStore] = dict(self.engines)
        self.fabric = RpcFabric(stores)

    # ---- finding things ------------------------------------------------------------------------

    def select(self, drg: str | None) -> list[str]:
        """Every DRG, or the one named (KeyError if the file has no such DRG)."""
        if drg is None:
            return list(self.engines)
        if drg not in self.engines:
            raise KeyError(f"no DRG {drg!r} in this configuration{did_you_mean(drg, self.engines)}")
        return [drg]

    def pick(self, name: str, drg: str | None, knows: Callable[[RouteEngine], bool], what: str) -> str:
        """The one DRG (of ``drg`` or all) whose engine ``knows`` the name; a single-DRG file's DRG (its
        engine then says what is unknown, as it always did)."""
        if not self.multi:
            return self.select(drg)[0]
        found = [d for d in self.select(drg) if knows(self.engines[d])]
        if not found:
            where = f" in {drg}" if drg is not None else ""
            raise KeyError(f"no {what} {name!r}{where}")
        if len(found) > 1:
            raise ValueError(f"{name!r} is a {what} of several DRGs ({', '.join(found)}): add --drg NAME")
        return found[0]

    def drg_of(self, attachment: str, drg: str | None = None) -> str:
        return self.pick(attachment, drg, lambda e: e.config.find_attachment(attachment) is not None,
                         "attachment")

    def _tag(self, doc: dict[str, Any], drg: str) -> dict[str, Any]:
        if self.multi:
            doc = {**doc, "drg": drg}
        return doc

    # ---- documents ------------------------------------------------------------------------------

    def routes(self, table: str | None = None, attachment: str | None = None,
               drg: str | None = None) -> dict[str, Any]:
        """``drg routes --json`` (see the module's docstring for the two shapes)."""
        return self.route_plan(table, attachment, drg).document()

    def route_plan(self, table: str | None = None, attachment: str | None = None,
                   drg: str | None = None) -> RoutePlan:
        """Which tables ``drg routes`` dumps (KeyError for an unknown table, attachment or DRG), for
        :meth:`routes` and the streamed dump (``engine/dump.py``)."""
        if not self.multi:
            engine = self.engines[self.select(drg)[0]] if drg is not None else next(iter(self.engines.values()))
            if attachment:
                table = engine.table_for_attachment(attachment)
            if table:
                engine.table_index(table)
                names: tuple[str, ...] = (table,)
            else:
                names = tuple(t.name for t in engine.config.route_tables)
            return RoutePlan(False, (("", engine, names),))
        if attachment:
            owner = self.drg_of(attachment, drg)
            name = self.engines[owner].table_for_attachment(attachment)
            return RoutePlan(True, ((owner, self.engines[owner], (name,)),))
        out = []
        for d in self.select(drg):
            engine = self.engines[d]
            if table is None:
                out.append((d, engine, tuple(t.name for t in engine.config.route_tables)))
            elif engine.config.find_table(table) is not None:
                out.append((d, engine, (table,)))
        if table is not None and not out:
            where = f" in {drg}" if drg is not None else " in any DRG"
            raise KeyError(f"no route table {table!r}{where}")
        return RoutePlan(True, tuple(out))

    def advertised(self, name: str, drg: str | None = None) -> tuple[str, dict[str, Any]]:
        """(DRG, ``drg advertised --json``) for an attachment, a session or a neighbor address."""

        def knows(engine: RouteEngine) -> bool:
            try:
                engine.adj_rib_out(name)
            except KeyError:
                return False
            return True

        owner = self.pick(name, drg, knows, "attachment or BGP neighbor")
        return owner, self._tag(self.engines[owner].advertised(name), owner)

    def offered(self, attachment: str, drg: str | None = None) -> dict[str, Any]:
        owner = self.drg_of(attachment, drg)
        return self._tag(self.engines[owner].offered(attachment), owner)

    def trace(self, origin: str, src: str, dst: str, inner_src: str | None = None, inner_dst: str | None = None,
              drg: str | None = None) -> dict[str, Any]:
        """``drg trace --json`` from an attachment or a VCN of one DRG (R69, R93)."""

        def knows(engine: RouteEngine) -> bool:
            return engine.config.find_attachment(origin) is not None or any(
                v.name == origin for v in engine.config.source.vcns)

        owner = self.pick(origin, drg, knows, "attachment or VCN")
        doc = dict(self.engines[owner].trace(origin, src, dst, inner_src=inner_src, inner_dst=inner_dst,
                                             peers=self.engines))  # across RPCs into the other DRGs (R97)
        return self._tag(doc, owner)


def drgs_from_design(design: Design) -> Drgs:
    """Fresh engines for a (validated) design, its RPCs settled."""
    drgs = Drgs({c.drg.name: RouteEngine(build_effective(c)) for c in configs_of(design)}, is_multi(design))
    drgs.fabric.settle()
    return drgs


def drgs_from_files(config_path: str | Path, learned_path: str | Path | None = None) -> Drgs:
    """The offline mode of a single- or multi-DRG file: validated (ConfigError with every problem), every
    engine built, the learned file replayed into the DRG of each listed attachment, RPCs settled."""
    design = load_design(config_path)
    require_valid_design(design, str(config_path))
    drgs = Drgs({c.drg.name: RouteEngine(build_effective(c)) for c in configs_of(design)}, is_multi(design))
    if learned_path is not None:
        learned = load_learned(learned_path)
        for d, part in _split(drgs, learned, str(learned_path)).items():
            apply_learned(drgs.engines[d], part, str(learned_path), emulated=set(drgs.engines))
    drgs.fabric.settle()
    return drgs


def _split(drgs: Drgs, learned: dict[str, Any], filename: str) -> dict[str, dict[str, Any]]:
    """The learned file's entries by the DRG that holds each attachment (names are unique in a file)."""
    if not drgs.multi:
        return {next(iter(drgs.engines)): learned}
    parts: dict[str, dict[str, Any]] = {d: {} for d in drgs.engines}
    problems = []
    for name, routes in learned.items():
        base = name.removesuffix(".ipv6")  # a dual-stack VC's IPv6 session (R53)
        owner = next((d for d, e in drgs.engines.items() if e.config.find_attachment(base) is not None), None)
        if owner is None:
            names = [a.name for e in drgs.engines.values() for a in e.config.attachments]
            problems.append(Problem(filename, name, None, "reference", f"{name} cannot learn routes: no such "
                                    "attachment in any DRG of the file",
                                    f"list attachments of the config{did_you_mean(name, names)}"))
        else:
            parts[owner][name] = routes
    if problems:
        raise ConfigError(problems)
    return parts


def engine_from_files(config_path: str | Path, learned_path: str | Path | None = None) -> RouteEngine:
    """The offline (what-if) engine of ``drg routes/advertised/trace --config F [--learned L]``: the file
    is validated (ConfigError with every problem), then the learned file is replayed (``engine/offline.py``)."""

    config = load_config(config_path)
    require_valid(config, str(config_path))
    engine = RouteEngine(build_effective(config))
    if learned_path is not None:
        apply_learned(engine, load_learned(learned_path), str(learned_path))
    return engine
