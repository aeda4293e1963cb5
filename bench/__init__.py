"""BGP ingest benchmarks: a pre-encoded blaster against pluggable receivers, BIRD as the anchor.

How it works:

* A *receiver* is whatever speaks BGP on `spec.host:spec.port` (127.0.0.1:PORT) with local AS
  65000, expecting the neighbor 127.0.0.2 AS 65001. It is made by a factory registered here,
  `register_receiver(name, factory)`, where `factory(spec)` returns an async context manager
  whose value offers `async wait_count(n, timeout) -> float` (the time.perf_counter() at which
  at least n prefixes were installed), `async wait_count_at_most(n, timeout) -> float` (at which
  at most n were left) and `rss_bytes() -> int` (its resident memory now). `bench.bird`
  registers "bird", `bench.frr` "frr", `bench.speaker_receiver` "speaker" and
  `bench.daemon_receiver` "daemon" and "daemon-2" (each module only if present).
* `measure()` pre-encodes the UPDATEs and the withdrawals, starts the receiver on a free port,
  records its RSS, runs `bench.blaster.blast()` from 127.0.0.2, waits for the count and reports
  the time from the blaster's t0 (first UPDATE byte written) to all n installed, plus RSS growth
  per route; then it sends the withdrawals on the same session and reports the time from their
  first byte until the receiver's count is 0.
* `python -m bench` prints the table (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import socket
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "RECEIVERS",
    "Measurement",
    "PollingReceiver",
    "Receiver",
    "ReceiverFactory",
    "ReceiverSpec",
    "free_port",
    "load_receivers",
    "measure",
    "median_measurement",
    "proc_rss_bytes",
    "register_receiver",
]


@dataclass(frozen=True)
class ReceiverSpec:
    """Where a receiver listens and whom it expects (the blaster's side of the session)."""

    port: int
    host: str = "127.0.0.1"
    local_as: int = 65000
    peer_address: str = "127.0.0.2"
    peer_as: int = 65001


class Receiver(Protocol):
    async def wait_count(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        """time.perf_counter() when at least n prefixes are installed; TimeoutError after timeout s."""
        ...

    async def wait_count_at_most(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        """time.perf_counter() when at most n prefixes are installed; TimeoutError after timeout s."""
        ...

    def rss_bytes(self) -> int:
        """Resident memory of the receiver now, in bytes."""
        ...


ReceiverFactory = Callable[[ReceiverSpec], AbstractAsyncContextManager[Receiver]]

RECEIVERS: dict[str, ReceiverFactory] = {}

# modules that register receivers when imported; missing optional ones are skipped
_RECEIVER_MODULES = ("bench.bird", "bench.frr", "bench.speaker_receiver", "bench.daemon_receiver")


def register_receiver(name: str, factory: ReceiverFactory) -> None:
    RECEIVERS[name] = factory


def load_receivers() -> dict[str, ReceiverFactory]:
    """Import the receiver modules that exist (errors inside them are not hidden)."""
    for module in _RECEIVER_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return RECEIVERS


def proc_rss_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Measurement:
    receiver: str
    n_prefixes: int
    seconds: float  # blaster t0 -> n installed
    send_seconds: float  # blaster t0 -> every byte handed to the kernel
    encode_seconds: float
    rss_before: int
    rss_after: int
    withdraw_seconds: float  # first withdrawal byte -> the receiver's count is 0

    @property
    def prefixes_per_second(self) -> float:
        return self.n_prefixes / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bytes_per_route(self) -> float:
        return (self.rss_after - self.rss_before) / self.n_prefixes if self.n_prefixes else 0.0


async def measure(
    name: str, factory: ReceiverFactory, n_prefixes: int, wait_limit: float = 300.0
) -> Measurement:
    """One run: receiver up, blast n_prefixes, wait until all are installed, withdraw them all,
    wait until none is left, receiver down."""
    from bench.blaster import blast, encode_updates, encode_withdrawals

    spec = ReceiverSpec(port=free_port())
    encoded = encode_updates(n_prefixes, spec.peer_as)
    withdrawals = encode_withdrawals(n_prefixes, spec.peer_as)
    async with factory(spec) as receiver:
        rss_before = receiver.rss_bytes()
        result = await blast(
            spec.host,
            spec.port,
            spec.peer_address,
            spec.peer_as,
            spec.local_as,
            n_prefixes,
            encoded=encoded,
        )
        try:
            t_done = await receiver.wait_count(n_prefixes, wait_limit)
            rss_after = receiver.rss_bytes()
            t_withdraw, _ = await result.send(withdrawals.data, wait_limit)
            t_gone = await receiver.wait_count_at_most(0, wait_limit)
        finally:
            await result.stop()
    return Measurement(
        receiver=name,
        n_prefixes=n_prefixes,
        seconds=t_done - result.t0,
        send_seconds=result.send_seconds,
        encode_seconds=result.encode_seconds,
        rss_before=rss_before,
        rss_after=rss_after,
        withdraw_seconds=t_gone - t_withdraw,
    )


def median_measurement(runs: list[Measurement]) -> Measurement:
    """The run with the median time (its memory figures come with it)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    middle = statistics.median_low([m.seconds for m in ordered])
    return next(m for m in ordered if m.seconds == middle)


class PollingReceiver(ABC):
    """A receiver that learns its route count by polling its control CLI (BIRD's birdc, FRR's vtysh):
    subclasses give ``poll_count``, ``check_running`` and ``stop``; the waits and the exit are shared."""

    program = "receiver"
    poll_seconds = 0.02

    @abstractmethod
    async def poll_count(self) -> tuple[int, bool]:
        """(routes installed now, whether the receiver is settled: no work queued)."""

    @abstractmethod
    def check_running(self, last: int) -> None:
        """Raise RuntimeError (with what the process said) when it is no longer running."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the receiver's process (by PID) and remove its files."""

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_count(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        """perf_counter() of the first settled poll that saw at least n routes."""
        return await self._wait(lambda count: count >= n, f"at least {n}", timeout)

    async def wait_count_at_most(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        """perf_counter() of the first settled poll that saw at most n routes."""
        return await self._wait(lambda count: count <= n, f"at most {n}", timeout)

    async def _wait(self, want: Callable[[int], bool], what: str, timeout: float) -> float:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            last, settled = await self.poll_count()
            now = time.perf_counter()
            if settled and want(last):
                return now
            self.check_running(last)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.program} has {last} routes, not {what}, after {timeout} s")
            await asyncio.sleep(self.poll_seconds)
