"""Two DRGs in one daemon against real ExaBGP peers: examples/two-regions.yaml, worked example 2 of
oci-drg-transit.md section 9 (R94-R110).

The daemon runs drg-a and drg-b behind one BGP listener; edge-a (att-a-vc) and edge-b (att-b-vc)
announce 172.20.0.0/16. The RPC routes between the DRGs are exchanged in process (R109), so each
table of both DRGs must equal section 9's, each edge must receive exactly section 9's "Exchanged and
advertised" routes, and the running daemon must equal the offline mode of the same files. The CLI,
the control API and the events name the DRG; a new file applied live moves routes across the RPC.
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

from controlplane.engine.drgs import drgs_from_files
from tests.support.lab import Running, adj_in, drg_cli, lab_file, start, stop
from tests.support.paths import EXAMPLES, ROOT
from tests.support.ports import free_port
from tests.support.two_regions import EDGE_A, EDGE_B, ONPREM, TABLES, USED_BY, rows, used_by

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


@pytest.fixture
async def regions(tmp_path: Path) -> AsyncIterator[Running]:
    run = await start(lab_file("two-regions", tmp_path), tmp_path)
    try:
        yield run
    finally:
        await stop(run)


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``drg ARGS`` in a thread: the daemon's event loop runs in this one."""
    return await asyncio.to_thread(drg_cli, *args)


async def both_up(run: Running) -> None:
    for name in ("att-a-vc", "att-b-vc"):
        await run.drg.wait_established(name, timeout=30)


async def test_two_regions_end_to_end(regions: Running) -> None:
    run = regions
    await both_up(run)
    await run.until(lambda: rows(run.drg.route_tables()) == TABLES, 10, "section 9's tables")
    assert used_by(run.drg.route_tables()) == USED_BY
    # Section 9, "Exchanged and advertised": edge-a gets both VCNs, edge-b only its own region's (R96).
    await run.lab["edge-a"].wait_for(lambda p: adj_in(run.lab, "edge-a") == EDGE_A, 10)
    await run.lab["edge-b"].wait_for(lambda p: adj_in(run.lab, "edge-b") == EDGE_B, 10)
    assert [r["prefix"] for r in run.drg.advertised("att-a-vc")["routes"]] == ["10.10.1.0/24", "10.20.1.0/24"]
    assert run.drg.advertised("att-b-vc")["drg"] == "drg-b"
    # The daemon's tables are what the offline mode computes from the same files.
    offline = drgs_from_files(run.path, EXAMPLES / "learned-two-regions.yaml")
    assert run.drg.route_tables() == offline.routes()
    # One DRG, and a table name both DRGs have.
    assert [d["drg"] for d in run.drg.route_tables(drg="drg-b")["drgs"]] == ["drg-b"]
    assert rows({"drgs": [{"drg": "drg-b", "routeTables": [run.drg.route_table("autogen-rt-vcn", drg="drg-b")]}]}) \
        == {"drg-b": {"autogen-rt-vcn": TABLES["drg-b"]["autogen-rt-vcn"]}}
    with pytest.raises(ValueError, match="drg-a, drg-b all have a route table autogen-rt-vcn"):
        run.drg.route_table("autogen-rt-vcn")
    sessions = {s["attachment"]: (s["drg"], s["state"]) for s in run.drg.sessions()["sessions"]}
    assert sessions == {"att-a-vc": ("drg-a", "Established"), "att-b-vc": ("drg-b", "Established")}


async def test_the_cli_and_the_control_api_name_the_drg(regions: Running) -> None:
    run = regions
    await both_up(run)
    await run.until(lambda: rows(run.drg.route_tables()) == TABLES, 10, "section 9's tables")
    out = await cli("routes", "--api", run.api, "--drg", "drg-b", "--json")
    assert out.returncode == 0, out.stderr
    assert rows(json.loads(out.stdout)) == {"drg-b": TABLES["drg-b"]}
    both = await cli("routes", "autogen-rt-other", "--api", run.api, "--json")
    assert [d["drg"] for d in json.loads(both.stdout)["drgs"]] == ["drg-a", "drg-b"]
    text = await cli("routes", "--api", run.api, "--attachment", "att-b-rpc")
    assert text.stdout.startswith("DRG drg-b\n\nRoute table autogen-rt-other")
    sessions = json.loads((await cli("sessions", "--api", run.api, "--drg", "drg-a", "--json")).stdout)["sessions"]
    assert [(s["drg"], s["attachment"]) for s in sessions] == [("drg-a", "att-a-vc")]
    offered = json.loads((await cli("offered", "att-b-rpc", "--api", run.api, "--json")).stdout)
    assert offered["drg"] == "drg-b"
    assert [(r["prefix"], r["asPath"]) for r in offered["routes"]] == [
        ("10.10.1.0/24", []), (ONPREM, [65001])]  # drg-a's export of rt-a-rpc, AS path unchanged (R97, R98)
    unknown = await cli("routes", "--api", run.api, "--drg", "drg-c")
    assert unknown.returncode == 1 and "no DRG 'drg-c'" in unknown.stderr


