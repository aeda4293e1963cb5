"""Two regions, two daemons (R109): worked example 2 with drg-a and drg-b in separate `drg run` processes.

One file per region (examples/two-regions-a.yaml and -b.yaml, with free ports): drg-a's names drg-b's
RPC with ``remote`` (drg-b's daemon's BGP socket) and the other way round; each daemon listens on its
own loopback address and has its own ExaBGP on-prem peer (edge-a, edge-b, both AS 65001 announcing
172.20.0.0/16). The RPC becomes a real iBGP session between the two daemons, and both daemons' tables
(``drg routes --json --api ...``) must equal the one-process result of tests/test_rpc_engine.py.
Every process is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from peers.exabgp import pid_running
from peers.lab import Lab, specs_from_config
from tests.support.paths import EXAMPLES, ROOT
from tests.support.ports import free_port
from tests.support.regions import example2

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

SPEAKER = {"drg-a": "127.0.3.1", "drg-b": "127.0.3.2"}  # one loopback address per daemon


def region_files(tmp: Path) -> dict[str, Path]:
    """examples/two-regions-{a,b}.yaml with free ports: each names the other daemon's socket in its RPC's
    ``peer.remote``."""
    docs = {drg: yaml.safe_load((EXAMPLES / f"two-regions-{drg[-1]}.yaml").read_text()) for drg in SPEAKER}
    ports = {drg: free_port(address) for drg, address in SPEAKER.items()}
    paths = {}
    for drg, doc in docs.items():
        other = "drg-b" if drg == "drg-a" else "drg-a"
        assert doc["speaker"]["listen"].startswith(SPEAKER[drg] + ":")
        doc["speaker"]["listen"] = f"{SPEAKER[drg]}:{ports[drg]}"
        doc["api"]["listen"] = f"127.0.0.1:{free_port()}"
        rpc = next(a for a in doc["attachments"] if a["type"] == "REMOTE_PEERING_CONNECTION")
        assert rpc["peer"]["remote"]["address"] == SPEAKER[other]
        rpc["peer"]["remote"]["port"] = ports[other]
        paths[drg] = tmp / f"{drg}.yaml"
        paths[drg].write_text(yaml.safe_dump(doc, sort_keys=False))
    return paths


class Daemon:
    """One `drg run` process in its own process group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.doc = yaml.safe_load(path.read_text())
        self.api = self.doc["api"]["listen"]
        self.log = path.with_suffix(".log")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "controlplane", "run", str(path)],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)

    def cli(self, *args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "controlplane", *args, "--json", "--api", self.api],
                             capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture
async def regions(tmp_path: Path) -> AsyncIterator[dict[str, tuple[Daemon, Lab]]]:
    started: dict[str, tuple[Daemon, Lab]] = {}
    try:
        for drg, path in region_files(tmp_path).items():
            daemon = Daemon(path)
            lab = Lab()
            started[drg] = (daemon, lab)
            await lab.start(specs_from_config(daemon.doc), tmp_path / f"peers-{drg}")
        yield started
    finally:
        for daemon, lab in started.values():
            daemon.stop()
            await lab.stop()
        for daemon, lab in started.values():
            assert not pid_running(daemon.proc.pid)
            assert not [pid for pid in lab.pids() if pid_running(pid)]


async def until(predicate: Any, limit: float, what: str, daemons: list[Daemon]) -> None:
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {d.log.name}\n{d.log.read_text()[-2500:]}" for d in daemons)
            raise TimeoutError(f"{what} not within {limit} s\n{logs}")
        await asyncio.sleep(0.3)


async def test_two_daemons_joined_by_an_rpc_session_equal_the_one_daemon_result(
        regions: dict[str, tuple[Daemon, Lab]]) -> None:
    daemons = {drg: daemon for drg, (daemon, _) in regions.items()}
    want = {drg: engine.route_tables() for drg, engine in example2().engines.items()}

    def sessions(drg: str) -> dict[str, str]:
        doc = daemons[drg].cli("sessions")
        return {s["session"]: s["state"] for s in doc["sessions"]} if doc else {}

    await until(lambda: sessions("drg-a") == {"att-a-vc": "Established", "att-a-rpc": "Established"}
                and sessions("drg-b") == {"att-b-vc": "Established", "att-b-rpc": "Established"},
                40, "both VCs and the RPC session Established", list(daemons.values()))
    for drg in ("drg-a", "drg-b"):
        await until(lambda d=drg: daemons[d].cli("routes") == want[d], 20,
                    f"{drg}'s tables equal the one-daemon result", list(daemons.values()))
    rpc = next(s for s in daemons["drg-b"].cli("sessions")["sessions"] if s["session"] == "att-b-rpc")
    assert rpc["neighbor"] == "drg-a/att-a-rpc" and rpc["peerAsn"] == rpc["localAsn"] == 31898  # iBGP (R98)
    assert (rpc["prefixesReceived"], rpc["prefixesAdvertised"]) == (2, 1)  # R97: rt-a-rpc / autogen-rt-other
    # each edge gets its own region's advertisement (R36, R96, R107): remote VCNs only where imported
    edge_a = regions["drg-a"][1]["edge-a"]
    await edge_a.wait_for(lambda p: set(p.received()) == {"10.10.1.0/24", "10.20.1.0/24"}, 10)
    edge_b = regions["drg-b"][1]["edge-b"]
    await edge_b.wait_for(lambda p: set(p.received()) == {"10.20.1.0/24"}, 10)
