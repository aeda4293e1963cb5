"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.lab import Running, all_up, lab_file, start, stop
from tests.support.mqtt import BROKER_KINDS, RunningBroker, make_broker


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Running]:
    """The TransportMode lab (daemon + ExaBGP peers on free ports) with every session up and the
    tunnel routes in rt-vcn; stopped, with every process checked gone, afterwards."""
    run = await start(lab_file("transport-mode", tmp_path), tmp_path)
    try:
        await all_up(run)
        await run.until(lambda: len(run.drg.route_table("rt-vcn")["rules"]) == 2, 10, "tunnel routes in rt-vcn")
        yield run
    finally:
        await stop(run)


@pytest.fixture(params=BROKER_KINDS)
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningBroker]:
    """A running MQTT broker on a free loopback port, once per kind (embedded amqtt; Mosquitto when
    installed, else skipped); stopped afterwards."""
    b = make_broker(request.param, tmp_path)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()
