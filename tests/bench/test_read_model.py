"""bench/read_model.py in its quick mode, as a user runs it: it starts the whole system with two
read models (one on Redis), seeds members and orders, checks that the views and both
fan-outs give the same page, and prints the table, the ratios and the targets. The figures
are the docs' business (docs/bench-read-model.md); this only keeps the script working."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.conftest import _unavailable

# Starts eight processes: not in `make test-fast`.
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
# A Redis database of the bench's own on the tests' server: the bench flushes it.
BENCH_REDIS_DB = 13
ROWS = ("view, no Redis", "view, Redis", "fan-out HTTP", "fan-out gRPC")
FIGURES = r"(?: +\d+ +[\d.]+ +[\d.]+){2}$"  # req/s, p50, p99 at 1 and at 32 readers
VERDICT = re.compile(r": [\d.]+x (MET|MISSED); p99 <= 0\.2x: [\d.]+x (MET|MISSED)$", re.M)


def bench_redis() -> str:
    parts = urlsplit(os.environ.get("SHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    url = urlunsplit(parts._replace(path=f"/{BENCH_REDIS_DB}"))
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    finally:
        client.close()
    return url


def test_the_bench_measures_views_and_fanouts_and_freshness():
    url = bench_redis()
    # Only the bench's own settings: a SHOP_ variable of the calling shell (a PostgreSQL URL,
    # a broker) would be read by every process it starts.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    result = subprocess.run(
        [sys.executable, "bench/read_model.py", "--quick", "--redis", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "same page check: member" in out
    for row in ROWS:
        assert re.search(rf"^  {row} {FIGURES}", out, re.M), (row, out)
    assert out.count("\n  CPU ms per page") == 1
    assert "what one read costs read model A" in out
    assert len(VERDICT.findall(out)) == 4  # each view at 1 and at 32 readers
    assert "interpolated from buckets" in out
    assert re.search(r"^  freshness p99 <= 200 ms at 200 orders/s: .*(MET|MISSED)", out, re.M)
    assert "machine: " in out
