"""Checks across the DRGs of one file: names, remote peering (R94, R103, R108, R109) and sockets.

How it works: :func:`check_file` reads every DRG's configuration of a file (one for a single-DRG
file) and reports what no single DRG can see:

* names: attachment names are unique in the whole file (sessions, ``onprem`` entries and the CLI's
  ``advertised``/``offered``/``trace`` find an attachment by its name alone; DRG names are checked
  when the file is read, ``config/drgs.py``);
* RPC peers (R94): an RPC attachment's ``peer`` names another DRG of the file and an RPC attachment
  of it whose own ``peer`` names this one back (mutual); a DRG not in the file needs ``remote`` (the
  daemon that runs it, R109); ``remote`` toward a DRG of the file is refused (it runs here);
* sockets: BGP sessions of different DRGs at one peer address could not be told apart by the one
  speaker of the daemon;
* warnings: DRGs more than 4 DRGs apart over RPCs exchange no routes (R103); more than 300 RPC
  attachments on one route table (R108, a limit kept from S5, unconfirmed).

Pure: reads configurations, writes problems.
"""

from __future__ import annotations

from collections import deque

from controlplane.config.effective import AUTOGEN_RT_OTHER
from controlplane.config.problems import Problem, Validation, did_you_mean
from controlplane.config.rpc import RemotePeeringAttachment, RpcPeer
from controlplane.config.schema import DrgConfig, IpsecTunnelAttachment, VirtualCircuitAttachment

MAX_DRGS = 4  # R103: route propagation across more than 4 DRGs is not supported
LIMIT_RPC_PER_TABLE = 300  # R108: S5's 300 RPC attachments per DRG route table (warning)


class _Report:
    def __init__(self, file: str, multi: bool) -> None:
        self.file = file
        self.multi = multi
        self.result = Validation()

    def error(self, drg: str, obj: str, fld: str | None, rule: str, message: str, fix: str) -> None:
        self.result.errors.append(Problem(self.file, obj, fld, rule, message, fix, drg if self.multi else None))

    def warn(self, drg: str, obj: str, fld: str | None, rule: str, message: str, fix: str) -> None:
        self.result.warnings.append(Problem(self.file, obj, fld, rule, message, fix, drg if self.multi else None))


def check_file(configs: list[DrgConfig], file: str, multi: bool) -> Validation:
    r = _Report(file, multi)
    _names(configs, r)
    _rpc_peers(configs, r)
    _sockets(configs, r)
    _depth(configs, r)
    _rpc_limits(configs, r)
    return r.result


def _names(configs: list[DrgConfig], r: _Report) -> None:
    """Attachment names across DRGs (DRG names: ``config/drgs.py`` refuses a file that repeats one)."""
    owner: dict[str, str] = {}
    for cfg in configs:
        for att in cfg.attachments:
            first = owner.setdefault(att.name, cfg.drg.name)
            if first != cfg.drg.name:  # within one DRG, config/validate.py reports it
                r.error(cfg.drg.name, att.name, "name", "names", f"attachment {att.name} is also an attachment "
                        f"of {first}", "rename one of them: attachment names are unique in the whole file "
                        "(sessions and commands find an attachment by its name)")


def _rpc_peers(configs: list[DrgConfig], r: _Report) -> None:
    """R94: a peer of the file, of the right type, peering back; R109: ``remote`` only for other daemons."""
    by_name = {c.drg.name: c for c in configs}
    for cfg in configs:
        me = cfg.drg.name
        for att in cfg.attachments:
            if not isinstance(att, RemotePeeringAttachment) or not isinstance(att.peer, RpcPeer):
                continue
            peer = att.peer
            other = by_name.get(peer.drg)
            if peer.remote is not None:
                if other is not None:
                    r.error(me, att.name, "peer.remote", "R109", f"{peer.drg} runs in this daemon (it is in "
                            "this file): its routes are exchanged in process",
                            f"remove peer.remote from {att.name}, or move {peer.drg} to another daemon's file")
                continue
            if peer.drg == me:
                r.error(me, att.name, "peer.drg", "R94", f"{att.name} peers with its own DRG {me}: an RPC joins "
                        "two DRGs", "name the other DRG of the peering")
            elif other is None:
                r.error(me, att.name, "peer.drg", "R94", f"DRG {peer.drg} is not in this file",
                        f"name a DRG of the file{did_you_mean(peer.drg, by_name)}; for a DRG run by another "
                        "daemon add peer.remote: {address, port}; or set peer: external")
            else:
                _mutual(cfg, att, other, r)


