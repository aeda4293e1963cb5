"""The route engine: inputs from BGP sessions and configuration, outputs as Changes, and the queries.

How it works (oci-drg-semantics.md section 13). :class:`RouteEngine` builds on the table store of
``engine/tables.py`` (offers per attachment, candidates per table and prefix, incremental conflict resolution)
and adds what depends on sessions: ``announce`` applies R28 to the AS path as the peer sent it (a VC's
as sent, one Oracle private ASN prepended on a BGP tunnel; a STATIC tunnel's configured routes get three)
and enforces the per-AFI prefix limits (R58, R64: the first prefix over the limit is reported and the
session's routes are dropped); ``withdraw``, ``session_down`` and ``set_session_established`` remove
or keep what a session taught. A tunnel over FastConnect is UP only while its VC's session is
Established and the VC's loopback table has a longest-prefix-match route to the CPE address (R47); when
it goes down, its routes go. VCN routes and loopback headends come from the configuration (R22).

Every mutating call returns a :class:`~controlplane.engine.changes.Changes` (table diffs, advertisement diffs
per BGP session, tunnel transitions, prefix-limit events, R15 warnings). ``apply_config`` rebuilds
from scratch, carrying sessions and learned routes over, and diffs old against new by name
(``engine/reconfigure.py``). Queries render product.md's JSON: ``route_table``, ``advertised``, ``trace``
(``engine/trace.py``, ``engine/vcn_walk.py``). ``engine/drgs.py`` builds engines from files (the offline mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.config.effective import EffAttachment, EffBgp, EffectiveConfig, loopback_table_name
from controlplane.config.schema import AttachmentType
from controlplane.engine.bulk import Bulk
from controlplane.engine.changes import (
    AdvertDelta,
    ChangeBuilder,
    Changes,
    PrefixLimitExceeded,
    TableDelta,
    TunnelTransition,
)
from controlplane.engine.offered import offered_json
from controlplane.engine.reconfigure import diff_engines
from controlplane.engine.rpc import RpcStore
from controlplane.engine.rules import BLACKHOLE, CONFLICT, EMPTY_PATH, NO_RULES, AsPath
from controlplane.engine.tables import DYNAMIC_RULE_LIMIT, IPSEC, RPC, VC, Offers, family
from controlplane.engine.trace import trace as walk
from controlplane.prefix import covering_keys, parse_address
from controlplane.prefix import format_prefix as format_key

__all__ = ["DYNAMIC_RULE_LIMIT", "AdvertDelta", "Changes", "Lookup", "PrefixLimitExceeded", "RouteEngine",
           "TableDelta", "TunnelTransition"]

Carry = dict[int, tuple[int, Offers]]  # attachment -> (established family bits, offers)


@dataclass(frozen=True)
class Lookup:
    """Longest-prefix match in one table (R12, R26): the prefix and its active next hops."""

    prefix: str
    next_hops: tuple[str, ...]
    blackhole: bool


PATH_CACHE = 65_536  # distinct AS paths interned before the cache starts over


class RouteEngine(RpcStore):
    """DRG route tables, advertisements and tunnel states for one effective configuration."""

    def __init__(self, config: EffectiveConfig) -> None:
        self._setup(config)
        self._start({})

    # ------------------------------------------------------------------ set-up

    def _setup(self, cfg: EffectiveConfig) -> None:
        """Tables (``engine/tables.py``), then sessions, prefix limits (R58, R64) and tunnels (R47)."""
        self._setup_tables(cfg)
        atts = cfg.attachments
        self._learns = [a.speaks_bgp for a in atts]
        # Sessions by name (a dual-stack VC has two, R53): attachment index and the family bits it carries.
        self._sessions: dict[str, tuple[int, int]] = {}
        self._max: list[tuple[int, int]] = []
        for a in atts:
            limits = [0, 0]
            for session in reversed(a.sessions):  # the session that carries a family sets its limit
                self._sessions[session.session] = (a.index, sum(1 << (afi - 1) for afi in session.families))
                for afi in session.families:
                    limits[afi - 1] = session.max_prefixes[afi - 1]
            if a.bgp is not None:
                limits = [limit or a.bgp.max_prefixes[i] for i, limit in enumerate(limits)]
            self._max.append((limits[0], limits[1]))
        self._established = [0] * len(atts)  # per attachment: bit f set while family f's session is up
        self._vc_of = [-1] * len(atts)
        self._tunnels_of: list[list[int]] = [[] for _ in atts]
        self._cpe: list[tuple[int, int]] = [(0, 0)] * len(atts)
        self._cpe_cover: list[list[int]] = [[] for _ in atts]  # the keys that contain each tunnel's CPE
        self._lb_table = [-1] * len(atts)
        self._tunnel_up = [False] * len(atts)
        self._reason: list[str | None] = [None] * len(atts)
        for tun in atts:
            if tun.type != AttachmentType.IPSEC_TUNNEL or tun.cpe_ip is None:
                continue
            self._cpe[tun.index] = parse_address(tun.cpe_ip)
            self._cpe_cover[tun.index] = covering_keys(*self._cpe[tun.index])
            vc = self._index.get(tun.transport_attachment or "")
            if vc is not None and self._type[vc] == VC:
                self._vc_of[tun.index] = vc
                self._tunnels_of[vc].append(tun.index)
                self._lb_table[tun.index] = self._tindex.get(loopback_table_name(self._names[vc]), -1)
        self._static_path: AsPath = (cfg.vpn_private_asn,) * 3  # R28, R65

    def _start(self, carry: Carry) -> None:
        """Initial state: configuration offers, carried sessions, then tunnel states (R47)."""
        atts = self.config.attachments
        for a in atts:
            if a.type in (AttachmentType.VCN, AttachmentType.LOOPBACK):
                for afi, key in a.offers:
                    self._offers[a.index][family(afi)][key] = EMPTY_PATH
            elif a.type == AttachmentType.IPSEC_TUNNEL and self._vc_of[a.index] < 0:  # over the internet: always up
                self._tunnel_up[a.index] = True
                self._start_tunnel(a.index, carry)
            elif a.type == AttachmentType.REMOTE_PEERING_CONNECTION:  # an external peer's offers (R109, R110)
                self._offers[a.index] = self._rpc_paths(a.index, a.rpc_offers)
        for a_index, (established, offers) in carry.items():
            if self._type[a_index] == VC:
                self._established[a_index] = established
                self._offers[a_index] = [dict(offers[0]), dict(offers[1])]
            elif self._type[a_index] == RPC:  # a peer DRG's export (R109)
                self._offers[a_index] = [dict(offers[0]), dict(offers[1])]
        self._rebuild()
        started = False
        for a in atts:
            if self._vc_of[a.index] >= 0:
                up, self._reason[a.index] = self._tunnel_condition(a.index)
                self._tunnel_up[a.index] = up
                started = (up and self._start_tunnel(a.index, carry)) or started
        if started:
            self._rebuild()

    def _start_tunnel(self, t: int, carry: Carry) -> bool:
        """Offers of a tunnel that is up: its static routes (R65) or carried BGP routes."""
        if not self._learns[t]:
            for afi, key in self.config.attachments[t].offers:
                self._offers[t][family(afi)][key] = self._static_path
            return bool(self.config.attachments[t].offers)
        if t in carry:
            self._established[t], offers = carry[t]
            self._offers[t] = [dict(offers[0]), dict(offers[1])]
            return True
        return False

    # ------------------------------------------------------------------ sessions and tunnels

    def _drop(self, a: int, b: ChangeBuilder, bits: int = 3) -> None:
        """A session of ``a`` (the families in ``bits``) is not Established: what it taught goes."""
        self._established[a] &= ~bits
        for fam in (0, 1):
            if not bits & (1 << fam):
                continue
            keys = list(self._offers[a][fam])
            if keys:
                self._remove(a, fam, keys, b, whole=True)
        self._eval_tunnels(a, b)

    def _tunnel_condition(self, t: int) -> tuple[bool, str | None]:
        """R47: UP iff the VC's session is Established and its loopback table routes to the CPE."""
        vc = self._vc_of[t]
        if vc < 0:
            return True, None
        vc_name = self._names[vc]
        if not self.config.attachments[vc].advertises:  # R10 + R40: the headend is never advertised
            headend = self.config.attachments[t].oracle_tunnel_ip
            return False, (f"{vc_name} has export_distribution none: it advertises nothing, so on-premises "
                           f"never learns headend {headend} and IKE cannot reach it (R40, R10)")
        if not self._established[vc]:
            return False, f"the BGP session of {vc_name} is not Established: the tunnel rides on it (R47)"
        afi = self._cpe[t][0]
        lb = self._lb_table[t]
        if lb >= 0 and self._holds_any(lb, family(afi), self._cpe_cover[t]):
            return True, None
        cpe = self.config.attachments[t].cpe_ip
        host = "/32 or /30" if afi == 1 else "/128"
        return False, f"no route to CPE {cpe} over {vc_name}: advertise it as {host} over the VC (R47)"

    def _eval_tunnels(self, vc: int, b: ChangeBuilder) -> None:
        for t in self._tunnels_of[vc]:
            up, self._reason[t] = self._tunnel_condition(t)
            if up == self._tunnel_up[t]:
                continue
            b.phases += 1
            self._tunnel_up[t] = up
            b.tunnels.append(TunnelTransition(self._names[t], up, self._reason[t]))
            if up and not self._learns[t]:
                for fam in (0, 1):
                    keys = [key for afi, key in self.config.attachments[t].offers if afi == fam + 1]
                    if keys:
                        self._insert(t, fam, keys, self._static_path, b)
            elif not up:
                self._established[t] = 0
                for fam in (0, 1):
                    keys = list(self._offers[t][fam])
                    if keys:
                        self._remove(t, fam, keys, b, whole=True)

    # ------------------------------------------------------------------ inputs

    def _learner(self, attachment: str) -> int:
        """The attachment of a session, named by the attachment or by the session (``att.ipv6``)."""
        return self._session(attachment)[0]

    def _session(self, name: str) -> tuple[int, int]:
        """(attachment index, family bits) of a session; an attachment name stands for all its sessions."""
        a = self._index.get(name)
        if a is None:
            found = self._sessions.get(name)
            if found is None:
                raise KeyError(f"unknown attachment {name!r}")
            return found
        if not self._learns[a]:
            raise ValueError(f"{name} has no BGP session (VCN, LOOPBACK or STATIC tunnel: R22, R38)")
        if self.config.attachments[a].bgp6 is not None:  # a dual-stack VC: the name is its IPv4 session
            return self._sessions[name]
        return a, 3

    def _import_path(self, a: int, as_path: Sequence[int | Sequence[int]]) -> AsPath:
        """R28: a VC's path as sent; a BGP tunnel's with the Oracle private ASN prepended."""
        path = tuple(x if isinstance(x, int) else tuple(x) for x in as_path)
        if self._type[a] == IPSEC:
            path = (self.config.vpn_private_asn, *path)
        found = self._paths.get(path)  # one tuple per path: bulk rule sets share it (cheap counts, less memory)
        if found is None:
            if len(self._paths) >= PATH_CACHE:
                self._paths.clear()
            found = self._paths[path] = path
        return found

    def announce(self, attachment: str, afi: int, keys: Sequence[int],
                 as_path: Sequence[int | Sequence[int]]) -> Changes:
        """Routes a peer announced (AS path as sent, AS_SET as a nested tuple)."""
        a = self._learner(attachment)
        fam = family(afi)
        b = self._builder()
        if self._type[a] == IPSEC and not self._tunnel_up[a]:
            return b.finish()  # nothing is learned over a tunnel that is down (R47)
        offers = self._offers[a][fam]
        limit = self._max[a][fam]
        if len(offers) + len(keys) > limit:  # R58/R64
            new = [k for k in dict.fromkeys(keys) if k not in offers]
            if len(offers) + len(new) > limit:
                first = new[limit - len(offers)]
                b.limits.append(PrefixLimitExceeded(attachment, afi, limit, format_key(afi, first)))
                b.phases += 1
                with Bulk(len(offers)):
                    self._drop(a, b, self._session(attachment)[1])
                return b.finish()
        with Bulk(len(keys)):
            self._insert(a, fam, keys, self._import_path(a, as_path), b)
            self._eval_tunnels(a, b)
        return b.finish()

    def withdraw(self, attachment: str, afi: int, keys: Sequence[int]) -> Changes:
        a = self._learner(attachment)
        b = self._builder()
        with Bulk(len(keys)):
            self._remove(a, family(afi), keys, b)
            self._eval_tunnels(a, b)
        return b.finish()

    def set_session_established(self, attachment: str, up: bool) -> Changes:
        """A session reached or left Established; leaving it withdraws what it taught (and for a VC,
        its tunnels may go down, R47). A tunnel that is down cannot become Established."""
        a, bits = self._session(attachment)
        b = self._builder()
        if not up:
            with Bulk(self.received_count(attachment)):
                self._drop(a, b, bits)
        elif self._established[a] & bits != bits and (self._type[a] != IPSEC or self._tunnel_up[a]):
            self._established[a] |= bits
            self._eval_tunnels(a, b)
        return b.finish()

    def session_down(self, attachment: str) -> Changes:
        """Withdraw everything learned on the session (it is no longer Established)."""
        return self.set_session_established(attachment, False)

    def apply_config(self, config: EffectiveConfig) -> Changes:
        """Switch to a new (validated) configuration, keeping sessions and learned routes where the
        attachment still exists with a BGP session, and return the exact differences."""
        new = RouteEngine.__new__(RouteEngine)
        new._setup(config)
        limits: list[PrefixLimitExceeded] = []
        carry: Carry = {}
        for a in config.attachments:
            old = self._index.get(a.name)
            if old is not None and self._carries_rpc(old, a):
                carry[a.index] = (0, self._offers[old])
                continue
            if old is None or not self._learns[old] or not new._learns[a.index] or \
                    self._type[old] != new._type[a.index]:
                continue
            if a.type == AttachmentType.IPSEC_TUNNEL and not self._tunnel_up[old]:
                continue
            offers = self._offers[old]
            if a.type == AttachmentType.IPSEC_TUNNEL and config.vpn_private_asn != self.config.vpn_private_asn:
                asn = config.vpn_private_asn
                offers = [_reprefix(offers[0], asn), _reprefix(offers[1], asn)]
            bits = 3 if a.bgp is None else sum(1 << (afi - 1) for s in a.sessions for afi in s.families)
            offers = [offers[fam] if bits & (1 << fam) else {} for fam in (0, 1)]  # a removed session's
            over = [(fam, len(offers[fam]), new._max[a.index][fam]) for fam in (0, 1)
                    if len(offers[fam]) > new._max[a.index][fam]]
            if over:
                fam, _, limit = over[0]
                first = list(offers[fam])[limit]
                limits.append(PrefixLimitExceeded(a.name, fam + 1, limit, format_key(fam + 1, first)))
                continue
            carry[a.index] = (self._established[old] & bits, offers)
        with Bulk(sum(len(o[0]) + len(o[1]) for o in self._offers)):
            new._start(carry)
            changes = diff_engines(self, new, limits)
        new.generation = self.generation + 1
        self.__dict__.update(new.__dict__)
        return changes

    def _carries_rpc(self, old: int, att: EffAttachment) -> bool:
        """A peer DRG's export stays on a same-peer, still PEERED RPC until the peer sends it again (R109)."""
        before = self.config.attachments[old]
        return self._type[old] == RPC and att.rpc_peer is not None and (att.rpc_peer, att.peered) == (
            before.rpc_peer, before.peered) and att.type == AttachmentType.REMOTE_PEERING_CONNECTION and att.peered

    def refresh(self) -> Changes:
        """The whole current state as changes from an empty DRG - every rule added, every advertisement
        announced, every tunnel's state - for a daemon's first publication."""
        b = self._builder()
        for t in sorted(set(self._leader)):  # one store per group of tables
            delta = b.delta(t)
            for fam in (0, 1):
                keys, before, after = delta.lists(fam)
                for key in self.keys(t, fam):
                    keys.append(key)
                    before.append(NO_RULES)
                    after.append(self.rules(t, fam, key))
        b.tunnels = [TunnelTransition(self._names[t], self._tunnel_up[t], self._reason[t])
                     for t in range(len(self._names)) if self._type[t] == IPSEC]
        return b.finish()

    # ------------------------------------------------------------------ queries

    def table_head(self, name: str) -> dict[str, Any]:
        """A table of ``drg routes --json`` without its ``rules`` (the streamed dump adds them, engine/dump.py)."""
        table = self.config.route_tables[self.table_index(name)]
        return {"name": table.name, "id": table.id, "isEcmpEnabled": table.ecmp, "importDistribution":
                table.import_distribution, "attachments": [a.name for a in self.config.attachments_using(table.name)]}

    def route_table(self, name: str) -> dict[str, Any]:
        """One table in the shape of ``drg routes --json`` (every candidate rule listed, R17)."""
        t, rule_json = self.table_index(name), self.rules_ctx.rule_json
        rules: list[dict[str, Any]] = []
        for fam in (0, 1):
            for key in self.keys(t, fam):
                destination = format_key(fam + 1, key)
                rules.extend(rule_json(destination, rule) for rule in self.rules(t, fam, key))
        return {**self.table_head(name), "rules": rules}

    def route_tables(self) -> dict[str, Any]:
        return {"routeTables": [self.route_table(t.name) for t in self.config.route_tables]}

    def table_for_attachment(self, name: str) -> str:
        return self.config.attachment(name).route_table

    def _find(self, attachment_or_neighbor: str) -> tuple[int, EffBgp | None]:
        """An attachment (its first session), a session name (``att.ipv6``) or a neighbor address."""
        name = attachment_or_neighbor
        a = self._index.get(name)
        if a is not None:
            return a, self.config.attachments[a].bgp
        for att in self.config.attachments:
            for session in att.sessions:
                if name in (session.session, session.customer_ip, session.customer_interface):
                    return att.index, session
        raise KeyError(f"no attachment or BGP neighbor {name!r}")

    def advertised_keys(self, a: int, families: Sequence[int] = (1, 2)) -> list[list[int]]:
        """Per family, the keys the DRG advertises over attachment ``a`` (R23, R24, R33, R38, R10, R40);
        empty for the families not in ``families`` (a VC session carries its own family only, R53)."""
        if not self.config.attachments[a].advertises:
            return [[], []]
        t = self._table_of[a]
        advertisable = self.rules_ctx.advertisable
        excluded = self._excluded[a]
        return [[key for key in self.keys(t, fam) if advertisable(self.rules(t, fam, key), excluded)]
                if fam + 1 in families else [] for fam in (0, 1)]

    def adj_rib_out(self, attachment_or_neighbor: str) -> AdvertDelta:
        """The whole Adj-RIB-Out of a session as keys per AFI with their attributes (R36): what to send
        when the session reaches Established. Empty for sessions that advertise nothing (R10, R38)."""
        a, session = self._find(attachment_or_neighbor)
        if session is None:
            return AdvertDelta(self._names[a], "", "", (self.config.asn,))
        delta = AdvertDelta(session.session, session.customer_ip, session.oracle_ip, (self.config.asn,))
        for fam, keys in enumerate(self.advertised_keys(a, session.families)):
            if keys:
                delta.announce[fam + 1] = keys
        return delta

    def advertised(self, attachment_or_neighbor: str) -> dict[str, Any]:
        """Adj-RIB-Out of one session, as ``drg advertised --json`` (AS path [drg asn], R36). A session
        that is not Established advertises nothing: ``routes`` is empty and ``wouldAdvertise`` lists
        what it would send once Established. ``state`` is Established or Idle here; the daemon
        replaces it with the session's RFC 4271 state."""
        a, session = self._find(attachment_or_neighbor)
        if self._type[a] == RPC:
            return self.rpc_advertised(self._names[a])  # R97: what crosses the RPC
        att = self.config.attachments[a]
        routes: list[dict[str, Any]] = []
        bits = 0
        if session is not None:
            bits = sum(1 << (afi - 1) for afi in session.families)
            for fam, keys in enumerate(self.advertised_keys(a, session.families)):
                routes.extend({"prefix": format_key(fam + 1, key), "asPath": [self.config.asn],
                               "nextHop": session.oracle_ip} for key in keys)
        neighbor = session.customer_ip if session else None
        established = self._learns[a] and bool(self._established[a] & bits)
        doc: dict[str, Any] = {"attachment": att.name, "neighbor": neighbor,
                               "state": ("Established" if established else "Idle") if self._learns[a] else None,
                               "routes": routes if established else []}
        if session is not None and session.session != att.name:
            doc["session"] = session.session
        if not established and self._learns[a]:
            doc["wouldAdvertise"] = routes
        return doc

    def excluded(self, a: int) -> frozenset[int]:
        """Next hops whose rules are never advertised over attachment ``a`` (R40)."""
        return self._excluded[a]

    def tunnel_state(self, name: str) -> tuple[bool, str | None]:
        a = self._index.get(name)
        if a is None or self._type[a] != IPSEC:
            raise KeyError(f"{name!r} is not an IPSec tunnel attachment")
        return self._tunnel_up[a], self._reason[a]

    def is_established(self, attachment: str) -> bool:
        """Whether the session (or, by attachment name, any session of it) is Established."""
        a, bits = self._session(attachment)
        return bool(self._established[a] & bits)

    def received_count(self, attachment: str) -> int:
        """prefixesReceived of a session."""
        a, bits = self._session(attachment)
        return sum(len(self._offers[a][fam]) for fam in (0, 1) if bits & (1 << fam))

    def learned_routes(self, attachment: str) -> list[tuple[int, int, AsPath]]:
        """(afi, key, AS path as the peer sent it) of every route learned on a session."""
        a = self._learner(attachment)
        strip = 1 if self._type[a] == IPSEC else 0
        return [(fam + 1, key, path[strip:]) for fam in (0, 1) for key, path in self._offers[a][fam].items()]

    def offered(self, attachment: str) -> dict[str, Any]:
        """What an attachment offers for import, as ``drg offered --json`` (R22, R28, R45, R78-R81)."""
        a = self._index.get(attachment)
        if a is None:
            raise KeyError(f"unknown attachment {attachment!r}")
        offers = [(fam + 1, key, path) for fam in (0, 1) for key, path in sorted(self._offers[a][fam].items())]
        tables = [self._table_names[t][0] for t in sorted(self._importers[a])]
        return offered_json(self.config.attachments[a], self.config, offers, tables)

    def lookup(self, table: str, address: str) -> Lookup | None:
        """Longest-prefix match among the active rules of ``table`` (R12, R26)."""
        t = self.table_index(table)
        afi, value = parse_address(address)
        fam = afi - 1
        static = self._static[t][fam]
        for key in covering_keys(afi, value):
            if key in static or self._cands(t, fam, key) is not None:
                active = [r for r in self.rules(t, fam, key) if not r[2] & CONFLICT]
                return Lookup(format_key(afi, key), tuple(self.rules_ctx.next_hop(r[0]) for r in active),
                              any(r[2] & BLACKHOLE for r in active))
        return None

    def trace(self, from_attachment: str, src: str, dst: str, inner_src: str | None = None,
              inner_dst: str | None = None, *, peers: Mapping[str, RouteEngine] | None = None,
              onprem_transit_across_rpc: str = "allow") -> dict[str, Any]:
        """Hop-by-hop walk of a packet from an attachment or a VCN (R69), as ``drg trace --json`` (R93);
        into the ``peers`` DRGs (by name) over RPCs, R24 per DRG pass (R90, R101: ``allow`` or ``drop``)."""
        return walk(self, from_attachment, src, dst, inner_src, inner_dst, peers=peers,
                    onprem_transit_across_rpc=onprem_transit_across_rpc)


def _reprefix(offers: dict[int, AsPath], asn: int) -> dict[int, AsPath]:
    memo: dict[int, AsPath] = {}
    result: dict[int, AsPath] = {}
    for key, path in offers.items():
        new = memo.get(id(path))
        if new is None:
            new = memo[id(path)] = (asn, *path[1:])
        result[key] = new
    return result
