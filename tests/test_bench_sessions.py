"""The many-sessions benchmark's pieces at tiny scale: its config, its prefixes, and the sender
against a real DRG daemon child (3 sessions x 10 prefixes), every route installed.

The child is the benchmark's own (`bench.many_sessions.SessionsDaemon`: `python -m
bench.many_sessions`); it is stopped by PID (process group) when the context exits, and the test
checks it is gone. No timing is asserted.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import yaml

from bench import ReceiverSpec, free_port
from bench.blaster import encode_updates, prefix_at
from bench.many_sessions import (
    Fleet,
    SessionsDaemon,
    attachment_name,
    format_sessions,
    is_vc,
    run_sessions,
    sessions_config,
    source_address,
)
from controlplane.config.validate import parse_valid

pytestmark = pytest.mark.timeout(90)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_config_is_valid_and_routes_land_in_a_table() -> None:
    doc = sessions_config("127.0.0.1", 1790, 500, 2000)
    config, warnings = parse_valid(yaml.safe_dump(doc), "bench-sessions")
    assert warnings == []
    sessions = [a for a in config.attachments if a.type in ("IPSEC_TUNNEL", "VIRTUAL_CIRCUIT")]
    assert len(sessions) == 500
    assert sum(1 for a in sessions if a.type == "VIRTUAL_CIRCUIT") == 10
    peers = [a.bgp.peer for a in sessions if a.bgp is not None]
    assert peers == [source_address(i) for i in range(500)]
    assert len(set(peers)) == 500 and all(p.startswith("127.") for p in peers)
    assert all(a.bgp is not None and a.bgp.max_prefixes.ipv4 >= 2000 for a in sessions)
    tables = {t.name: t.import_distribution for t in config.route_tables}
    assert tables["rt-vcn"] == "rd-customer"  # imports every tunnel and VC


def test_session_prefixes_are_distinct_across_sessions() -> None:
    first = encode_updates(10, first=0)
    second = encode_updates(10, first=10)
    assert first.data != second.data
    assert [prefix_at(i) for i in (9, 10)] == ["10.0.9.0/24", "10.0.10.0/24"]
    assert [attachment_name(i) for i in range(3)] == ["vc0", "tun1", "tun2"]
    assert is_vc(50) and not is_vc(49)


async def test_three_sessions_install_every_route() -> None:
    result = await run_sessions(3, 10, idle_seconds=0.2, wait_limit=60)
    assert result.routes == 30
    assert result.sessions_up == 3
    assert result.hold_time == 30  # the DRG's default: keepalives every 10 s
    assert "routes installed" in format_sessions(result)


async def test_daemon_child_is_stopped_by_pid_and_sessions_get_the_vcn_route() -> None:
    spec = ReceiverSpec(port=free_port())
    fleet = Fleet(spec.host, spec.port, 3, 10)
    async with SessionsDaemon(spec, 3, 10) as daemon:
        pid = daemon.pid
        try:
            await fleet.start(30)
            await daemon.wait_count(30, 30)
            # each session is sent the VCN subnet (its table imports the VCN) in an UPDATE
            for _ in range(200):
                if min(s.updates for s in fleet.members) >= 1:
                    break
                await asyncio.sleep(0.05)
            assert min(s.updates for s in fleet.members) >= 1
            assert fleet.up == 3 and fleet.failures == []
        finally:
            await fleet.stop()
    assert _gone(pid)