async def test_a_revoked_peering_applied_live(regions: Running) -> None:
    """V4 (R110) through ``drg apply``: drg-b loses both RPC routes, edge-a loses 10.20.1.0/24, and the
    route-table-change events name their DRG; the original file brings everything back."""
    run = regions
    await both_up(run)
    await run.until(lambda: rows(run.drg.route_tables()) == TABLES, 10, "section 9's tables")
    doc: dict[str, Any] = yaml.safe_load(run.path.read_text())
    doc["drgs"][0]["attachments"][2]["peering_status"] = "REVOKED"
    revoked = run.path.with_name("revoked.yaml")
    revoked.write_text(yaml.safe_dump(doc, sort_keys=False))
    events = run.drg.events()
    out = await cli("apply", str(revoked), "--api", run.api, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    applied = json.loads(out.stdout)
    assert [d["drg"] for d in applied["summary"]["drgs"]] == ["drg-a", "drg-b"]
    assert applied["changes"] == ["drg-a: route table rt-a-vcn: +0 -1 ~0", "drg-a: route table rt-a-vc: +0 -1 ~0",
                                  "drg-a: route table autogen-rt-vcn: +0 -1 ~0", "drg-a: advertised to att-a-vc: +0 -1",
                                  "drg-b: route table autogen-rt-vcn: +0 -2 ~0"]
    assert rows(run.drg.route_tables(drg="drg-b"))["drg-b"]["autogen-rt-vcn"] == [
        ("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False), (ONPREM, "att-b-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)]
    await run.lab["edge-a"].wait_for(lambda p: adj_in(run.lab, "edge-a") == {
        "10.10.1.0/24": ([31898], "192.168.100.1")}, 10)
    seen = []
    while not events.queue.empty():
        event = events.queue.get_nowait()
        seen.append((event.type.value, event.drg, event.subject))
    events.close()
    assert ("route-table-change", "drg-b", "autogen-rt-vcn") in seen
    assert ("route-table-change", "drg-a", "rt-a-vc") in seen
    assert ("config-applied", None, None) in seen
    back = await cli("apply", str(run.path), "--api", run.api)
    assert back.returncode == 0, back.stdout + back.stderr
    await run.lab["edge-a"].wait_for(lambda p: adj_in(run.lab, "edge-a") == EDGE_A, 10)
    assert rows(run.drg.route_tables()) == TABLES


async def test_drg_lab_runs_both_regions(tmp_path: Path) -> None:
    """``drg lab examples/two-regions.yaml`` (what ``make lab CONFIG=...`` runs): both DRGs, edge-a and
    edge-b up, the guide, and Ctrl-C (SIGINT to the process group) stops everything with exit 0."""

    def ports(doc: dict[str, Any]) -> None:
        doc["events"]["embedded_listen"] = f"127.0.0.1:{free_port()}"

    path = lab_file("two-regions", tmp_path, ports)
    api = yaml.safe_load(path.read_text())["api"]["listen"]
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "controlplane", "lab", str(path)], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while states != {"att-a-vc": "Established", "att-b-vc": "Established"}:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
            done = await cli("sessions", "--api", api, "--json")
            if done.returncode == 0:
                states = {s["attachment"]: s["state"] for s in json.loads(done.stdout)["sessions"]}
        routes = json.loads((await cli("routes", "--api", api, "--json")).stdout)
        deadline = time.monotonic() + 10
        while rows(routes) != TABLES and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            routes = json.loads((await cli("routes", "--api", api, "--json")).stdout)
        assert rows(routes) == TABLES
        text = log.read_text()
        assert "DRGs drg-a, drg-b lab is running" in text
        assert "  drg-a: on-prem edge-a: ExaBGP on session att-a-vc" in text
        assert "advertised att-b-vc" in text and "routes --drg drg-b" in text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()[-3000:]
