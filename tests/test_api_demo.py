"""The README's API example (examples/api_demo.py) runs as documented, with real ExaBGP peers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT
from tests.support.ports import port_busy

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]


def test_api_demo_runs() -> None:
    busy = [p for p in (1790, 8790) if port_busy(p)]
    if busy:
        pytest.skip(f"default lab ports {busy} are in use (is a `make lab` running?)")
    out = subprocess.run([sys.executable, "examples/api_demo.py"], cwd=ROOT, capture_output=True, text=True,
                         timeout=100, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "rt-vcn: 172.20.10.0/24 -> att-tun2 conflict" in lines
    assert "advertised to att-vc1: ['172.16.255.1/32', '172.16.255.2/32']" in lines
    assert "trace: att-vcn:FORWARD -> att-tun1:ENCRYPT -> att-tun1-lb:FORWARD -> att-vc1:EXIT DELIVERED" in lines
    assert "advertised to att-vc1: ['10.10.1.0/24', '172.16.255.1/32', '172.16.255.2/32']" in lines
