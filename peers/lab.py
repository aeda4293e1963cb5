"""The on-prem side of a lab: ExaBGP, FRR or BIRD peers built from the `onprem` section of a DRG config.

`spec_from_onprem` turns one `onprem` entry plus the `bgp` block of the session it plays (plain
dicts, as in the YAML of product.md) into a `PeerSpec`:

* ExaBGP's socket address is `bgp.peer`, its AS `bgp.customer_asn`, its peer the DRG
  (`drg_asn`, at the `speaker.listen` address `drg_listen`);
* `connect: passive` (the DRG only listens): ExaBGP connects to the DRG's listen port;
  `active` (the DRG connects out): ExaBGP is passive and listens on `bgp.peer:bgp.peer_port`;
  `both`: ExaBGP connects and listens (ExaBGP 5: `connect` plus `listen`, without `passive`);
* every announced route carries the session's `customer_ip` address as NEXT_HOP (IPv4-mapped
  for an IPv6 prefix over an IPv4 session) and the entry's `as_path`, by default
  `[customer_asn]`.

The entry's `kind` (default `exabgp`) picks the program: `ExaBGPPeer` (peers/exabgp.py),
`FrrPeer` (peers/frr.py, FRR's bgpd alone) or `BirdPeer` (peers/bird.py, BIRD 2); `make_peer`
builds it. All three offer the `LabPeer` interface (start/stop/pids/state/received/wait_for/
describe/log_tail); only ExaBGP can announce and withdraw at run time.

`Lab` starts several peers concurrently in one work directory and stops them all. It checks that
every program it needs is installed before starting any (`RouterMissing` says what to install).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from peers.bird import BirdPeer
from peers.exabgp import KINDS, ExaBGPPeer, PeerSpec, Route
from peers.frr import FrrPeer

__all__ = ["Lab", "LabPeer", "check_peers", "make_peer", "route_from_entry", "spec_from_onprem", "specs_from_config"]

_ROUTE_KEYS = {
    "prefix",
    "next_hop",
    "as_path",
    "med",
    "local_pref",
    "communities",
    "extended_communities",
    "large_communities",
    "origin",
    "atomic_aggregate",
    "aggregator",
}
_CONNECT_MODES = ("passive", "active", "both")


class LabPeer(Protocol):
    """What a Lab and the tests use of any peer kind."""

    spec: PeerSpec

    async def start(self, workdir: Path) -> None: ...
    async def stop(self) -> None: ...
    def pids(self) -> list[int]: ...
    def state(self) -> str | None: ...
    def received(self) -> dict[str, dict[str, Any]]: ...
    async def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> None: ...  # noqa: ASYNC109
    async def wait_state(self, state: str, timeout: float) -> None: ...  # noqa: ASYNC109
    def describe(self, max_prefixes: int = 20) -> str: ...
    def log_tail(self, lines: int = 15) -> str: ...


def make_peer(spec: PeerSpec) -> LabPeer:
    """The peer object of `spec.kind` (not started)."""
    if spec.kind == "frr":
        return FrrPeer(spec)
    if spec.kind == "bird":
        return BirdPeer(spec)
    return ExaBGPPeer(spec)


def check_peers(specs: Iterable[PeerSpec]) -> list[LabPeer]:
    """The peers of `specs`, not started: ValueError for what a kind cannot announce, RouterMissing
    ("bgpd is not installed: apt-get install frr") for a program that is not installed."""
    made = [make_peer(spec) for spec in specs]
    for peer in made:
        if isinstance(peer, FrrPeer | BirdPeer):
            peer.programs()
    return made


def _split_host_port(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port)


def _customer_next_hop(customer_ip: str, prefix: str) -> str:
    address = ipaddress.ip_interface(customer_ip).ip
    family = ipaddress.ip_network(prefix, strict=False).version
    if family == address.version:
        return str(address)
    if family == 6 and isinstance(address, ipaddress.IPv4Address):
        return f"::ffff:{address}"
    raise ValueError(f"{prefix}: cannot derive an IPv4 next hop from customer_ip {customer_ip}")


def route_from_entry(entry: Mapping[str, Any], customer_ip: str, customer_asn: int) -> Route:
    """One `announce` item ({prefix, as_path?, ...}) as a Route with the session's next hop."""
    unknown = set(entry) - _ROUTE_KEYS
    if unknown:
        raise ValueError(f"announce {entry.get('prefix')!r}: unknown keys {sorted(unknown)}")
    if "prefix" not in entry:
        raise ValueError(f"announce item without prefix: {dict(entry)}")
    prefix = str(entry["prefix"])
    as_path = entry.get("as_path")
    return Route(
        prefix=prefix,
        next_hop=str(entry.get("next_hop") or _customer_next_hop(customer_ip, prefix)),
        as_path=[int(a) for a in as_path] if as_path is not None else [customer_asn],
        med=entry.get("med"),
        local_pref=entry.get("local_pref"),
        communities=[str(c) for c in entry.get("communities") or []],
        extended_communities=[str(c) for c in entry.get("extended_communities") or []],
        large_communities=[str(c) for c in entry.get("large_communities") or []],
        origin=entry.get("origin"),
        atomic_aggregate=bool(entry.get("atomic_aggregate", False)),
        aggregator=entry.get("aggregator"),
    )


