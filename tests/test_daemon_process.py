"""`drg run` as a real process: logs, `drg events`, SIGHUP re-reads the file, SIGTERM sends Cease.

The daemon runs through the console entry point (``python -m controlplane run FILE``) in its own
process group, the on-prem routers are real ExaBGP processes, and every process is stopped by PID.
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

from peers.exabgp import Route, pid_running
from peers.lab import Lab, specs_from_config
from tests.support.lab import lab_file
from tests.support.paths import ROOT

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


class DaemonProcess:
    def __init__(self, path: Path, tmp: Path) -> None:
        self.path = path
        self.doc = yaml.safe_load(path.read_text())
        self.api = self.doc["api"]["listen"]
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "controlplane", "run", str(self.path)],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "controlplane", *args, "--api", self.api],
                              capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)

    def sessions(self) -> dict[str, str]:
        out = self.cli("sessions", "--json")
        if out.returncode != 0:
            return {}
        return {s["attachment"]: s["state"] for s in json.loads(out.stdout)["sessions"]}

    async def wait(self, predicate: Any, limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not await asyncio.to_thread(predicate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not within {limit} s; log:\n{self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)

    def stop(self) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                return proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[DaemonProcess, Lab]]:
    daemon = DaemonProcess(lab_file("transport-mode", tmp_path), tmp_path)
    daemon.start()
    lab = Lab()
    try:
        await lab.start(specs_from_config(daemon.doc), tmp_path / "peers")
        yield daemon, lab
    finally:
        daemon.stop()
        await lab.stop()
        assert daemon.proc is not None and not pid_running(daemon.proc.pid)
        assert not [pid for pid in lab.pids() if pid_running(pid)]


ALL_UP = {"att-vc1": "Established", "att-tun1": "Established", "att-tun2": "Established"}


async def test_run_logs_events_sighup_and_sigterm(running: tuple[DaemonProcess, Lab], tmp_path: Path) -> None:
    daemon, lab = running
    await daemon.wait(lambda: daemon.sessions() == ALL_UP, 40, "all sessions Established")
    # `drg events` follows the daemon through the control API.
    follower = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "events", "--json", "--api", daemon.api],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
    )
    try:
        await asyncio.sleep(1.0)
        await lab["edge"].announce(Route("10.99.0.0/16", next_hop="192.168.100.2", as_path=[65001]))
        assert follower.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(follower.stdout.readline), 10)
        event = json.loads(line)
        assert event["type"] in ("route-table-change", "advertisement-change")
        assert "10.99.0.0/16" in line.decode()
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        follower.wait(5)
        if follower.stdout is not None:
            follower.stdout.close()
    # SIGHUP re-reads the file: a static route in rt-ipsec is advertised to the tunnel peers.
    doc = yaml.safe_load(daemon.path.read_text())
    rt = next(t for t in doc["route_tables"] if t["name"] == "rt-ipsec")
    rt["static_routes"] = [{"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]
    daemon.path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert daemon.proc is not None
    os.kill(daemon.proc.pid, signal.SIGHUP)
    await lab["firewall-t1"].wait_for(lambda p: "10.20.0.0/16" in p.received(), 10)
    assert daemon.sessions() == ALL_UP  # nothing else was reset
    # SIGTERM: Cease/Administrative Shutdown to every peer, exit 0.
    rc = daemon.stop()
    assert rc == 0
    for name in ("edge", "firewall-t1", "firewall-t2"):
        await lab[name].wait_for(lambda p: any((n.get("code"), n.get("subcode")) == (6, 2)
                                               for n in p.notifications()), 10)
    log = daemon.log.read_text()
    assert "session-state att-vc1: OpenConfirm -> Established" in log
    assert "route-table-change rt-ipsec: remove" not in log  # a clean stop is no route churn
    assert "route-table-change att-vc1-lb-rt: add 192.168.200.1/32 via att-vc1" in log
    assert "tunnel-state att-tun1: UP" in log


async def test_invalid_file_is_refused_with_exit_1(tmp_path: Path) -> None:
    path = lab_file("transport-mode", tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["route_tables"][0]["static_routes"] = [{"destination": "10.30.0.0/16", "next_hop": "att-vc1"}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "controlplane", "run", str(path)], capture_output=True,
        text=True, timeout=30, cwd=ROOT, check=False)
    assert out.returncode == 1
    assert "R14" in out.stdout + out.stderr


async def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    """A second daemon on the same speaker.listen says which listener and exits 2."""
    import socket as _socket

    path = lab_file("transport-mode", tmp_path)
    listen = yaml.safe_load(path.read_text())["speaker"]["listen"]
    host, port = listen.rsplit(":", 1)
    with _socket.socket() as holder:
        holder.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        holder.bind((host, int(port)))
        holder.listen(1)
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "controlplane", "run", str(path)], capture_output=True,
            text=True, timeout=30, cwd=ROOT, check=False)
    assert out.returncode == 2
    assert f"BGP listener speaker.listen {listen}: Address already in use" in out.stderr
