"""What a rule of a DRG route table is, and what it means: compact tuples and their context.

How it works: a rule is a tuple ``(next_hop_index, as_path, flags)``; all rules of one destination in
one table form a *rule set* (static first, then the dynamic candidates in attachment order). Indexes
are attachment numbers of one engine configuration, so a :class:`RuleContext` captured with them turns
them into names, ids and provenance (R16), renders a rule as ``drg routes --json`` shows it, and says
whether a rule set may be advertised (R24, R33, R40). A route learned over an RPC carries its origin's
provenance, network distance and DRG path in its AS path object (:class:`RpcPath`, R98-R103).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AsPath = tuple[int | tuple[int, ...], ...]
Rule = tuple[int, AsPath, int]  # (next-hop attachment index, or -1-i for a blackhole name; path; flags)
RuleSet = tuple[Rule, ...]

CONFLICT = 1  # lost conflict resolution (R17, R27, R32)
ECMP = 2  # active member of an ECMP set of two or more (R30)
BLACKHOLE = 4  # the next-hop attachment does not exist (R17)
STATIC = 8  # a static rule (R14)
BASES = 4096  # rules whose JSON fields a RuleContext keeps (beyond it, it starts over)
EMPTY_PATH: AsPath = ()
PROVENANCE_RANK = {"STATIC": 0, "VCN": 1, "VIRTUAL_CIRCUIT": 2, "IPSEC_TUNNEL": 3}  # R102 step 4
ONPREM_PROVENANCE = ("VIRTUAL_CIRCUIT", "IPSEC_TUNNEL")  # R24, R100: never exported to a VC or IPSec tunnel


class RpcPath(tuple):  # type: ignore[type-arg]  # an AsPath: a tuple of ASNs and AS_SETs
    """The AS path of a route learned over an RPC (unchanged across DRGs, R98), with what else the route
    carries: the provenance of its origin (C1: there is no RPC provenance), its network distance (R99)
    and the DRGs it crossed, origin first (R103). It is an AsPath, so conflict resolution compares its
    length like any other (R102 step 2); equal only to an RpcPath with the same attributes."""

    provenance: str
    distance: int
    drg_path: tuple[str, ...]

    def __new__(cls, path: AsPath, provenance: str, distance: int, drg_path: tuple[str, ...]) -> RpcPath:
        obj = super().__new__(cls, path)
        obj.provenance, obj.distance, obj.drg_path = provenance, distance, drg_path
        return obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RpcPath) and tuple.__eq__(self, other) and (
            self.provenance, self.distance, self.drg_path) == (other.provenance, other.distance, other.drg_path)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((tuple(self), self.provenance, self.distance, self.drg_path))

    def __repr__(self) -> str:
        return f"RpcPath({tuple(self)!r}, {self.provenance!r}, {self.distance}, {self.drg_path!r})"

    def rank(self) -> tuple[int, int]:
        """R102 step 4 among RPC routes: lowest network distance, then STATIC > VCN > VC > IPSec."""
        return self.distance, PROVENANCE_RANK.get(self.provenance, 4)
NO_RULES: RuleSet = ()


def as_path_json(path: AsPath) -> list[Any]:
    """The flat AS list of product.md; an AS_SET is one nested list."""
    for item in path:
        if type(item) is not int:
            return [i if isinstance(i, int) else list(i) for i in path]
    return list(path)


@dataclass(frozen=True)
class RuleContext:
    """What rules of one engine configuration mean: the names, ids and provenance (R16) of attachment
    indexes, which provenances are never exported (R24); so it renders a rule as JSON and says
    whether a rule set is advertisable (R33, R40)."""

    drg: str
    names: tuple[str, ...]
    ids: tuple[str, ...]
    provenance: tuple[str, ...]  # VCN, VIRTUAL_CIRCUIT, IPSEC_TUNNEL or LOOPBACK (R16)
    blocked: tuple[bool | None, ...]  # R24: provenance VC/IPSec is never exported over BGP; None: per route (RPC)
    blackholes: tuple[str, ...]  # names of static next hops that do not exist
    _bases: dict[Rule, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def next_hop(self, index: int) -> str:
        return self.names[index] if index >= 0 else self.blackholes[-1 - index]

    def next_hop_id(self, index: int) -> str:
        if index >= 0:
            return self.ids[index]
        return f"ocid1.drgattachment.emu.{self.drg}.{self.blackholes[-1 - index]}"

    def rule_json(self, destination: str, rule: Rule) -> dict[str, Any]:
        """One rule in the shape of ``drg routes --json``: a rule's fields after the destination are kept
        per rule (a bulk change renders thousands of destinations of one rule), nested lists shared."""
        base = self._bases.get(rule)
        if base is None:
            _, path, flags = rule
            if isinstance(path, RpcPath) and not flags & STATIC:  # not cached: its fields are not its hash
                return self._rpc_rule_json(destination, rule, path)
            if len(self._bases) >= BASES:
                self._bases.clear()
            base = self._bases[rule] = self._fields_after_destination(rule)
        return {"destination": destination, **base}

    def _fields_after_destination(self, rule: Rule) -> dict[str, Any]:
        index, path, flags = rule
        static = bool(flags & STATIC)
        return {"destinationType": "CIDR_BLOCK", "nextHop": self.next_hop(index),
                "nextHopDrgAttachmentId": self.next_hop_id(index), "routeType": "STATIC" if static else "DYNAMIC",
                "routeProvenance": "STATIC" if static else self.provenance[index], "asPath": as_path_json(path),
                "isConflict": bool(flags & CONFLICT), "isEcmp": bool(flags & ECMP),
                "isBlackhole": bool(flags & BLACKHOLE)}

    def _rpc_rule_json(self, destination: str, rule: Rule, path: RpcPath) -> dict[str, Any]:
        """A rule learned over an RPC: the provenance of its origin (C1, R98), its network distance (R99)
        and DRG path (R103) - emulator fields, not in OCI's API."""
        index, _, flags = rule
        return {"destination": destination, "destinationType": "CIDR_BLOCK", "nextHop": self.next_hop(index),
                "nextHopDrgAttachmentId": self.next_hop_id(index), "routeType": "DYNAMIC",
                "routeProvenance": path.provenance, "asPath": as_path_json(path),
                "isConflict": bool(flags & CONFLICT), "isEcmp": bool(flags & ECMP), "isBlackhole": False,
                "networkDistance": path.distance, "drgPath": list(path.drg_path)}

    def rule_keys(self, rules: RuleSet) -> dict[tuple[str, str], tuple[Any, ...]]:
        """A rule set keyed as ``rule_changes`` keys it - (next hop, route type) - with every value its JSON
        depends on, so two rule sets compare as their JSON would, without building it."""
        return {(self.next_hop(i), "STATIC" if f & STATIC else "DYNAMIC"):
                (self.next_hop_id(i), self.provenance[i] if i >= 0 else None, p, f,
                 (p.provenance, p.distance, p.drg_path) if isinstance(p, RpcPath) else None)
                for i, p, f in rules}

    def advertisable(self, rules: RuleSet, excluded: frozenset[int] = frozenset()) -> bool:
        """R33 + R24: an active, non-blackhole rule whose provenance is not VIRTUAL_CIRCUIT/IPSEC_TUNNEL
        (for a route learned over an RPC, the provenance it carries: R100), and whose next hop is not
        ``excluded`` (R40: another VC's loopback headends)."""
        for index, path, flags in rules:
            if flags & (CONFLICT | BLACKHOLE) or index in excluded:
                continue
            blocked = self.blocked[index] if index >= 0 else False
            if blocked is None:
                blocked = isinstance(path, RpcPath) and path.provenance in ONPREM_PROVENANCE
            if flags & STATIC or not blocked:
                return True
        return False

    def canonical(self, rules: RuleSet) -> tuple[tuple[str, str, AsPath, int], ...]:
        """A rule set with names instead of indexes, to compare across configurations."""
        return tuple((self.next_hop(i), "STATIC" if f & STATIC else self.provenance[i], p, f)
                     for i, p, f in rules)
