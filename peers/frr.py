"""FRR's bgpd playing an on-prem router: bgpd alone, in the foreground, from our own config file.

How it works (FRR 8.4, Debian 12's `frr` package; no zebra, no watchfrr, no system service):

* `FrrPeer.start(workdir)` writes `<name>.conf` (`frr_config`) and runs

      /usr/lib/frr/bgpd -f <name>.conf -i <name>.pid -z <name>.zserv --vty_socket <name>.vty
          -A 127.0.0.1 -P 0 -Z -n -S --log stdout   (-l LOCAL -p LISTEN_PORT | -p 0)

  `-Z` no zebra, `-n` no kernel routes, `-S` skip the switch to user frr (as root, `-u root`
  fails: root is not in the `frrvty` group), `-P 0` no vty TCP port, `--vty_socket` a directory
  of the work dir (so nothing in /var/run/frr). BGP listens only when the DRG dials
  (`connect: active|both`): `-l <bgp.peer> -p <bgp.peer_port>` binds that loopback address
  alone; otherwise `-p 0` and bgpd opens no listening socket (its default is every address).
* The config: `router bgp <customer_asn>`, `bgp router-id`, `no bgp ebgp-requires-policy`,
  `no bgp network import-check`, one neighbor (the DRG) with `update-source <bgp.peer>`,
  `disable-connected-check` (no zebra: nothing is "connected"), `timers`, `timers connect 1`,
  `port <DRG port>` when bgpd dials, `passive` when it must only listen, `password` for MD5;
  a `network` statement per announced prefix, and an outbound route-map with one entry per
  route (prefix-list match; `set ip next-hop`, `set as-path prepend`, `set metric`,
  `set community`, `set large-community`, `set origin`) and a final plain permit, so the routes
  bgpd learned from the DRG are advertised back as FRR does by default (with AS path
  `<customer_asn> <drg asn>`: the DRG must drop them, RFC 4271 9.1.2).
* Queries: `vtysh --vty_socket <name>.vty -d bgpd -c 'show bgp neighbors <drg> json'` (state) and
  `-c 'show bgp ipv4 unicast json'` (routes; the paths whose peerId is the DRG are `received()`).
* bgpd logs "sendmsg_nexthop: zclient_send_message() failed" every second without zebra;
  `log_tail()` leaves those lines out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from peers.exabgp import PeerSpec
from peers.router import RouterPeer, find_program, parse_as_path, path_after_local_as

__all__ = ["BGPD_CANDIDATES", "FrrPeer", "frr_config"]

BGPD_CANDIDATES = ("/usr/lib/frr/bgpd", "/usr/sbin/bgpd")


def frr_config(spec: PeerSpec) -> str:
    """The bgpd configuration for `spec` (see the module docstring)."""
    drg = spec.peer_address
    name = spec.name
    keepalive = max(spec.hold_time // 3, 1) if spec.hold_time else 0
    lines = [
        "frr defaults traditional",
        f"hostname {name}",
        "!",
        f"router bgp {spec.local_as}",
        f" bgp router-id {spec.router_id or spec.local_address}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        f" neighbor {drg} remote-as {spec.peer_as}",
        f" neighbor {drg} update-source {spec.local_address}",
        f" neighbor {drg} disable-connected-check",
        f" neighbor {drg} timers {keepalive} {spec.hold_time}",
        f" neighbor {drg} timers connect 1",
    ]
    if spec.connect_port is not None:
        lines.append(f" neighbor {drg} port {spec.connect_port}")
    else:
        lines.append(f" neighbor {drg} passive")
    if spec.md5:
        lines.append(f" neighbor {drg} password {spec.md5}")
    lines += [" !", " address-family ipv4 unicast"]
    lines += [f"  network {route.prefix}" for route in spec.announce]
    lines += [f"  neighbor {drg} route-map {name}-out out", " exit-address-family", "exit", "!"]
    for i, route in enumerate(spec.announce, start=1):
        lines.append(f"ip prefix-list {name}-r{i} seq 5 permit {route.prefix}")
    lines.append("!")
    for i, route in enumerate(spec.announce, start=1):
        lines += [f"route-map {name}-out permit {i * 10}", f" match ip address prefix-list {name}-r{i}"]
        if route.next_hop != "self":
            lines.append(f" set ip next-hop {route.next_hop}")
        prepend = path_after_local_as(route, spec.local_as, "frr")
        if prepend:
            lines.append(" set as-path prepend " + " ".join(str(a) for a in prepend))
        if route.med is not None:
            lines.append(f" set metric {route.med}")
        if route.communities:
            lines.append(" set community " + " ".join(route.communities))
        if route.large_communities:
            lines.append(" set large-community " + " ".join(route.large_communities))
        if route.origin is not None:
            lines.append(f" set origin {route.origin}")
        lines += ["exit", "!"]
    lines += [f"route-map {name}-out permit 65000", "exit", "!", "end", ""]
    return "\n".join(lines)


class FrrPeer(RouterPeer):
    """One FRR bgpd with one neighbor (the DRG); the interface of `ExaBGPPeer` for lab use."""

    kind = "frr"

    def __init__(self, spec: PeerSpec) -> None:
        super().__init__(spec)
        self.bgpd = ""
        self.vtysh = ""

    def programs(self) -> None:
        self.bgpd = find_program("bgpd", "frr", BGPD_CANDIDATES)
        self.vtysh = find_program("vtysh", "frr")

    def prepare(self) -> None:
        shutil.rmtree(self.vty_dir, ignore_errors=True)
        self.vty_dir.mkdir()
        self.socket_path(".vty/bgpd.vty")
        self.socket_path(".zserv")

    @property
    def vty_dir(self) -> Path:
        return self._path(".vty")

    def render_config(self) -> str:
        return frr_config(self.spec)

    def argv(self) -> list[str]:
        argv = [
            self.bgpd,
            "-f", str(self.config_path),
            "-i", str(self.pid_path),
            "-z", str(self._path(".zserv")),
            "--vty_socket", str(self.vty_dir),
            "-A", "127.0.0.1",
            "-P", "0",
            "-Z",
            "-n",
            "-S",
            "--log", "stdout",
        ]  # fmt: skip
        if self.spec.listen_port is not None:
            argv += ["-l", self.spec.local_address, "-p", str(self.spec.listen_port)]
        else:
            argv += ["-p", "0"]
        return argv

    def cli_argv(self, *command: str) -> list[str]:
        return [self.vtysh, "--vty_socket", str(self.vty_dir), "-d", "bgpd", "-c", " ".join(command)]

    def state_command(self) -> tuple[str, ...]:
        return ("show", "bgp", "neighbors", self.spec.peer_address, "json")

    def routes_command(self) -> tuple[str, ...]:
        return ("show", "bgp", "ipv4", "unicast", "json")

    def parse_state(self, text: str) -> str | None:
        doc = json.loads(text)
        neighbor = doc.get(self.spec.peer_address)
        if not isinstance(neighbor, dict):
            raise RuntimeError(f"{self.spec.name}: no neighbor {self.spec.peer_address} in {text[:200]!r}")
        state = neighbor.get("bgpState")
        return str(state) if state is not None else None

    def parse_routes(self, text: str) -> dict[str, dict[str, Any]]:
        return frr_received(json.loads(text), self.spec.peer_address)

    def noise(self, line: str) -> bool:
        return "sendmsg_nexthop" in line


def frr_received(doc: dict[str, Any], peer: str) -> dict[str, dict[str, Any]]:
    """The paths of `show bgp ipv4 unicast json` learned from `peer`, as ExaBGPPeer.received() shows them."""
    out: dict[str, dict[str, Any]] = {}
    for prefix, paths in (doc.get("routes") or {}).items():
        for path in paths:
            if path.get("peerId") != peer:
                continue
            hops = path.get("nexthops") or [{}]
            entry: dict[str, Any] = {
                "family": "ipv4 unicast",
                "next-hop": hops[0].get("ip"),
                "as-path": parse_as_path(str(path.get("path", ""))),
                "origin": str(path.get("origin", "")).lower(),
            }
            if "metric" in path:
                entry["med"] = path["metric"]
            out[prefix] = entry
    return out
