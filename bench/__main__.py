"""`python -m bench [--sizes N,N] [--only bird|frr|speaker|daemon|sessions|events|dump|engine|fuzz] [--repeat N]`.

How it works: loads the registered receivers (bench.bird, bench.frr, bench.speaker_receiver,
bench.daemon_receiver, those whose file exists), runs `bench.measure()` for every size and
receiver in the order BIRD, FRR, speaker, daemon (`--repeat` times, keeping the median run), and
prints one table: time from the blaster's first UPDATE byte to all prefixes installed, prefixes
per second, RSS growth per route, the time as a ratio to BIRD's for the same size, and the same
for withdrawing them all. BIRD is the anchor: numbers move ~10% between runs on a shared machine,
so it is measured in the same invocation unless `--no-anchor` (the ratio columns are then empty).
`--only events` (or a run without --only, after the sessions) runs bench/events_bench.py: what
event readers cost the routing of 40,000 changes. `--only sessions` (or a run without --only, after
the table) runs bench/many_sessions.py with
`--sessions S --prefixes P --idle SECONDS` and prints its figures. `--only engine` (or a run
without --only, last) calls `main()` of bench/engine_bench.py when that file exists, and says it
skipped it when it does not. `--only dump` (or a run without --only, after the events) runs
bench/dump_bench.py.
`--only fuzz [--messages N]` runs bench/fuzz.py (mutated messages over
real sessions to a real daemon; default 1,000,000) and prints its reactions; never part of a full run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import signal
import sys
from collections.abc import Sequence

from bench import Measurement, load_receivers, measure, median_measurement
from bench.summary import SUMMARY, format_summary

ANCHOR = "bird"
ENGINE = "engine"
SESSIONS = "sessions"
EVENTS = "events"
FUZZ = "fuzz"
ORDER = ("bird", "frr", "speaker", "daemon-2", "daemon")  # receivers first in this order, any others after


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers separated by commas: {text!r}") from None
    if not sizes or any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description="BGP ingest benchmarks (BIRD as the anchor)"
    )
    p.add_argument(
        "--sizes", type=_sizes, default=[100_000, 1_000_000], help="prefix counts, e.g. 100000,1000000"
    )
    p.add_argument("--only", help="one receiver (bird, frr, speaker, daemon), 'sessions', 'events', 'engine', "
                   "'dump' or 'fuzz'")
    p.add_argument("--repeat", type=int, default=1, help="runs per receiver and size; the median is shown")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all prefixes (per run)")
    p.add_argument("--no-anchor", action="store_true", help="do not also run BIRD with --only")
    p.add_argument("--sessions", type=int, default=500, help="many sessions: BGP sessions (default 500)")
    p.add_argument("--prefixes", type=int, default=2000, help="many sessions: prefixes per session (default 2000)")
    p.add_argument("--messages", type=int, default=1_000_000, help="fuzz: mutated messages (default 1,000,000)")
    p.add_argument("--idle", type=float, default=10.0, help="many sessions: seconds of idle CPU measured")
    return p


def _ratio(value: float, anchor: float | None) -> str:
    return f"{value / anchor:.2f}x" if anchor else "-"


def format_table(rows: Sequence[Measurement]) -> str:
    anchor = {m.n_prefixes: m for m in rows if m.receiver == ANCHOR}
    header = ("receiver", "prefixes", "time (s)", "prefixes/s", "bytes/route", "vs BIRD", "send (s)",
              "withdraw (s)", "withdraw vs BIRD")
    lines = [header]
    for m in rows:
        bird = anchor.get(m.n_prefixes)
        lines.append(
            (
                m.receiver,
                f"{m.n_prefixes:,}",
                f"{m.seconds:.3f}",
                f"{m.prefixes_per_second:,.0f}",
                f"{m.bytes_per_route:.0f}",
                _ratio(m.seconds, bird.seconds if bird else None),
                f"{m.send_seconds:.3f}",
                f"{m.withdraw_seconds:.3f}",
                _ratio(m.withdraw_seconds, bird.withdraw_seconds if bird else None),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


async def run_receivers(
    names: Sequence[str], sizes: Sequence[int], repeat: int, wait_limit: float
) -> list[Measurement]:
    receivers = load_receivers()
    rows: list[Measurement] = []
    for n in sizes:
        for name in names:
            runs = []
            for i in range(repeat):
                m = await measure(name, receivers[name], n, wait_limit)
                print(f"  {name} {n:,} run {i + 1}/{repeat}: {m.seconds:.3f} s, withdraw {m.withdraw_seconds:.3f} s",
                      file=sys.stderr, flush=True)
                runs.append(m)
            rows.append(median_measurement(runs))
    return rows


def run_engine() -> int:
    if importlib.util.find_spec("bench.engine_bench") is None:
        print("engine: bench/engine_bench.py is not there: skipped")
        return 0
    module = importlib.import_module("bench.engine_bench")
    entry = getattr(module, "main", None)
    if not callable(entry):
        print("engine: bench/engine_bench.py has no main(): skipped")
        return 0
    saved = sys.argv
    sys.argv = [f"{sys.argv[0]} (engine)"]  # our options are not its options
    try:
        outcome = entry()
        if inspect.isawaitable(outcome):
            outcome = asyncio.run(_await(outcome))
    finally:
        sys.argv = saved
    return outcome if isinstance(outcome, int) else 0


async def _await(awaitable: object) -> object:
    assert inspect.isawaitable(awaitable)
    return await awaitable


def run_sessions(sessions: int, prefixes: int, idle: float, wait_limit: float) -> int:
    from bench.many_sessions import format_sessions, run_sessions

    print(f"many sessions: {sessions:,} x {prefixes:,} prefixes into one daemon", file=sys.stderr, flush=True)
    result = asyncio.run(run_sessions(sessions, prefixes, idle, max(wait_limit, 600.0)))
    print(format_sessions(result))
    SUMMARY.add(f"{sessions:,} sessions x {prefixes:,}: first OPEN to last route", f"{result.install_seconds:.2f} s")
    SUMMARY.add("  idle CPU afterwards (keepalives)", f"{result.idle_cpu_percent:.2f}% of a core",
                goal="well under 5%", met=result.idle_cpu_percent < 5.0)
    return 0


def summarize_receivers(rows: Sequence[Measurement]) -> None:
    """The largest size's figures of the whole DRG (and FRR, the second anchor) against BIRD."""
    if not rows:
        return
    n = max(m.n_prefixes for m in rows)
    bird = next((m for m in rows if m.receiver == ANCHOR and m.n_prefixes == n), None)
    goals = {"daemon-2": (3.0, 150.0), "daemon": (4.0, None)}
    for m in rows:
        if m.n_prefixes != n or m.receiver == ANCHOR:
            continue
        limit, per_route = goals.get(m.receiver, (None, None))
        what = {"daemon-2": "whole DRG, 2 importing tables", "daemon": "whole DRG, 5 importing tables",
                "speaker": "our speaker alone", "frr": "FRR bgpd (second anchor)"}.get(m.receiver, m.receiver)
        for verb, seconds, anchor in (("install", m.seconds, bird.seconds if bird else None),
                                      ("withdraw all", m.withdraw_seconds, bird.withdraw_seconds if bird else None)):
            ratio = seconds / anchor if anchor else None
            SUMMARY.add(f"{n:,} /24s: {what}, {verb}", f"{seconds:.2f} s",
                        f"{ratio:.2f}x BIRD" if ratio else "", f"<= {limit:g}x BIRD" if limit else "",
                        None if limit is None or ratio is None else ratio <= limit)
        if per_route is not None:
            SUMMARY.add(f"{n:,} /24s: {what}, memory", f"{m.bytes_per_route:.0f} B/route", goal=f"<= {per_route:g}",
                        met=m.bytes_per_route <= per_route)


