"""`make lab` the way a newcomer runs it: a fresh clone, the README's command, Ctrl-C.

The clone gets its own virtual environment (the Makefile creates it), the lab brings up every
session of examples/transport-mode.yaml on the default ports, and Ctrl-C (SIGINT to the foreground
process group, as a terminal sends it) must stop the daemon and every ExaBGP process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.ports import port_busy

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]



def processes_under(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().split()
        except OSError:
            continue
        if str(path) in cmdline and stat[2] != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_make_lab_from_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed")
    busy = [p for p in (1790, 8790) if port_busy(p)]
    if busy:
        pytest.skip(f"default lab ports {busy} are in use (is a `make lab` running?)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=60)
    log = tmp_path / "make-lab.log"
    with log.open("wb") as log_out:
        proc = subprocess.Popen(["make", "lab"], cwd=clone, stdout=log_out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONWARNINGS": ""})
    try:
        drg = clone / ".venv" / "bin" / "drg"
        deadline = time.monotonic() + 400
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"make lab exited early:\n{log.read_text()[-3000:]}"
            if drg.exists():
                out = subprocess.run([str(drg), "sessions", "--json"], capture_output=True, text=True,
                                     timeout=30, check=False)
                if out.returncode == 0:
                    states = {s["attachment"]: s["state"] for s in json.loads(out.stdout)["sessions"]}
                    # The guide is printed once every peer process has started; sessions may be up sooner.
                    if states and set(states.values()) == {"Established"} and "drg sessions" in log.read_text():
                        break
            time.sleep(1)
        assert states == {"att-vc1": "Established", "att-tun1": "Established", "att-tun2": "Established"}, (
            f"{states}\n{log.read_text()[-3000:]}")
        assert "drg sessions" in log.read_text()  # the guide was printed
        assert "\nopen http://127.0.0.1:8790/\n" in log.read_text()  # ending with the console's address
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    deadline = time.monotonic() + 10
    while processes_under(clone) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_under(clone)
    assert not left, f"processes left behind after Ctrl-C: {left}"
    assert not port_busy(1790) and not port_busy(8790)
