"""FRR's bgpd as a second anchor receiver: Debian's `frr` package, bgpd alone, no zebra.

How it works:

* The lab's `peers.frr.FrrPeer` does the running: `FrrReceiver` gives it a `PeerSpec` whose
  "DRG" is the blaster (127.0.0.2, AS 65001) and whose own side is `spec.host:spec.port` AS 65000,
  listening only (`neighbor 127.0.0.2 passive`; bgpd binds `-l 127.0.0.1 -p PORT` alone). Its
  generated config (`peers.frr.frr_config`) has `no bgp ebgp-requires-policy`, no inbound policy
  (so every route is accepted) and announces nothing; bgpd never sends a route back to the only
  peer it came from. bgpd runs in the foreground in a fresh temp dir (config, pid file, zserv
  path, vty socket dir `bench.vty/`) with `-Z -n -S -P 0` (no zebra, no kernel routes, stays
  root, no vty TCP port): see peers/frr.py.
* `ensure_frr()` finds `bgpd` and `vtysh` the way the lab does; when they are missing it installs
  Debian's `frr` with apt-get (root; `bench.bird.apt_install`, shared with bird2). FRR is never
  run as a service.
* Counting: one `vtysh --vty_socket DIR -d bgpd -c 'show bgp ipv4 unicast summary json'
  -c 'show work-queues'` every 20 ms. The neighbor's `pfxRcd` is FRR's per-peer prefix counter
  (`pcount`), which bgpd adjusts as it parses each UPDATE (a path accepted into, or removed
  from, the Adj-RIB-In); best-path selection runs later, from bgpd's `process_queue` work queue
  (withdrawn destinations leave the table only then: pfxRcd can be 0 while 30k of 100k are still
  there). So a count counts only when that queue is also empty: `wait_count(n)` /
  `wait_count_at_most(n)` return the time.perf_counter() of the first poll that saw pfxRcd >= n
  / <= n with nothing left to process. Both commands are O(peers + queues), unlike a table walk.
* `rss_bytes()` is bgpd's VmRSS from /proc/PID/status. Leaving the context stops bgpd by PID
  (SIGTERM to its process group, SIGKILL after a bound: RouterPeer.stop) and removes the temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
from pathlib import Path

from bench import PollingReceiver, ReceiverSpec, proc_rss_bytes, register_receiver
from bench.bird import apt_install
from peers.exabgp import PeerSpec
from peers.frr import FrrPeer
from peers.router import RouterMissing

__all__ = ["FrrReceiver", "ensure_frr", "frr_receiver"]

CLI_TIMEOUT = 10.0
_SUMMARY = ("show", "bgp", "ipv4", "unicast", "summary", "json")
_QUEUE_RE = re.compile(r"^\s*P?\s*(\d+)\s+\d+\s.*\bprocess_queue\b", re.MULTILINE)


async def ensure_frr(peer: FrrPeer) -> None:
    """Find bgpd and vtysh for `peer`, installing Debian's frr first if they are missing."""
    try:
        peer.programs()
    except RouterMissing:
        await asyncio.to_thread(apt_install, "frr")
        peer.programs()


def parse_poll(text: str, peer: str) -> tuple[int, bool]:
    """pfxRcd of `peer` from the summary JSON, and whether `show work-queues` (the text after it)
    lists no pending item on bgpd's process_queue."""
    doc, end = json.JSONDecoder().raw_decode(text.lstrip())
    neighbor = (doc.get("peers") or {}).get(peer) or {}
    queue = _QUEUE_RE.search(text.lstrip()[end:])
    if queue is None:
        raise RuntimeError(f"no process_queue in vtysh's show work-queues: {text[-600:]!r}")
    return int(neighbor.get("pfxRcd", 0)), int(queue.group(1)) == 0


def _peer_spec(spec: ReceiverSpec) -> PeerSpec:
    return PeerSpec(
        name="bench",
        local_address=spec.host,
        local_as=spec.local_as,
        peer_as=spec.peer_as,
        peer_address=spec.peer_address,
        listen_port=spec.port,
        router_id=spec.host,
        ipv6=False,
        kind="frr",
    )


class FrrReceiver(PollingReceiver):
    """One bgpd receiving the blaster's routes; an async context manager."""

    program = "bgpd"

    def __init__(self, spec: ReceiverSpec) -> None:
        self.spec = spec
        self.peer = FrrPeer(_peer_spec(spec))
        self.dir: Path | None = None

    async def __aenter__(self) -> FrrReceiver:
        await ensure_frr(self.peer)
        self.dir = Path(tempfile.mkdtemp(prefix="bench-frr-"))
        try:
            await self.peer.start(self.dir)  # returns once bgpd answers and listens
        except BaseException:
            await self.stop()
            raise
        return self

    async def poll(self) -> tuple[int, bool]:
        """(pfxRcd of the blaster's session, whether bgpd's route-processing queue is empty)."""
        argv = [*self.peer.cli_argv(*_SUMMARY), "-c", "show work-queues"]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            async with asyncio.timeout(CLI_TIMEOUT):
                out, err = await proc.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"vtysh failed: {text}{err.decode(errors='replace')}")
        return parse_poll(text, self.spec.peer_address)

    async def poll_count(self) -> tuple[int, bool]:
        return await self.poll()

    def check_running(self, last: int) -> None:
        if not self.peer.running:
            raise RuntimeError(f"bgpd is not running ({last} prefixes):\n{self.peer.log_tail()}")

    def rss_bytes(self) -> int:
        pids = self.peer.pids()
        if not pids:
            raise RuntimeError("bgpd is not running")
        return proc_rss_bytes(pids[0])

    async def stop(self) -> None:
        """Stop bgpd by PID (process group SIGTERM, then SIGKILL); remove the temp dir."""
        try:
            await self.peer.stop()
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None


def frr_receiver(spec: ReceiverSpec) -> FrrReceiver:
    return FrrReceiver(spec)


register_receiver("frr", frr_receiver)