def run_dump() -> int:
    """bench/dump_bench.py: drg routes and the retained MQTT table of 1,000,000 rules."""
    from bench.dump_bench import main as dump_main

    print(flush=True)
    return dump_main([])


def run_events(repeat: int) -> int:
    from bench.events_bench import DEFAULT, format_events, measure

    print("events: what readers cost the routing", file=sys.stderr, flush=True)
    medians = asyncio.run(measure(max(repeat, 7), lambda line: print(line, file=sys.stderr, flush=True)))
    print(format_events(medians), flush=True)
    base = medians[DEFAULT]
    for way in ("reader encodes JSON", "MQTT, Mosquitto", "MQTT, embedded broker"):
        if way in medians:
            ratio = medians[way] / base
            SUMMARY.add(f"40,000 route changes, {way}", f"{medians[way] * 1000:.0f} ms", f"{ratio:.2f}x no reader",
                        "<= 2x no reader", ratio <= 2.0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.sessions < 1 or args.prefixes < 1 or args.idle < 0:
        parser.error("--sessions and --prefixes must be at least 1, --idle at least 0")
    # SIGTERM unwinds like Ctrl-C: asyncio.run cancels the run, and every receiver's context stops its process
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    receivers = load_receivers()
    if args.only == ENGINE:
        return run_engine()
    if args.only == FUZZ:
        from bench.fuzz import main as fuzz

        return fuzz(args.messages)
    if args.only == SESSIONS:
        return run_sessions(args.sessions, args.prefixes, args.idle, args.timeout)
    if args.only == EVENTS:
        return run_events(args.repeat)
    if args.only == "dump":
        return run_dump()
    if args.only is not None and args.only not in receivers:
        known = ", ".join([*sorted(receivers), SESSIONS, EVENTS, ENGINE, "dump", FUZZ])
        hint = " (bench/speaker_receiver.py is not there)" if args.only == "speaker" else ""
        print(f"unknown receiver {args.only!r}{hint}; known: {known}", file=sys.stderr)
        return 2
    if args.only is None:
        names = sorted(receivers, key=lambda r: (ORDER.index(r) if r in ORDER else len(ORDER), r))
    else:
        names = [args.only] if args.no_anchor or args.only == ANCHOR else [ANCHOR, args.only]
    rows = asyncio.run(run_receivers(names, args.sizes, args.repeat, args.timeout))
    print(format_table(rows), flush=True)
    if args.only is not None:
        return 0
    summarize_receivers(rows)
    print(flush=True)
    failed = run_sessions(args.sessions, args.prefixes, args.idle, args.timeout) or run_events(args.repeat) \
        or run_dump() or run_engine()
    print(f"\n{format_summary()}", flush=True)
    return failed


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the receivers have been stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
