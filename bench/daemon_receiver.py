"""The whole DRG as a benchmark receiver: speaker + route engine, in a process of its own.

Like ``bench.speaker_receiver``, but the child runs a :class:`~controlplane.daemon.Daemon` (no control
API, logging at INFO like ``drg run``'s default, to /dev/null; no event readers) for a DRG with one
VC (the blaster, AS 65001) whose routes five route tables import, the way a stress lab would
(``daemon``), or two (``daemon-2``).
``REACHED`` is printed when the route engine holds N routes learned on the VC, i.e. when they are in
every importing table and the advertisement diffs have been computed: end-to-end ingest, not just
the Adj-RIB-In.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from bench import register_receiver
from bench.speaker_receiver import SpeakerReceiver, Target

TABLES = 5


class DaemonReceiver(SpeakerReceiver):
    module = "bench.daemon_receiver"
    stderr = asyncio.subprocess.DEVNULL  # the daemon logs at INFO, as `drg run` does; the lines are dropped
    tables = TABLES

    def child_args(self) -> list[str]:
        return [*super().child_args(), str(self.tables)]


class TwoTableReceiver(DaemonReceiver):
    """The same DRG with two importing tables: the VC's routes in the Adj-RIB-In and two VCN tables."""

    tables = 2


register_receiver("daemon", DaemonReceiver)
register_receiver("daemon-2", TwoTableReceiver)


def bench_config(host: str, port: int, local_as: int, peer_address: str, peer_as: int,
                 tables: int = TABLES) -> dict[str, Any]:
    """A DRG whose VC routes are imported by ``tables`` tables (one per VCN attachment)."""
    vcns = [{"name": f"vcn{i}", "cidrs": [f"10.{200 + i}.0.0/16"], "subnets": [f"10.{200 + i}.1.0/24"]}
            for i in range(tables)]
    attachments: list[dict[str, Any]] = [
        {"name": f"att-vcn{i}", "type": "VCN", "vcn": f"vcn{i}", "route_table": f"rt-{i}"} for i in range(tables)]
    attachments.append({
        "name": "att-vc", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc",
        "bgp": {"oracle_ip": "192.168.100.1/30", "customer_ip": "192.168.100.2/30", "customer_asn": peer_as,
                "peer": peer_address, "connect": "passive",
                "max_prefixes": {"ipv4": 4_000_000, "ipv6": 500}},
    })
    return {
        "drg": {"name": "bench", "asn": local_as},
        "speaker": {"listen": f"{host}:{port}"},
        "api": {"listen": f"{host}:{port + 1}"},  # not started (control=False)
        "vcns": vcns,
        "attachments": attachments,
        "route_tables": [{"name": f"rt-{i}", "import_distribution": "rd-vc"} for i in range(tables)]
        + [{"name": "rt-vc", "import_distribution": "rd-vcn"}],
        "distributions": [
            {"name": "rd-vc", "statements": [{"priority": 10, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}}]},
            {"name": "rd-vcn", "statements": [{"priority": 10, "match": {"attachment_type": "VCN"}}]},
        ],
    }


async def _child(host: str, port: int, local_as: int, peer_address: str, peer_as: int, tables: int) -> None:
    import logging

    import yaml

    from controlplane.config.validate import parse_valid
    from controlplane.daemon import LOG_FORMAT, Daemon

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # `drg run`'s default
    doc = bench_config(host, port, local_as, peer_address, peer_as, tables)
    config, _ = parse_valid(yaml.safe_dump(doc), "bench")
    daemon = Daemon(config, control=False)

    def count() -> int:
        engine = daemon.engine
        return engine.received_count("att-vc") if engine.is_established("att-vc") else 0

    target = Target(count)
    inner = daemon.bgp_event

    def on_event(event: Any) -> None:
        inner(event)
        target.check()

    daemon.speaker.on_event = on_event
    await daemon.start()
    await target.serve()
    await daemon.stop("benchmark done")


if __name__ == "__main__":
    h, p, la, pa, pas, n = sys.argv[1:7]
    profile = os.environ.get("BENCH_PROFILE")  # a path: the child runs under cProfile and writes its stats there
    if profile:
        import cProfile

        cProfile.run("asyncio.run(_child(h, int(p), int(la), pa, int(pas), int(n)))", profile)
    else:
        asyncio.run(_child(h, int(p), int(la), pa, int(pas), int(n)))