def spec_from_onprem(
    onprem_entry: Mapping[str, Any], bgp_block: Mapping[str, Any], drg_asn: int, drg_listen: str
) -> PeerSpec:
    """The PeerSpec of the ExaBGP that plays `onprem_entry` on the session of `bgp_block`."""
    name = str(onprem_entry["name"])
    kind = str(onprem_entry.get("kind") or "exabgp")
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, not {kind!r}")
    customer_asn = int(bgp_block["customer_asn"])
    customer_ip = str(bgp_block["customer_ip"])
    drg_host, drg_port = _split_host_port(drg_listen)
    mode = str(bgp_block.get("connect") or "passive")
    if mode not in _CONNECT_MODES:
        raise ValueError(f"{name}: session connect must be one of {_CONNECT_MODES}, not {mode!r}")
    peer_port = int(bgp_block.get("peer_port") or 179)
    spec = PeerSpec(
        name=name,
        local_address=str(bgp_block["peer"]),
        local_as=customer_asn,
        peer_address=drg_host,
        peer_as=int(drg_asn),
        connect_port=drg_port if mode in ("passive", "both") else None,
        listen_port=peer_port if mode in ("active", "both") else None,
        md5=bgp_block.get("md5_key") or None,
        kind=kind,
        announce=[
            route_from_entry(item, customer_ip, customer_asn) for item in onprem_entry.get("announce") or []
        ],
    )
    if "hold_time" in onprem_entry:
        spec.hold_time = int(onprem_entry["hold_time"])
    spec.validate()
    return spec


def specs_from_config(config: Mapping[str, Any]) -> list[PeerSpec]:
    """Every `onprem` entry of a whole config (plain dict of the YAML) as a PeerSpec."""
    drg_asn = int(config["drg"]["asn"])
    listen = str((config.get("speaker") or {}).get("listen") or "127.0.0.1:1790")
    sessions = {a["name"]: a.get("bgp") for a in config.get("attachments") or []}
    for a in config.get("attachments") or []:  # a dual-stack VC's IPv6 session: <vc>.ipv6 (R53)
        bgp = a.get("bgp") or {}
        if bgp.get("ipv6"):
            sessions[f"{a['name']}.ipv6"] = {**bgp["ipv6"], "customer_asn": bgp["customer_asn"]}
    specs = []
    for entry in config.get("onprem") or []:
        bgp = sessions.get(entry.get("session"))
        if not bgp:
            raise ValueError(
                f"onprem {entry.get('name')!r}: session {entry.get('session')!r} has no bgp block"
            )
        specs.append(spec_from_onprem(entry, bgp, drg_asn, listen))
    return specs


class Lab:
    """Several peers (of any kind) started together (concurrently) and stopped together."""

    def __init__(self) -> None:
        self.peers: dict[str, LabPeer] = {}

    async def start(self, peers: Iterable[PeerSpec], workdir: Path) -> None:
        """Start one peer per spec in `workdir`; if one fails, stop them all and raise.

        Every program needed is looked up first: RouterMissing before anything started."""
        specs: Sequence[PeerSpec] = list(peers)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"peer names must be unique: {names}")
        made = check_peers(specs)
        for peer in made:
            self.peers[peer.spec.name] = peer
        results = await asyncio.gather(
            *(p.start(Path(workdir)) for p in self.peers.values()), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]

    async def stop(self) -> None:
        """Stop every peer (bounded each); the first error is raised after all were tried."""
        results = await asyncio.gather(*(p.stop() for p in self.peers.values()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    def __getitem__(self, name: str) -> Any:
        """The peer (ExaBGPPeer, FrrPeer or BirdPeer; typed Any so ExaBGP-only methods stay callable)."""
        return self.peers[name]

    def pids(self) -> list[int]:
        return [pid for p in self.peers.values() for pid in p.pids()]

    async def wait_all(self, state: str, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until every peer's last state is `state` (e.g. "up")."""
        await asyncio.gather(*(p.wait_state(state, timeout) for p in self.peers.values()))

    async def __aenter__(self) -> Lab:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
