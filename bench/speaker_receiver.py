"""Our BGP speaker as a benchmark receiver, in a process of its own (so RSS is its alone).

The parent starts ``python -m bench.speaker_receiver HOST PORT LOCAL_AS PEER_ADDRESS PEER_AS``,
waits for ``READY``, then writes ``target N`` (install: at least N) or ``at_most N`` (withdraw: at
most N) on the child's stdin. The child runs one :class:`~controlplane.transport.Speaker` with the
blaster as its only neighbor; on every ``RoutesReceived`` event it compares the Adj-RIB-In size with
the command and, the first time it holds, prints ``REACHED <time.perf_counter()>`` (CLOCK_MONOTONIC:
comparable across processes). No polling is involved, so the figure is the moment the last prefix
went into (or out of) the Adj-RIB-In.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from bench import ReceiverSpec, proc_rss_bytes, register_receiver

ROOT = Path(__file__).resolve().parent.parent  # the child imports this checkout's bench and controlplane


class SpeakerReceiver:
    module = "bench.speaker_receiver"  # the child's entry point (``python -m``)

    stderr: int | None = None  # the child's log: inherited

    def __init__(self, spec: ReceiverSpec) -> None:
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None

    def child_args(self) -> list[str]:
        """The child's command-line arguments (after ``-m MODULE``)."""
        s = self.spec
        return [s.host, str(s.port), str(s.local_as), s.peer_address, str(s.peer_as)]

    async def __aenter__(self) -> Self:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.child_args(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self.stderr,
            start_new_session=True, cwd=ROOT, env=env,
        )
        try:
            line = await asyncio.wait_for(self._line(), 60)
            if line != "READY":
                raise RuntimeError(f"{self.module} did not start: {line!r}")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError(f"{self.module} exited")
        return raw.decode().strip()

    async def wait_count(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        return await self._reached(f"target {n}", timeout)

    async def wait_count_at_most(self, n: int, timeout: float) -> float:  # noqa: ASYNC109
        return await self._reached(f"at_most {n}", timeout)

    async def _reached(self, command: str, timeout: float) -> float:  # noqa: ASYNC109
        """Send one command; the perf_counter() of the child's REACHED line that answers it."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())
        await self.proc.stdin.drain()
        async with asyncio.timeout(timeout):
            while True:
                line = await self._line()
                if line.startswith("REACHED "):
                    return float(line.split()[1])

    def rss_bytes(self) -> int:
        return proc_rss_bytes(self.pid)

    async def __aexit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), 5)
                return
            except TimeoutError:
                continue


register_receiver("speaker", SpeakerReceiver)


class Target:
    """The child's side of the protocol: ``target N`` (count >= N) or ``at_most N`` (count <= N) on
    stdin; ``REACHED <perf_counter>`` once per command on stdout, the first time the count satisfies it."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count
        self.want: Callable[[int], bool] | None = None

    def check(self) -> None:
        if self.want is not None and self.want(self.count()):
            self.want = None
            sys.stdout.write(f"REACHED {time.perf_counter()!r}\n")
            sys.stdout.flush()

    def command(self, line: str) -> None:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "target":
            n = int(parts[1])
            self.want = lambda count: count >= n
        elif len(parts) == 2 and parts[0] == "at_most":
            n = int(parts[1])
            self.want = lambda count: count <= n
        else:
            return
        self.check()  # already there?

    async def serve(self) -> None:
        """Print READY, then read commands from stdin until SIGTERM."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        print("READY", flush=True)

        async def commands() -> None:
            while line := await reader.readline():
                self.command(line.decode())

        task = asyncio.create_task(commands())
        await stop.wait()
        task.cancel()


async def _child(host: str, port: int, local_as: int, peer_address: str, peer_as: int) -> None:
    from controlplane.bgp.outputs import Event, RoutesReceived
    from controlplane.bgp.session import PeerConfig
    from controlplane.transport import Speaker

    def count() -> int:
        rib = speaker.neighbors["blaster"].peer.rib_in
        return rib.count(1) + rib.count(2)

    target = Target(count)

    def on_event(event: Event) -> None:
        if isinstance(event, RoutesReceived):
            target.check()

    speaker = Speaker(host, port, on_event)
    await speaker.start()
    speaker.add_neighbor(
        PeerConfig(name="blaster", local_as=local_as, peer_as=peer_as, router_id=host, hold_time=90),
        peer_address, 179,
    )
    await target.serve()
    await speaker.close("benchmark done")


if __name__ == "__main__":
    h, p, la, pa, pas = sys.argv[1:6]
    asyncio.run(_child(h, int(p), int(la), pa, int(pas)))
