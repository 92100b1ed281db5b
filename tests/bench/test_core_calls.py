"""bench/core_calls.py at a tiny size, as a user runs it: it starts its processes, compares
each core call over gRPC and over HTTP and prints a table for each. The figures are the
docs' business (docs/services/order.md, payment.md); this only keeps the script working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Starts four processes: not in `make test-fast`.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
VERDICT = re.compile(r"^ +(1|16) callers: p50 [\d.]+x HTTP's \((meets|misses) the target", re.M)


def test_the_bench_compares_every_core_call_over_grpc_and_http():
    # Only the bench's own settings: a SHOP_ variable of the calling shell (a PostgreSQL URL,
    # a broker) would be read by every process it starts.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = subprocess.run(
        [sys.executable, "bench/core_calls.py", "--calls", "20", "--rounds", "1", "--warmup", "5"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for title in ("Member lookup", "Order lookup", "Points spend"):
        assert f"\n{title}" in result.stdout
    assert len(VERDICT.findall(result.stdout)) == 6  # 3 calls at 1 and 16 callers
