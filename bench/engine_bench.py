"""Route-engine micro-benchmark: a million routes from one VC into five importing tables.

How it works: a synthetic DRG has one VC and five VCN attachments; each of the tables rt-1..rt-5
imports the VC plus its own VCN (so no two tables share an import set), the VC advertises rt-1, and
OCI's default tables are overridden to import VCNs only, so exactly five tables import the VC. The
benchmark measures (1) importing 1,000,000 /24s announced by the VC, once in one call and once in
UPDATE-sized calls of 500 prefixes, (2) single-route changes on the loaded engine (10,000 each of
path change, withdraw and re-announce of a random prefix: median and p99), (3) a conflict-heavy
variant where a second VC offers the same prefixes (its import, single changes on it, then the first
VC's session down while the second still offers everything), and (4) a full ``apply_config`` and a one-table
JSON dump. ``main()`` prints the figures; nothing is asserted.
"""

from __future__ import annotations

import gc
import random
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.summary import SUMMARY
from controlplane.config.effective import build_effective
from controlplane.config.schema import DrgConfig
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4

ROUTES = 1_000_000
CHANGES = 10_000
TABLES = 5


def bench_config(vcs: int = 1) -> DrgConfig:
    vc_list = [{"name": f"vc{i}", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-1",
                "bgp": {"oracle_ip": f"192.168.100.{4 * i + 1}/30", "customer_ip": f"192.168.100.{4 * i + 2}/30",
                        "customer_asn": 65001, "peer": f"127.0.1.{i}",
                        "max_prefixes": {"ipv4": 2 * ROUTES, "ipv6": 500}}} for i in range(vcs)]
    vcns = [{"name": f"vcn-{t}", "cidrs": [f"10.{t}.0.0/16"], "subnets": [f"10.{t}.1.0/24"]}
            for t in range(1, TABLES + 1)]
    vcn_atts = [{"name": f"att-vcn-{t}", "type": "VCN", "vcn": f"vcn-{t}", "route_table": f"rt-{t}"}
                for t in range(1, TABLES + 1)]
    tables = [{"name": f"rt-{t}", "import_distribution": f"rd-{t}"} for t in range(1, TABLES + 1)]
    dists = [{"name": f"rd-{t}", "statements": [{"priority": 10, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}},
                                                {"priority": 20, "match": {"attachment": f"att-vcn-{t}"}}]}
             for t in range(1, TABLES + 1)]
    dists.append({"name": "autogen-rd-all", "statements": [{"priority": 1, "match": {"attachment_type": "VCN"}}]})
    return DrgConfig.model_validate({"drg": {"name": "bench"}, "vcns": vcns, "attachments": vcn_atts + vc_list,
                                     "route_tables": tables, "distributions": dists})


def prefixes(count: int) -> list[int]:
    """``count`` distinct /24 keys from 64.0.0.0 upwards."""
    return [(((64 << 24) + (i << 8)) << 8) | 24 for i in range(count)]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[int]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(ordered) / 1000:7.1f} us   p99 {p99 / 1000:7.1f} us"


def single_changes(engine: RouteEngine, keys: list[int], rng: random.Random) -> dict[str, list[int]]:
    results: dict[str, list[int]] = {"path change": [], "withdraw": [], "re-announce": []}
    clock = time.perf_counter_ns
    for _ in range(CHANGES):
        key = [keys[rng.randrange(len(keys))]]
        start = clock()
        engine.announce("vc0", AFI_IPV4, key, [65001, 65009])
        middle = clock()
        engine.withdraw("vc0", AFI_IPV4, key)
        end = clock()
        engine.announce("vc0", AFI_IPV4, key, [65001])
        results["path change"].append(middle - start)
        results["withdraw"].append(end - middle)
        results["re-announce"].append(clock() - end)
    return results


def bench_single_call(keys: list[int]) -> None:
    base_rss = rss_mib()
    engine = RouteEngine(build_effective(bench_config()))
    engine.set_session_established("vc0", True)
    seconds, changes = timed(lambda: engine.announce("vc0", AFI_IPV4, keys, [65001]))
    rules = sum(len(d) for d in changes.tables)
    print(f"  import, one call            {seconds:6.2f} s   ({ROUTES / seconds:,.0f} routes/s, "
          f"{rules:,} table changes, peak RSS +{rss_mib() - base_rss:,.0f} MiB)")
    changes = None
    seconds, _ = timed(lambda: engine.route_table("rt-3"))
    print(f"  dump one table as JSON      {seconds:6.2f} s")
    for label, samples in single_changes(engine, keys, random.Random(7)).items():
        print(f"  single {label:<20} {percentiles(samples)}   ({CHANGES:,} changes)")
        median = statistics.median(samples) / 1000
        SUMMARY.add(f"one route change ({label}) to every table", f"{median:.1f} us median", goal="< 50 us",
                    met=median < 50)
    seconds, _ = timed(lambda: engine.apply_config(build_effective(bench_config())))
    print(f"  apply_config (same file)    {seconds:6.2f} s   (full recomputation and diff)")
    seconds, _ = timed(lambda: engine.session_down("vc0"))
    print(f"  session down (withdraw all) {seconds:6.2f} s")


def bench_updates(keys: list[int], size: int = 500) -> None:
    engine = RouteEngine(build_effective(bench_config()))

    def in_updates() -> None:
        for i in range(0, ROUTES, size):
            engine.announce("vc0", AFI_IPV4, keys[i:i + size], [65001])

    seconds, _ = timed(in_updates)
    print(f"  import, {size}-prefix UPDATEs  {seconds:6.2f} s   ({ROUTES / seconds:,.0f} routes/s)")


def bench_contested(keys: list[int]) -> None:
    engine = RouteEngine(build_effective(bench_config(vcs=2)))
    engine.announce("vc1", AFI_IPV4, keys, [65001, 65001])
    seconds, _ = timed(lambda: engine.announce("vc0", AFI_IPV4, keys, [65001]))
    print(f"  import over a 2nd VC's routes {seconds:4.2f} s   (every prefix contested: R27 per prefix)")
    rng = random.Random(11)
    samples = []
    for _ in range(CHANGES):
        key = [keys[rng.randrange(ROUTES)]]
        start = time.perf_counter_ns()
        engine.announce("vc1", AFI_IPV4, key, [65001] if rng.random() < 0.5 else [65001, 65001])
        samples.append(time.perf_counter_ns() - start)
    print(f"  single contested change     {percentiles(samples)}")
    seconds, _ = timed(lambda: engine.session_down("vc0"))
    print(f"  session down, 2nd VC offers all {seconds:4.2f} s   (every prefix falls back to vc1: R27 per prefix)")


def main() -> None:
    keys = prefixes(ROUTES)
    print(f"route engine: {ROUTES:,} IPv4 routes from one VC into {TABLES} importing tables")
    bench_single_call(keys)
    bench_updates(keys)
    bench_contested(keys)


if __name__ == "__main__":
    main()
