"""Remote peering (RPC) in the engine: what an RPC attachment offers, what it exports, and DRGs in step.

An RPC attachment offers what the peer DRG exports over its own RPC attachment (R97): the active rules
of that attachment's table, filtered by its export distribution (none -> nothing, R10), only while
both are ``PEERED`` (R110). A route keeps its prefix, AS path (R98) and the provenance of its origin
(C1: a static rule crosses as provenance STATIC); its network distance grows by one per RPC (R99) and
its DRG path by the exporting DRG (R103: exported only while that path has fewer than 4 DRGs; a DRG
ignores a route whose path already holds it). The routes are :class:`~controlplane.engine.changes.RpcPath`
offers, so conflict resolution (R102) and the BGP export filter (R100) read them like any other.

:class:`RpcStore` adds the two operations to the route store; :class:`RpcFabric` keeps the DRGs of one
daemon in step: after any change it pushes the exports of every RPC whose table changed to its peer,
and repeats with what that changed, until nothing changes (a fixed point: the tables are a function of
the configuration and the learned routes, whatever the order of events). Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from controlplane.config.effective import RpcOffer
from controlplane.engine.bulk import Bulk
from controlplane.engine.changes import Changes
from controlplane.engine.rules import BLACKHOLE, CONFLICT, STATIC, AsPath, RpcPath, as_path_json
from controlplane.engine.tables import RPC, TableStore
from controlplane.prefix import format_prefix

MAX_DRG_PATH = 4  # R103: route propagation across more than 4 DRGs is not supported


class RpcStore(TableStore):
    """The RPC operations of a route engine."""

    def _rpc(self, attachment: str) -> int:
        a = self._index.get(attachment)
        if a is None:
            raise KeyError(f"unknown attachment {attachment!r}")
        if self._type[a] != RPC:
            raise ValueError(f"{attachment} is not a REMOTE_PEERING_CONNECTION attachment")
        return a

    def _rpc_paths(self, a: int, routes: Iterable[RpcOffer]) -> list[dict[int, AsPath]]:
        """The offers of RPC ``a`` for ``routes``: nothing unless PEERED (R110); never a route that
        already crossed this DRG (R103)."""
        want: list[dict[int, AsPath]] = [{}, {}]
        if not self.config.attachments[a].peered:
            return want
        me = self.config.drg_name
        for r in routes:
            if me not in r.drg_path:
                want[r.afi - 1][r.key] = RpcPath(r.as_path, r.provenance, r.distance, r.drg_path)
        return want

    def rpc_update(self, attachment: str, routes: Sequence[RpcOffer]) -> Changes:
        """The peer's whole export over this RPC (R97): offers become exactly ``routes``."""
        a = self._rpc(attachment)
        want = self._rpc_paths(a, routes)
        b = self._builder()
        with Bulk(len(routes)):
            for fam in (0, 1):
                have = self._offers[a][fam]
                gone = [k for k in have if k not in want[fam]]
                if gone:
                    self._remove(a, fam, gone, b)
                groups: dict[AsPath, list[int]] = {}
                for key, path in want[fam].items():
                    if have.get(key) != path:
                        groups.setdefault(path, []).append(key)
                for path, keys in groups.items():
                    self._insert(a, fam, keys, path, b)
        return b.finish()

    def rpc_routes(self, attachment: str, afi: int, announced: Sequence[int], path: RpcPath | None,
                   withdrawn: Sequence[int] = ()) -> Changes:
        """Part of the peer's export changed (one UPDATE of an RPC's BGP session, R109): ``withdrawn``
        go, ``announced`` arrive with ``path`` - or go too when ``path`` is None or refused (not PEERED,
        R110; a path already holding this DRG, R103), since a refused route replaces an earlier one."""
        a = self._rpc(attachment)
        fam = afi - 1
        b = self._builder()
        accepted = path is not None and self.config.attachments[a].peered \
            and self.config.drg_name not in path.drg_path
        with Bulk(len(announced) + len(withdrawn)):
            gone = [*withdrawn, *announced] if not accepted else withdrawn
            if gone:
                self._remove(a, fam, gone, b)
            if accepted and announced:
                assert path is not None
                self._insert(a, fam, announced, path, b)
        return b.finish()

    def rpc_export(self, attachment: str, afi: int | None = None,
                   keys: Iterable[int] | None = None) -> list[RpcOffer]:
        """What this DRG sends its peer over RPC ``attachment``: the active rules of its table (static ones
        as provenance STATIC), in table order, while PEERED and exporting (R97, R98, R103, R110). With
        ``afi`` and ``keys``: only those destinations (an incremental export, e.g. of a table delta)."""
        a = self._rpc(attachment)
        att = self.config.attachments[a]
        if not att.export or not att.peered:
            return []
        t, out = self._table_of[a], []
        for fam in (0, 1) if afi is None else (afi - 1,):
            for key in self.keys(t, fam) if keys is None else keys:
                offer = self._export_one(t, fam, key)
                if offer is not None:
                    out.append(offer)
        return out

    def _export_one(self, t: int, fam: int, key: int) -> RpcOffer | None:
        """The offer of destination ``key`` of table ``t`` over an RPC, or None (no active rule, a
        loopback headend, R50, or a DRG path already 4 long, R103)."""
        active = next(((i, p, f) for i, p, f in self.rules(t, fam, key) if not f & (CONFLICT | BLACKHOLE)), None)
        if active is None:
            return None
        me = self.config.drg_name
        index, path, flags = active
        if flags & STATIC:
            offer = RpcOffer(fam + 1, key, "STATIC", (), 1, (me,))
        elif isinstance(path, RpcPath):
            offer = RpcOffer(fam + 1, key, path.provenance, tuple(path), path.distance + 1, (*path.drg_path, me))
        elif self.rules_ctx.provenance[index] == "LOOPBACK":  # R50: headends never cross an RPC
            return None
        else:
            offer = RpcOffer(fam + 1, key, str(self.rules_ctx.provenance[index]), tuple(path), 1, (me,))
        return offer if len(offer.drg_path) < MAX_DRG_PATH else None

    def rpc_advertised(self, attachment: str) -> dict[str, Any]:
        """``drg advertised`` of an RPC attachment: what this DRG exports to its peer (R97-R99, R103, R110),
        each route with the provenance, network distance and DRG path the peer will see."""
        a = self._rpc(attachment)
        att = self.config.attachments[a]
        peer = f"{att.rpc_peer[0]}/{att.rpc_peer[1]}" if att.rpc_peer else "external"
        routes = [{"prefix": format_prefix(o.afi, o.key), "asPath": as_path_json(o.as_path),
                   "provenance": o.provenance, "networkDistance": o.distance, "drgPath": list(o.drg_path)}
                  for o in self.rpc_export(attachment)]
        status = "PEERED" if att.peered else str(getattr(next(x for x in self.config.source.attachments
                                                              if x.name == attachment), "peering_status", ""))
        return {"attachment": attachment, "neighbor": peer, "state": status, "routes": routes}

    def rpc_attachments(self) -> list[str]:
        return [self._names[a] for a in range(len(self._names)) if self._type[a] == RPC]


