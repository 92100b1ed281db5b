"""`shop scenario NAME`: the talk's Kafka lessons as runs a trainee starts and measures. Each
scenario is a module here with `DESCRIPTION` and `async def run(bootstrap: str) -> int` that
prints its side-by-side table and returns the exit status (0: the lesson showed as stated)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable

SCENARIOS = ("ordering", "duplicates", "rebalance")


def load(name: str):
    return importlib.import_module(f"infra.scenarios.{name}")


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait for what the clients' background tasks make true, or fail after `within` s."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - set by the clients' background tasks
            await asyncio.sleep(0.02)
