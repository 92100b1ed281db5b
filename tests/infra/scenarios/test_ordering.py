"""`shop scenario ordering` against both brokers, and once through the real CLI: without a
key some orders' statuses are applied out of order, keyed by aggregate id none are."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from infra.scenarios import ordering

ROOT = Path(__file__).resolve().parents[3]


def figures(output: str, row: str) -> tuple[int, int]:
    """The two columns (no key, keyed) of one table row."""
    match = re.search(rf"^{re.escape(row)}\s+(\d+)\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, f"no row {row!r} in:\n{output}"
    return int(match[1]), int(match[2])


def assert_the_lesson_shows(output: str) -> None:
    unkeyed, keyed = figures(output, "out-of-order applications")
    assert unkeyed > 0 and keyed == 0
    affected_unkeyed, affected_keyed = figures(output, "aggregates affected")
    assert affected_unkeyed > 0 and affected_keyed == 0
    events = ordering.ORDERS * len(ordering.STATUSES)
    assert figures(output, "events") == (events, events)
    assert figures(output, "events applied") == (events, events)
    assert figures(output, "partitions") == (ordering.PARTITIONS, ordering.PARTITIONS)
    assert figures(output, "most partitions one order used")[1] == 1
    assert "verdict: PASS" in output


async def test_unkeyed_events_are_applied_out_of_order_and_keyed_ones_never(bootstrap, capsys):
    assert await ordering.run(bootstrap) == 0
    assert_the_lesson_shows(capsys.readouterr().out)


def test_the_cli_starts_its_own_dev_broker_and_prints_the_table():
    env = {key: value for key, value in os.environ.items() if key != "SHOP_KAFKA_BOOTSTRAP"}
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shop"), "scenario", "ordering"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.startswith(f"scenario ordering: {ordering.DESCRIPTION}\n")
    assert "started for this run" in result.stdout
    assert_the_lesson_shows(result.stdout)
