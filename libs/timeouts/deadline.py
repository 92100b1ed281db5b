"""Deadline propagation. The header carries the *remaining* budget in milliseconds (as gRPC's
grpc-timeout does), not a wall-clock instant, so clock skew between hosts cannot matter."""

from __future__ import annotations

import time

from libs import context

DEADLINE_HEADER = "X-Shop-Deadline-Ms"


def parse_budget_ms(value: str | None) -> float | None:
    """Seconds left from a header value; None when absent or unreadable."""
    if not value:
        return None
    try:
        millis = int(value)
    except ValueError:
        return None
    return max(millis, 0) / 1000


def remaining_seconds() -> float | None:
    """Seconds left before the current request's deadline, or None when it has none."""
    at = context.deadline.get()
    return None if at is None else max(at - time.monotonic(), 0.0)
