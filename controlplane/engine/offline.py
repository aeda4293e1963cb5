"""Offline mode: replay a "learned" file into a route engine (product.md, ``--learned FILE``).

How it works: the file says what each BGP session offers (by attachment, or ``<vc>.ipv6`` for a dual-stack
VC's IPv6 session), as if its peer had announced it. Sessions of
virtual circuits listed there count as Established and announce first; then each listed tunnel counts
as Established only if it is up, which follows from the VC's routes exactly as in the daemon (R47).
A route without ``as_path`` is sent as ``[customer_asn]``, as an eBGP peer would; routes sharing an
AS path are announced in one call, so they share one path tuple. A route whose path holds the DRG's own
AS is skipped, as the daemon's sessions drop it (RFC 4271 s9.1.2).

An RPC attachment whose peer is not emulated here (``peer: external``, or a DRG of another daemon) may
be listed too: its routes are what the peer DRG exports over the RPC, each with the provenance of its
origin (default VCN), its AS path (default empty: R98 leaves it unchanged) and its network distance
(default 1), and they replace the file's ``offered_routes`` (R109). An RPC whose peer is a DRG of the
same file gets its routes from that DRG, never from the learned file.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from controlplane.config.effective import EffectiveConfig, RpcOffer
from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import AttachmentType, LearnedRoute
from controlplane.config.validate import did_you_mean
from controlplane.engine.rules import AsPath
from controlplane.prefix import parse_prefix


class RouteEngine(Protocol):
    """What replaying reads and calls (``routing.RouteEngine``; a protocol keeps imports one-way)."""

    config: EffectiveConfig

    def tunnel_state(self, name: str) -> tuple[bool, str | None]: ...
    def set_session_established(self, attachment: str, up: bool) -> Any: ...
    def announce(self, attachment: str, afi: int, keys: Sequence[int],
                 as_path: Sequence[int | Sequence[int]]) -> Any: ...
    def rpc_update(self, attachment: str, routes: Sequence[RpcOffer]) -> Any: ...


def _problems(engine: RouteEngine, learned: dict[str, list[LearnedRoute]], filename: str,
              emulated: Collection[str]) -> list[Problem]:
    problems = []
    bgp_names = [s.session for _, s in engine.config.bgp_sessions()]
    six = {s.session: a for a in engine.config.attachments for s in a.sessions[1:]}  # <vc>.ipv6 (R53)
    for name in learned:
        att = engine.config.find_attachment(name) or six.get(name)
        if att is not None and att.type == AttachmentType.REMOTE_PEERING_CONNECTION:
            if att.rpc_peer is not None and att.rpc_peer[0] in emulated:
                problems.append(Problem(filename, name, None, "R109", f"{name} learns its routes from "
                                        f"{att.rpc_peer[0]}, a DRG of the same file", f"remove {name} from the "
                                        "learned file, or set its peer to external in the configuration"))
            continue
        if att is None or not att.speaks_bgp:
            why = "no such attachment" if att is None else f"{att.type} {name} has no BGP session (R22, R38)"
            problems.append(Problem(filename, name, None, "reference", f"{name} cannot learn routes: {why}",
                                    f"list VIRTUAL_CIRCUIT or BGP IPSEC_TUNNEL attachments of the config, or "
                                    f"an RPC whose peer is external{did_you_mean(name, bgp_names)}"))
            continue
        for index, route in enumerate(learned[name]):
            if route.provenance is not None or route.network_distance is not None:
                problems.append(Problem(filename, name, f"[{index}]", "R109", "provenance and network_distance "
                                        "describe routes offered over an RPC, not BGP routes",
                                        "remove them from this entry"))
    return problems


def _rpc_offers(routes: list[LearnedRoute]) -> list[RpcOffer]:
    """An external RPC peer's export (R97-R99): provenance of the origin, AS path unchanged, distance."""
    return [RpcOffer(*parse_prefix(r.prefix), r.provenance or "VCN",
                     tuple(x if isinstance(x, int) else tuple(x) for x in (r.as_path or [])),
                     r.network_distance or 1) for r in routes]


def apply_learned(engine: RouteEngine, learned: dict[str, list[LearnedRoute]],
                  filename: str = "<learned>", emulated: Collection[str] = ()) -> None:
    """Announce every route of ``learned``; ConfigError names sessions that cannot learn routes.
    ``emulated``: the DRGs of the same file, whose RPC routes are computed rather than read."""
    problems = _problems(engine, learned, filename, emulated)
    if problems:
        raise ConfigError(problems)
    for name, routes in learned.items():
        att = engine.config.find_attachment(name)
        if att is not None and att.type == AttachmentType.REMOTE_PEERING_CONNECTION:
            engine.rpc_update(name, _rpc_offers(routes))
    listed = [(a, s.session) for a in engine.config.attachments for s in a.sessions if s.session in learned]
    for att, session in sorted(listed, key=lambda x: x[0].type != AttachmentType.VIRTUAL_CIRCUIT):  # VCs first: tunnels
        if att.type == AttachmentType.IPSEC_TUNNEL and not engine.tunnel_state(att.name)[0]:
            continue
        engine.set_session_established(session, True)
        groups: dict[tuple[int, AsPath], list[int]] = {}
        default = [att.bgp.customer_asn] if att.bgp is not None else []
        for route in learned[session]:
            afi, key = parse_prefix(route.prefix)
            sent = route.as_path if route.as_path is not None else default
            if any(engine.config.asn == x or (not isinstance(x, int) and engine.config.asn in x) for x in sent):
                continue  # the DRG's own AS in the path: a loop, not installed (RFC 4271 s9.1.2)
            path = tuple(x if isinstance(x, int) else tuple(x) for x in sent)
            groups.setdefault((afi, path), []).append(key)
        for (afi, path), keys in groups.items():
            engine.announce(session, afi, keys, path)
