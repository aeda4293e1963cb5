"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.test_e2e_lab import Running, all_up, lab_file, start, stop


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
