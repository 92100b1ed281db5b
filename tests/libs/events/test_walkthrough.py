"""docs/events.md shows the walkthrough's output: it must stay what the script prints, on
either broker."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "examples" / "events_walkthrough.py"


async def test_the_walkthrough_applies_each_payment_once_and_parks_the_poison(bootstrap):
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT),
        env={**os.environ, "SHOP_KAFKA_BOOTSTRAP": bootstrap},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await asyncio.wait_for(process.communicate(), 90))[0].decode()
    assert await process.wait() == 0, output
    assert "points earned for: ['pay-1', 'pay-2']" in output
    assert "malformed: not JSON" in output
    for outcome, count in (("processed", 2), ("duplicate", 1), ("parked", 1)):
        line = f'shop_consumer_events_total{{group="member-points",outcome="{outcome}"}} {count}.0'
        assert line in output, output
    assert 'shop_outbox_backlog{process="payment"} 0.0' in output
