"""The metric-gated ramp, as plain data and one pure judgement: raise the candidate's share
step by step, and after each step compare it with the old backend over the same window. The
talk's rule: use metrics to catch failures after each change, before the next one.

No traffic proves nothing either way: a window with too few requests is inconclusive (the
ramp keeps waiting), never a failure and never a pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from gateway.stats import Counts
from libs.routing import InvalidRouteTable, Route

Outcome = Literal["pass", "breach", "inconclusive"]
# A p99 of fewer than 100 requests is their maximum: one cold connection to the newly weighted
# backend would decide it. Errors are judged from min_requests on; latency from this many.
P99_MIN_REQUESTS = 100


@dataclass(frozen=True)
class RampPlan:
    route: str
    candidate: str
    baseline: str
    steps: tuple[int, ...]
    interval_seconds: float
    min_requests: int
    max_error_delta: float  # the candidate's error rate may exceed the baseline's by this much
    p99_ratio: float  # ... and its p99 may be this many times the baseline's ...
    p99_slack_ms: float  # ... unless it is within this many ms of it anyway
    max_wait_intervals: int  # inconclusive intervals tolerated per step before stalling

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "steps": list(self.steps)}

    def weights(self, route: Route, percent: int) -> list[tuple[str, int]]:
        """The route's weights with the candidate at `percent` of the pair's traffic; other
        backends on the route keep their weights."""
        out = []
        for name, weight in route.weights:
            if name == self.candidate:
                weight = percent
            elif name == self.baseline:
                weight = 100 - percent
            out.append((name, weight))
        return out


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


_PLAN_KEYS = {
    "route",
    "candidate",
    "baseline",
    "steps",
    "interval_seconds",
    "min_requests",
    "max_error_delta",
    "p99_ratio",
    "p99_slack_ms",
    "max_wait_intervals",
}


def parse_plan(data: Any, route: Route | None, defaults: Mapping[str, Any]) -> RampPlan:
    """Validate a ramp request against the live route; InvalidRouteTable names each problem."""
    problems: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    if not isinstance(data, Mapping):
        raise InvalidRouteTable([{"field": "body", "message": "must be a JSON object"}])
    for key in sorted(set(data) - _PLAN_KEYS):
        bad(key, "unknown field")
    values = {**defaults, **{k: v for k, v in data.items() if v is not None}}
    if route is None:
        bad("route", f"no route named {data.get('route')!r}")
        raise InvalidRouteTable(problems)
    backends = [name for name, _ in route.weights]
    candidate = values.get("candidate")
    if candidate not in backends:
        bad("candidate", f"must be one of the route's backends {backends}")
    baseline = values.get("baseline") or _heaviest_other(route, candidate)
    if baseline not in backends or baseline == candidate:
        bad("baseline", "must be another of the route's backends")
    steps = values.get("steps")
    if (
        not isinstance(steps, list | tuple)
        or not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 100 for s in steps)
        or list(steps) != sorted(set(steps))
    ):
        bad("steps", "must be increasing whole percentages from 1 to 100, e.g. [10, 30, 50, 100]")
    numbers = {
        "interval_seconds": (0.05, 86_400.0),
        "min_requests": (1, 10_000_000),
        "max_error_delta": (0.0, 1.0),
        "p99_ratio": (1.0, 1000.0),
        "p99_slack_ms": (0.0, 60_000.0),
        "max_wait_intervals": (1, 10_000),
    }
    for key, (low, high) in numbers.items():
        value = values.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            bad(key, f"must be a number from {low:g} to {high:g}")
    if problems:
        raise InvalidRouteTable(problems)
    return RampPlan(
        route=route.name,
        candidate=str(candidate),
        baseline=str(baseline),
        steps=tuple(steps),  # type: ignore[arg-type]
        interval_seconds=float(values["interval_seconds"]),
        min_requests=int(values["min_requests"]),
        max_error_delta=float(values["max_error_delta"]),
        p99_ratio=float(values["p99_ratio"]),
        p99_slack_ms=float(values["p99_slack_ms"]),
        max_wait_intervals=int(values["max_wait_intervals"]),
    )


def _heaviest_other(route: Route, candidate: Any) -> str | None:
    others = [(w, name) for name, w in route.weights if name != candidate]
    return max(others)[1] if others else None


def judge(plan: RampPlan, candidate: Counts, reference: Counts | None) -> Verdict:
    """Compare the candidate's window with the baseline's (the same window, or the last one
    that had enough traffic once the baseline gets none)."""
    if candidate.requests < plan.min_requests:
        return Verdict(
            "inconclusive",
            f"{plan.candidate} answered {candidate.requests} of the {plan.min_requests} "
            "requests needed to judge this step",
        )
    if reference is None or reference.requests < plan.min_requests:
        return Verdict(
            "inconclusive", f"{plan.baseline} has not answered enough requests to compare with"
        )
    cand_rate, base_rate = candidate.error_rate or 0.0, reference.error_rate or 0.0
    if cand_rate - base_rate > plan.max_error_delta:
        return Verdict(
            "breach",
            f"{plan.candidate} failed {cand_rate:.1%} of {candidate.requests} requests against "
            f"{base_rate:.1%} on {plan.baseline} (allowed: +{plan.max_error_delta:.1%})",
        )
    if min(candidate.requests, reference.requests) < P99_MIN_REQUESTS:
        return Verdict(
            "inconclusive",
            f"errors within bounds; p99 needs {P99_MIN_REQUESTS} requests on each side "
            f"({plan.candidate} {candidate.requests}, {plan.baseline} {reference.requests})",
        )
    cand_p99 = (candidate.quantile(0.99) or 0.0) * 1000
    base_p99 = (reference.quantile(0.99) or 0.0) * 1000
    if cand_p99 > base_p99 * plan.p99_ratio and cand_p99 - base_p99 > plan.p99_slack_ms:
        return Verdict(
            "breach",
            f"{plan.candidate} p99 {cand_p99:.1f} ms against {base_p99:.1f} ms on "
            f"{plan.baseline} (allowed: x{plan.p99_ratio:g} or +{plan.p99_slack_ms:g} ms)",
        )
    return Verdict(
        "pass",
        f"{plan.candidate} {cand_rate:.1%} errors, p99 {cand_p99:.1f} ms; "
        f"{plan.baseline} {base_rate:.1%} errors, p99 {base_p99:.1f} ms",
    )
