"""`shop scenario NAME`: the talk's Kafka lessons as runs a trainee starts and measures. Each
scenario is a module here with `DESCRIPTION` and `async def run(bootstrap: str) -> int` that
prints its side-by-side table and returns the exit status (0: the lesson showed as stated)."""

from __future__ import annotations

import importlib

SCENARIOS = ("ordering", "duplicates", "rebalance")


def load(name: str):
    return importlib.import_module(f"infra.scenarios.{name}")
