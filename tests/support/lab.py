"""The daemon in-process with one ExaBGP process per ``onprem`` entry of an example file.

``lab_file`` writes an example with free loopback ports (tests may run while a ``make lab`` holds
the defaults), ``start``/``stop`` run and tear down the daemon and its peers (``stop`` checks that no
peer process is left), and the rest are the views the lab tests compare: golden tables, a peer's
Adj-RIB-In, the ``drg`` CLI's output.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controlplane import Drg
from peers.exabgp import pid_running
from peers.lab import Lab, specs_from_config
from tests.support.paths import EXAMPLES, GOLDEN, ROOT
from tests.support.ports import free_port

SESSIONS = ("att-vc1", "att-tun1", "att-tun2")  # the BGP sessions of both examples


def lab_file(design: str, tmp: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The example file ``design`` with free ports, edited by ``edit``, written into ``tmp``."""
    doc = yaml.safe_load((EXAMPLES / f"{design}.yaml").read_text())
    doc["speaker"]["listen"] = f"127.0.0.1:{free_port()}"
    doc["api"]["listen"] = f"127.0.0.1:{free_port()}"
    for att in attachments_of(doc):
        bgp = att.get("bgp")
        if bgp and bgp.get("connect") == "active":
            bgp["peer_port"] = free_port(bgp["peer"])
    if edit is not None:
        edit(doc)
    path = tmp / f"{design}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def attachments_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every attachment of a file's dict, of one DRG or of every DRG of a ``drgs:`` file."""
    return [a for item in doc.get("drgs") or [doc] for a in item.get("attachments") or []]


def peer_specs(doc: dict[str, Any]) -> list[Any]:
    """The on-prem peers of a file's dict; of a ``drgs:`` file, each with the DRG of its session."""
    if "drgs" not in doc:
        return specs_from_config(doc)
    specs = []
    for item in doc["drgs"]:
        names = {a["name"] for a in item.get("attachments") or []}
        mine = [p for p in doc.get("onprem") or [] if p["session"] in names]
        specs += specs_from_config({"speaker": doc.get("speaker") or {}, **item, "onprem": mine})
    return specs


def add_second_vc(doc: dict[str, Any], announce: list[dict[str, Any]] | None = None) -> None:
    """A design edit: att-vc2 (AS 65003, peer 127.0.0.6) with its own table rt-vc2, which imports every
    attachment (MATCH_ALL), and its on-prem router edge2 announcing ``announce``."""
    doc["attachments"].append({"name": "att-vc2", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc2",
                               "bgp": {"oracle_ip": "192.168.101.1/30", "customer_ip": "192.168.101.2/30",
                                       "customer_asn": 65003, "peer": "127.0.0.6", "connect": "passive"}})
    doc["route_tables"].append({"name": "rt-vc2", "import_distribution": "rd-all"})
    doc["distributions"].append({"name": "rd-all", "statements": [{"priority": 10, "match": "all"}]})
    doc["onprem"].append({"name": "edge2", "session": "att-vc2", "announce": announce or []})


@dataclass
class Running:
    drg: Drg
    lab: Lab
    path: Path
    api: str

    async def until(self, predicate: Callable[[], bool], limit: float, what: str) -> None:
        deadline = time.monotonic() + limit
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not within {limit} s; sessions: {self.drg.sessions()}")
            await asyncio.sleep(0.05)

    def session(self, name: str) -> dict[str, Any]:
        session: dict[str, Any] = next(s for s in self.drg.sessions()["sessions"] if s["attachment"] == name)
        return session


async def start(path: Path, tmp: Path) -> Running:
    drg = Drg(path)
    await drg.start()
    lab = Lab()
    doc = yaml.safe_load(path.read_text())
    try:
        await lab.start(peer_specs(doc), tmp / "peers")
    except BaseException:
        await drg.stop()
        raise
    return Running(drg, lab, path, doc["api"]["listen"])


async def stop(run: Running) -> None:
    await run.drg.stop()
    await run.lab.stop()
    left = [pid for pid in run.lab.pids() if pid_running(pid)]
    assert not left, f"processes left behind: {left}"


async def all_up(run: Running) -> None:
    for name in SESSIONS:
        await run.drg.wait_established(name, timeout=30)


def golden(design: str) -> dict[str, Any]:
    """The worked example's expected documents (``routes``, ``advertised``) of ``design``."""
    data: dict[str, Any] = json.loads((GOLDEN / f"{design}.json").read_text())
    return data


def tables(doc: dict[str, Any]) -> dict[str, Any]:
    """A ``routeTables`` document keyed by table name."""
    return {t["name"]: t for t in doc["routeTables"]}


def adj_in(lab: Lab, peer: str) -> dict[str, tuple[list[Any], str]]:
    """What the ExaBGP peer ``peer`` received: {prefix: (AS path, next hop)}."""
    return {p: (a["as-path"], a["next-hop"]) for p, a in lab[peer].received().items()}


def drg_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m controlplane ARGS`` from the repository root (bounded, never raises on exit code)."""
    return subprocess.run([sys.executable, "-m", "controlplane", *args], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, check=False)