def _mutual(cfg: DrgConfig, att: RemotePeeringAttachment, other: DrgConfig, r: _Report) -> None:
    me = cfg.drg.name
    assert isinstance(att.peer, RpcPeer)
    target = next((a for a in other.attachments if a.name == att.peer.attachment), None)
    rpcs = [a.name for a in other.attachments if isinstance(a, RemotePeeringAttachment)]
    if target is None:
        r.error(me, att.name, "peer.attachment", "R94", f"{other.drg.name} has no attachment "
                f"{att.peer.attachment}", f"name an RPC attachment of {other.drg.name}"
                f"{did_you_mean(att.peer.attachment, rpcs)}")
    elif not isinstance(target, RemotePeeringAttachment):
        r.error(me, att.name, "peer.attachment", "R94", f"{target.name} of {other.drg.name} is a {target.type} "
                "attachment, not an RPC", f"name an RPC attachment of {other.drg.name}"
                f"{did_you_mean(att.peer.attachment, rpcs)}")
    elif not (isinstance(target.peer, RpcPeer) and (target.peer.drg, target.peer.attachment) == (me, att.name)):
        back = (f"{{drg: {target.peer.drg}, attachment: {target.peer.attachment}}}"
                if isinstance(target.peer, RpcPeer) else str(target.peer))
        r.error(me, att.name, "peer", "R94", f"the peering is not mutual: {target.name} of {other.drg.name} "
                f"peers with {back}", f"set {target.name}'s peer to {{drg: {me}, attachment: {att.name}}}, "
                "or correct this peer: an RPC is connected to exactly one other RPC")


def _sockets(configs: list[DrgConfig], r: _Report) -> None:
    """One speaker for every DRG: it knows each neighbor by its peer address."""
    peers: dict[str, tuple[str, str]] = {}
    for cfg in configs:
        for att in cfg.attachments:
            if not isinstance(att, VirtualCircuitAttachment | IpsecTunnelAttachment) or att.bgp is None:
                continue
            for peer in (att.bgp.peer, *((att.bgp.ipv6.peer,) if isinstance(att, VirtualCircuitAttachment)
                                         and att.bgp.ipv6 is not None else ())):
                drg, other = peers.setdefault(peer, (cfg.drg.name, att.name))
                if drg != cfg.drg.name:  # within one DRG, config/validate.py reports it
                    r.error(cfg.drg.name, att.name, "bgp.peer", "sockets", f"{att.name} and {other} of {drg} "
                            f"both have their BGP peer at {peer}: the one listener of the daemon could not tell "
                            "their connections apart", "give each session its own peer address (e.g. 127.0.0.2)")


def _links(configs: list[DrgConfig]) -> dict[str, list[str]]:
    """DRG -> DRGs of the file it is PEERED with (both ends PEERED, R110), in file order."""
    peered = {(c.drg.name, a.name): a for c in configs for a in c.attachments
              if isinstance(a, RemotePeeringAttachment) and a.peered}
    links: dict[str, list[str]] = {c.drg.name: [] for c in configs}
    for (drg, _name), att in peered.items():
        peer = att.peer
        if isinstance(peer, RpcPeer) and peer.remote is None and (peer.drg, peer.attachment) in peered \
                and peer.drg in links and peer.drg not in links[drg]:
            links[drg].append(peer.drg)
    return links


def _depth(configs: list[DrgConfig], r: _Report) -> None:
    """R103: routes cross at most 4 DRGs, so DRGs whose nearest path has more exchange nothing."""
    links = _links(configs)
    order = list(links)
    for i, start in enumerate(order):
        hops = {start: 0}
        todo = deque([start])
        while todo:
            here = todo.popleft()
            for nxt in links[here]:
                if nxt not in hops:
                    hops[nxt] = hops[here] + 1
                    todo.append(nxt)
        for far in order[i + 1:]:
            if far in hops and hops[far] + 1 > MAX_DRGS:
                r.warn(start, start, None, "R103", f"{far} is {hops[far] + 1} DRGs away from {start} over RPCs: "
                       f"routes cross at most {MAX_DRGS} DRGs, so the two exchange no routes",
                       f"peer {start} and {far} more directly (at most {MAX_DRGS} DRGs on the way)")


def _rpc_limits(configs: list[DrgConfig], r: _Report) -> None:
    for cfg in configs:
        count: dict[str, int] = {}
        for att in cfg.attachments:
            if isinstance(att, RemotePeeringAttachment):
                table = att.route_table or AUTOGEN_RT_OTHER  # R96
                count[table] = count.get(table, 0) + 1
        for table, n in count.items():
            if n > LIMIT_RPC_PER_TABLE:
                r.warn(cfg.drg.name, table, None, "R108", f"{n} RPC attachments use {table}, over the "
                       f"{LIMIT_RPC_PER_TABLE} per route table of S5 (unconfirmed for upgraded DRGs)",
                       "spread the RPC attachments over more tables")
