"""Declared timeouts per call edge, checked at start-up against the callee's server limit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class CallTimeouts:
    """connect: time allowed to establish a connection; read: time allowed for the answer."""

    connect: float
    read: float

    def __post_init__(self) -> None:
        if self.connect <= 0 or self.read <= 0:
            raise ValueError(f"timeouts must be positive, got {self}")


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    timeouts: CallTimeouts


class TimeoutBudgetError(RuntimeError):
    """The configuration would let a caller give up before its callee does."""


def check_budgets(edges: Iterable[Edge], server_limits: Mapping[str, float]) -> None:
    """Fail fast, naming every edge whose read timeout does not exceed the callee's limit."""
    problems = []
    for edge in edges:
        limit = server_limits.get(edge.callee)
        if limit is None:
            problems.append(f"{edge.caller} -> {edge.callee}: the callee has no server limit")
        elif edge.timeouts.read <= limit:
            problems.append(
                f"{edge.caller} -> {edge.callee}: read timeout {edge.timeouts.read:g}s must "
                f"exceed {edge.callee}'s server limit {limit:g}s"
            )
    if problems:
        raise TimeoutBudgetError("timeout budget violated: " + "; ".join(problems))
