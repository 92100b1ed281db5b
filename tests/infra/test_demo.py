"""The demo end to end, as `make demo` runs it (smaller load)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_walks_the_journey_and_load_and_every_invariant_holds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "infra", "demo", "--workers", "6", "--rounds", "4"],
        cwd=ROOT,
        env={**os.environ, "SHOP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "RESULT: PASS" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("  FAIL")]
    assert (tmp_path / "demo" / "legacy.db").exists()


def test_the_demo_exits_non_zero_when_an_invariant_breaks(tmp_path):
    # A server limit too short for any write makes requests time out: the demo must say so.
    result = subprocess.run(
        [sys.executable, "-m", "infra", "demo", "--workers", "2", "--rounds", "1"],
        cwd=ROOT,
        env={**os.environ, "SHOP_DATA_DIR": str(tmp_path), "SHOP_MONOLITH_SERVER_LIMIT": "0.0001"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1
    assert "RESULT: FAIL" in result.stdout
