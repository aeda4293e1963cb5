"""Where the repository's files are, for tests run from any directory."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"  # the worked examples' route tables (JSON)
VECTORS = ROOT / "tests" / "vectors"  # hex message vectors (.ci)
