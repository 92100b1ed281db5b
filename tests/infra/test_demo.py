"""The demo end to end, as `make demo` runs it (smaller load)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Whole systems: not in `make test-fast`. A walk of ten stages, three of them metric-gated
# ramps, and a rebuild of the read model take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def demo(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra", "demo", *args],
        cwd=ROOT,
        env={**os.environ, "SHOP_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=570,
    )


def assert_walked_every_stage(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert "RESULT: PASS" in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("  FAIL")]
    for number in range(10):
        assert f"  PASS  stage {number} (" in result.stdout
    assert "4 member single write" in result.stdout
    assert "8 commerce single write" in result.stdout
    assert "9 CQRS read model" in result.stdout
    assert "  PASS  the read model rebuilt from the log in " in result.stdout
    assert "  PASS  every member's my page (read model) says what the owners say" in result.stdout


def test_the_demo_walks_stages_0_to_9_and_every_invariant_holds(tmp_path):
    result = demo(tmp_path, "--workers", "6", "--rounds", "4", "--stage-seconds", "2")
    assert_walked_every_stage(result)
    for db in ("legacy", "member", "order", "payment"):
        assert (tmp_path / "demo" / f"{db}.db").exists()


def test_the_same_walk_passes_on_postgresql(tmp_path, postgres_databases, two_phase):
    """Four PostgreSQL databases (legacy, member, order, payment): shared with the sync jobs,
    dual write by two-phase commit, single write with the legacy tables frozen by triggers;
    the read model's views in a fifth, with the Redis cache in front."""
    legacy, member, order, payment, views = (postgres_databases() for _ in range(5))
    result = demo(
        tmp_path,
        "--workers",
        "4",
        "--rounds",
        "3",
        "--stage-seconds",
        "2",
        SHOP_MONOLITH_DB_URL=legacy,
        SHOP_MEMBER_DB_URL=member,
        SHOP_ORDER_DB_URL=order,
        SHOP_PAYMENT_DB_URL=payment,
        SHOP_READ_MODEL_STORE_URL=views,
        SHOP_REDIS_URL=os.environ.get("SHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    assert_walked_every_stage(result)
    assert not (tmp_path / "demo" / "legacy.db").exists()


def test_the_demo_exits_non_zero_when_an_invariant_breaks(tmp_path):
    # A server limit too short for any write makes requests time out: the demo must say so.
    result = subprocess.run(
        [sys.executable, "-m", "infra", "demo", "--workers", "2", "--rounds", "1"],
        cwd=ROOT,
        env={
            **os.environ,
            "SHOP_DATA_DIR": str(tmp_path),
            "SHOP_MONOLITH_SERVER_LIMIT": "0.0001",
            "SHOP_MONOLITH_MEMBER_TIMEOUT": "0.00005",
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1
    assert "RESULT: FAIL" in result.stdout
