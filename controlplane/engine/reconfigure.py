"""Differences between two engine states, for ``RouteEngine.apply_config``.

How it works: ``apply_config`` builds the new state from scratch (it is rare) and this module compares
old and new by *name*, since attachment indexes may move between configurations: every destination
of every table (union of both sides; rule sets compared by next-hop name, provenance, AS path and
flags, or directly when both sides number attachments alike), tunnel states, and each BGP session's
Adj-RIB-Out (when the attributes of a session change - DRG ASN or Oracle address - everything is
announced again). The result is an ordinary :class:`~controlplane.engine.changes.Changes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from controlplane.config.effective import EffectiveConfig
from controlplane.config.schema import AttachmentType
from controlplane.engine.changes import AdvertDelta, Changes, PrefixLimitExceeded, TableDelta, TunnelTransition
from controlplane.engine.rules import NO_RULES, RuleContext, RuleSet
from controlplane.engine.tables import DYNAMIC_RULE_LIMIT


class RouteEngine(Protocol):
    """What this module reads of an engine (``routing.RouteEngine``; a protocol keeps imports one-way)."""

    config: EffectiveConfig
    rules_ctx: RuleContext

    def keys(self, t: int, fam: int) -> list[int]: ...
    def rules(self, t: int, fam: int, key: int) -> RuleSet: ...
    def same_table(self, other: Any, t: int, t_other: int) -> bool: ...
    def dynamic_rule_count(self) -> int: ...
    def tunnel_state(self, name: str) -> tuple[bool, str | None]: ...
    def advertised_keys(self, a: int, families: Sequence[int] = (1, 2)) -> list[list[int]]: ...
    def excluded(self, a: int) -> frozenset[int]: ...


def _table_deltas(old: RouteEngine, new: RouteEngine) -> tuple[list[TableDelta], set[str]]:
    """The deltas, and the names of the tables known to be unchanged."""
    same_space = (old.rules_ctx.names, old.rules_ctx.provenance, old.rules_ctx.blackholes) == \
        (new.rules_ctx.names, new.rules_ctx.provenance, new.rules_ctx.blackholes)
    old_tables = {t.name: i for i, t in enumerate(old.config.route_tables)}
    new_tables = {t.name: i for i, t in enumerate(new.config.route_tables)}
    names = list(new_tables) + [name for name in old_tables if name not in new_tables]
    deltas: list[TableDelta] = []
    unchanged: set[str] = set()
    for name in names:
        ot, nt = old_tables.get(name), new_tables.get(name)
        if same_space and ot is not None and nt is not None and old.same_table(new, ot, nt):
            unchanged.add(name)
            continue
        table = new.config.route_tables[nt] if nt is not None else old.config.route_tables[ot or 0]
        delta = TableDelta(name, table.id, old.rules_ctx, new.rules_ctx)
        for fam in (0, 1):
            keys, before, after = delta.lists(fam)
            old_keys = old.keys(ot, fam) if ot is not None else []
            new_keys = new.keys(nt, fam) if nt is not None else []
            for key in sorted(set(old_keys).union(new_keys)):
                b = old.rules(ot, fam, key) if ot is not None else NO_RULES
                a = new.rules(nt, fam, key) if nt is not None else NO_RULES
                if b == a if same_space else old.rules_ctx.canonical(b) == new.rules_ctx.canonical(a):
                    continue
                keys.append(key)
                before.append(b)
                after.append(a)
        if len(delta):
            deltas.append(delta)
        else:
            unchanged.add(name)
    return deltas, unchanged


def _tunnel_transitions(old: RouteEngine, new: RouteEngine) -> list[TunnelTransition]:
    def states(engine: RouteEngine) -> dict[str, tuple[bool, str | None]]:
        return {a.name: engine.tunnel_state(a.name) for a in engine.config.attachments
                if a.type == AttachmentType.IPSEC_TUNNEL}

    before, after = states(old), states(new)
    result = [TunnelTransition(name, up, reason) for name, (up, reason) in after.items()
              if name not in before or before[name][0] != up]
    result.extend(TunnelTransition(name, False, "the tunnel was removed from the configuration")
                  for name, (up, _) in before.items() if up and name not in after)
    return result


def _advert_deltas(old: RouteEngine, new: RouteEngine, unchanged: set[str]) -> list[AdvertDelta]:
    Profile = tuple[str, str, tuple[int, ...], bool, str, tuple[int, ...], frozenset[str]]

    def profile(engine: RouteEngine) -> dict[str, Profile]:
        names = engine.rules_ctx.names
        return {s.session: (s.customer_ip, s.oracle_ip, (engine.config.asn,), a.advertises, a.route_table,
                            s.families, frozenset(names[i] for i in engine.excluded(a.index)))
                for a in engine.config.attachments for s in a.sessions}

    old_profile, new_profile = profile(old), profile(new)
    same = {name for name, p in new_profile.items() if old_profile.get(name) == p and p[4] in unchanged}

    def sessions(engine: RouteEngine) -> dict[str, tuple[tuple[str, str, tuple[int, ...]], list[set[int]]]]:
        result: dict[str, tuple[tuple[str, str, tuple[int, ...]], list[set[int]]]] = {}
        for a in engine.config.attachments:
            for s in a.sessions:
                if s.session not in same:
                    attrs = (s.customer_ip, s.oracle_ip, (engine.config.asn,))
                    result[s.session] = (attrs, [set(keys) for keys in engine.advertised_keys(a.index, s.families)])
        return result

    before, after = sessions(old), sessions(new)
    deltas: list[AdvertDelta] = []
    for name in sorted(before.keys() | after.keys()):
        old_attrs, old_keys = before.get(name, (None, [set(), set()]))
        new_attrs, new_keys = after.get(name, (None, [set(), set()]))
        attrs = new_attrs or old_attrs
        assert attrs is not None
        resend = old_attrs is not None and new_attrs is not None and old_attrs != new_attrs
        delta = AdvertDelta(name, attrs[0], attrs[1], attrs[2])
        for fam in (0, 1):
            announce = new_keys[fam] if resend else new_keys[fam] - old_keys[fam]
            withdraw = old_keys[fam] - new_keys[fam]
            if announce:
                delta.announce[fam + 1] = sorted(announce)
            if withdraw:
                delta.withdraw[fam + 1] = sorted(withdraw)
        if delta.announce or delta.withdraw:
            deltas.append(delta)
    return deltas


def diff_engines(old: RouteEngine, new: RouteEngine, limits: list[PrefixLimitExceeded]) -> Changes:
    warnings = []
    if new.dynamic_rule_count() > DYNAMIC_RULE_LIMIT >= old.dynamic_rule_count():
        warnings.append(f"the DRG holds {new.dynamic_rule_count()} dynamic route rules, over OCI's limit of "
                        f"{DYNAMIC_RULE_LIMIT} (R15): installed anyway")
    tables, unchanged = _table_deltas(old, new)
    return Changes(tables, _tunnel_transitions(old, new), limits, warnings, _advert_deltas(old, new, unchanged))
