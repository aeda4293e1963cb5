"""The lab's closing guide prints commands that work as printed (issue 15's note on ``make lab``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config.drgs import load_valid_design
from controlplane.config.validate import load_valid
from controlplane.lab import guide, multi_guide
from tests.support.paths import EXAMPLES


def test_the_guide_names_the_venv_program_when_drg_is_not_on_path(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("sys.argv", [str(tmp_path / ".venv" / "bin" / "drg"), "lab"])
    config, _ = load_valid(EXAMPLES / "hub-firewall.yaml")
    lines = guide(config, EXAMPLES / "hub-firewall.yaml").splitlines()
    assert "  .venv/bin/drg sessions                 BGP sessions and tunnel state" in lines
    # the trace starts in a spoke subnet that routes to the DRG and goes to what a tunnel peer announces
    assert "  .venv/bin/drg trace --from vcn-spoke1 --src 10.10.1.10 --dst 172.20.10.10" in lines


def test_the_guide_says_drg_when_it_is_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "drg").write_text("#!/bin/sh\n")
    (tmp_path / "drg").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["/somewhere/.venv/bin/drg", "lab"])
    config, _ = load_valid(EXAMPLES / "transport-mode.yaml")
    text = guide(config, EXAMPLES / "transport-mode.yaml")
    assert "\n  drg sessions " in text and ".venv/bin/drg" not in text
    assert "  drg trace --from att-vcn --src 10.10.1.10 --dst 172.20.10.10" in text.splitlines()


def test_the_guide_ends_with_the_console_address(tmp_path: Path) -> None:
    config, _ = load_valid(EXAMPLES / "transport-mode.yaml")
    assert guide(config, EXAMPLES / "transport-mode.yaml").rstrip().splitlines()[-1] == "open http://127.0.0.1:8790/"
    moved = config.model_copy(update={"api": config.api.model_copy(update={"listen": "127.0.0.1:8791"})})
    assert guide(moved, tmp_path / "x.yaml").rstrip().endswith("\nopen http://127.0.0.1:8791/")
    two, _ = load_valid_design(EXAMPLES / "two-regions.yaml")
    assert isinstance(two, list)
    assert multi_guide(two, EXAMPLES / "two-regions.yaml").rstrip().endswith("\nopen http://127.0.0.1:8790/")
