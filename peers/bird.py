"""BIRD 2 playing an on-prem router (Debian 12's `bird2` package, BIRD 2.0.12), plus helpers that
bench/bird.py shares (`bird_argv`, `birdc`, `IGP_RESOLVER`).

How it works:

* `BirdPeer.start(workdir)` writes `<name>.conf` (`bird_peer_config`) and runs
  `bird -f -c <name>.conf -s <name>.ctl -P <name>.pid` in the foreground, in its own session
  (never the `bird` system service).
* The config: `router id`; `protocol device`; next hops resolved through a table `igp4` that holds
  only a static 0.0.0.0/0 blackhole (`IGP_RESOLVER`: BIRD ignores `lo` and would leave the
  DRG's next hops unresolved); `protocol static announce` with one `blackhole` route per
  announced prefix and a per-route block for the attributes (`bgp_path.prepend(...)` for an
  as_path beyond the own AS, `bgp_med`, `bgp_community.add`, `bgp_large_community.add`,
  `bgp_origin`); and `protocol bgp drg`: `local <bgp.peer> port P as <customer_asn>`,
  `neighbor <drg> [port <drg port>] as <drg asn>`, `strict bind yes` (only the loopback address
  `bgp.peer` is bound: BIRD would otherwise listen on every address), `multihop`, `passive on`
  when it must only listen, hold/keepalive timers, fast `connect delay`/`connect retry`/
  `error wait` times, `password` for MD5, and `ipv4 { import all; export all;
  next hop address <next hop>; igp table igp4; }`.
* BIRD always listens: on `bgp.peer:bgp.peer_port` when the DRG dials, else on `bgp.peer:179`
  (BIRD has no "do not listen"; port 0 is refused).
* All announced routes of one BIRD peer share one next hop (the channel's `next hop address`);
  different next hops are refused. BIRD does not advertise a route back to the neighbor it was
  learned from, even with `export all`, so a BIRD edge never echoes the DRG's routes.
* Queries: `birdc -s <name>.ctl show protocols all drg` ("BGP state: Established") and
  `birdc -s <name>.ctl show route all protocol drg` (what BIRD learned from the DRG).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from peers.exabgp import PeerSpec
from peers.router import RouterPeer, find_program, parse_as_path, path_after_local_as

__all__ = ["IGP_RESOLVER", "BirdPeer", "bird_argv", "bird_peer_config", "bird_received", "birdc", "find_bird"]

IGP_RESOLVER = """\
ipv4 table igp4;
protocol static igp_default {
    ipv4 { table igp4; };
    route 0.0.0.0/0 blackhole;
}
"""

_STATE_RE = re.compile(r"^\s*BGP state:\s*(\S+)", re.MULTILINE)
_ROUTE_RE = re.compile(r"^(\S+/\d+)\s+\S+\s+\[")


def find_bird() -> tuple[str, str]:
    """Paths of `bird` and `birdc`; RouterMissing (saying `apt-get install bird2`) if absent."""
    return find_program("bird", "bird2", ("/usr/sbin/bird",)), find_program("birdc", "bird2", ("/usr/sbin/birdc",))


def bird_argv(bird: str, config: Path, socket: Path, pidfile: Path) -> list[str]:
    """BIRD in the foreground with its own control socket and pid file."""
    return [bird, "-f", "-c", str(config), "-s", str(socket), "-P", str(pidfile)]


async def birdc(birdc_path: str, socket: Path, *args: str, timeout: float = 5.0) -> tuple[int, str]:  # noqa: ASYNC109
    """Run one birdc command; (exit code, stdout+stderr). The child is killed past `timeout`."""
    proc = await asyncio.create_subprocess_exec(
        birdc_path,
        "-s",
        str(socket),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def _next_hop(spec: PeerSpec) -> str | None:
    hops = {route.next_hop for route in spec.announce} - {"self"}
    if len(hops) > 1:
        raise ValueError(
            f"{spec.name}: kind bird announces every route with one next hop, not {sorted(hops)}; use kind exabgp"
        )
    return next(iter(hops), None)


def bird_peer_config(spec: PeerSpec, listen_port: int) -> str:
    """The BIRD configuration for `spec`, listening on local_address:listen_port."""
    statics = []
    for route in spec.announce:
        actions = []
        prepend = path_after_local_as(route, spec.local_as, "bird")
        actions += [f"bgp_path.prepend({a});" for a in reversed(prepend)]
        if route.med is not None:
            actions.append(f"bgp_med = {route.med};")
        for community in route.communities:
            actions.append(f"bgp_community.add(({community.replace(':', ',')}));")
        for large in route.large_communities:
            actions.append(f"bgp_large_community.add(({large.replace(':', ',')}));")
        if route.origin is not None:
            actions.append(f"bgp_origin = ORIGIN_{route.origin.upper()};")
        block = (" { " + " ".join(actions) + " }") if actions else ""
        statics.append(f"    route {route.prefix} blackhole{block};")
    next_hop = _next_hop(spec)
    keepalive = max(spec.hold_time // 3, 1) if spec.hold_time else 0
    neighbor = f"neighbor {spec.peer_address}"
    if spec.connect_port is not None:
        neighbor += f" port {spec.connect_port}"
    bgp = [
        f"    local {spec.local_address} port {listen_port} as {spec.local_as};",
        f"    {neighbor} as {spec.peer_as};",
        "    strict bind yes;",
        "    multihop;",
        f"    hold time {spec.hold_time};",
        f"    keepalive time {keepalive};" if spec.hold_time else "",
        "    connect delay time 1;",
        "    connect retry time 1;",
        "    error wait time 1, 10;",
    ]
    if spec.connect_port is None:
        bgp.append("    passive on;")
    if spec.md5:
        bgp.append(f'    password "{spec.md5}";')
    channel = ["import all;", "export all;", "igp table igp4;"]
    if next_hop is not None:
        channel.insert(2, f"next hop address {next_hop};")
    bgp.append("    ipv4 { " + " ".join(channel) + " };")
    return "\n".join(
        [
            f"router id {spec.router_id or spec.local_address};",
            "log stderr { info, remote, warning, error, auth, fatal, bug };",
            "protocol device { }",
            IGP_RESOLVER.rstrip(),
            "protocol static announce {",
            "    ipv4;",
            *statics,
            "}",
            "protocol bgp drg {",
            *[line for line in bgp if line],
            "}",
            "",
        ]
    )


def bird_received(text: str) -> dict[str, dict[str, Any]]:
    """`show route all protocol drg` as ExaBGPPeer.received() shows routes."""
    out: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        match = _ROUTE_RE.match(line)
        if match:
            current = {"family": "ipv4 unicast"}
            out[match.group(1)] = current
            continue
        if current is None or not line.startswith("\t"):
            continue
        key, _, value = line.strip().partition(": ")
        if key == "BGP.as_path":
            current["as-path"] = parse_as_path(value)
        elif key == "BGP.next_hop":
            current["next-hop"] = value.split()[0]
        elif key == "BGP.origin":
            current["origin"] = value.lower()
        elif key == "BGP.med":
            current["med"] = int(value)
        elif key == "BGP.community":
            current["community"] = [c.strip("()").replace(",", ":") for c in value.split()]
    for entry in out.values():
        entry.setdefault("as-path", [])
    return out


class BirdPeer(RouterPeer):
    """One BIRD with one neighbor (the DRG); the interface of `ExaBGPPeer` for lab use."""

    kind = "bird"

    def __init__(self, spec: PeerSpec) -> None:
        super().__init__(spec)
        self.listen_port = spec.listen_port if spec.listen_port is not None else 179
        bird_peer_config(spec, self.listen_port)  # refuse what BIRD cannot announce before starting
        self.bird = ""
        self.birdc = ""

    def programs(self) -> None:
        self.bird, self.birdc = find_bird()

    @property
    def control_socket(self) -> Path:
        return self.socket_path(".ctl")

    def prepare(self) -> None:
        self.control_socket.unlink(missing_ok=True)

    def render_config(self) -> str:
        return bird_peer_config(self.spec, self.listen_port)

    def argv(self) -> list[str]:
        return bird_argv(self.bird, self.config_path, self.control_socket, self.pid_path)

    def cli_argv(self, *command: str) -> list[str]:
        return [self.birdc, "-s", str(self.control_socket), *command]

    def state_command(self) -> tuple[str, ...]:
        return ("show", "protocols", "all", "drg")

    def routes_command(self) -> tuple[str, ...]:
        return ("show", "route", "all", "protocol", "drg")

    def parse_state(self, text: str) -> str | None:
        match = _STATE_RE.search(text)
        if match is None:
            raise RuntimeError(f"{self.spec.name}: no BGP state in {text[:300]!r}")
        return match.group(1)

    def parse_routes(self, text: str) -> dict[str, dict[str, Any]]:
        return bird_received(text)