class RpcFabric:
    """The DRGs of one daemon (or one offline run), joined by their RPCs and kept at a fixed point (R109)."""

    def __init__(self, engines: dict[str, RpcStore]) -> None:
        self.engines = engines
        self.links: dict[tuple[str, str], tuple[str, str]] = {}
        for drg, engine in engines.items():
            for name in engine.rpc_attachments():
                peer = engine.config.attachment(name).rpc_peer
                if peer is not None and peer[0] in engines:
                    self.links[(drg, name)] = peer

    def _tables_of(self, drg: str, changes: Changes) -> set[tuple[str, str]]:
        """The RPC links of ``drg`` whose table ``changes`` touched."""
        touched = {delta.table for delta in changes.tables}
        engine = self.engines[drg]
        return {(drg, name) for (d, name) in self.links if d == drg
                and engine.config.attachment(name).route_table in touched}

    def settle(self, changed: dict[str, Changes] | None = None, limit: int = 10_000) -> dict[str, list[Changes]]:
        """Push exports until nothing changes: every link when ``changed`` is None (start, a new
        configuration), else the links whose table changed. Returns each DRG's resulting Changes."""
        out: dict[str, list[Changes]] = {drg: [] for drg in self.engines}
        todo: deque[tuple[str, str]] = deque(sorted(self.links) if changed is None else sorted(
            {link for drg, ch in changed.items() for link in self._tables_of(drg, ch)}))
        queued = set(todo)
        for _ in range(limit):
            if not todo:
                return out
            link = todo.popleft()
            queued.discard(link)
            peer_drg, peer_att = self.links[link]
            changes = self.engines[peer_drg].rpc_update(peer_att, self.engines[link[0]].rpc_export(link[1]))
            if changes:
                out[peer_drg].append(changes)
                for nxt in sorted(self._tables_of(peer_drg, changes) - queued):
                    todo.append(nxt)
                    queued.add(nxt)
        raise RuntimeError(f"RPC routes did not settle after {limit} exchanges (R103 should bound them)")
