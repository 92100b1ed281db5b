"""The demo's printed report."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from infra.demo.client import Tally


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def heading(title: str) -> str:
    return f"\n{title}\n{'-' * len(title)}"


def mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def journey_lines(steps: Iterable[tuple[str, str, bool]]) -> list[str]:
    return [f"  {mark(passed)}  {step:<38} {answer}" for step, answer, passed in steps]


def traffic_lines(tally: Tally, seconds: float) -> list[str]:
    classes = {"2xx": 0, "4xx": 0, "5xx": 0}
    for status, count in tally.by_status.items():
        classes[f"{status // 100}xx"] = classes.get(f"{status // 100}xx", 0) + count
    split = ", ".join(
        f"{name} {count * 100 / max(tally.requests, 1):.0f}%"
        for name, count in tally.served_by.items()
    )
    ms = [s * 1000 for s in tally.latencies]
    return [
        f"  requests {tally.requests}   2xx {classes['2xx']}   4xx {classes['4xx']}"
        f"   5xx {classes['5xx']}",
        f"  latency p50 {percentile(ms, 50):.1f} ms   p99 {percentile(ms, 99):.1f} ms"
        f"   throughput {tally.requests / max(seconds, 1e-9):.0f} req/s",
        f"  served by: {split}",
    ]


def invariant_lines(results: list[tuple[str, list[str]]]) -> list[str]:
    lines = []
    for name, problems in results:
        lines.append(f"  {mark(not problems)}  {name}")
        lines += [f"        - {p}" for p in problems[:10]]
        if len(problems) > 10:
            lines.append(f"        ... and {len(problems) - 10} more")
    return lines
