"""Rolling per-backend statistics the ramp and the console judge by. Counters only ever grow;
a window is the difference of two snapshots, so the old and the new backend are compared over
exactly the same interval (the talk: watch the metrics after each step)."""

from __future__ import annotations

import bisect
import math
import time
from collections import deque
from dataclasses import dataclass, field

# Latency buckets 0.1 ms .. ~100 s, 5% apart: p99 read from them is within 5% of the truth.
_BOUNDS = [1e-4 * 1.05**i for i in range(int(math.log(1e6) / math.log(1.05)) + 1)]


@dataclass
class Counts:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))

    def add(self, seconds: float, error: bool) -> None:
        self.requests += 1
        self.errors += error
        self.buckets[bisect.bisect_left(_BOUNDS, seconds)] += 1

    def copy(self) -> Counts:
        return Counts(self.requests, self.errors, list(self.buckets))

    def minus(self, earlier: Counts) -> Counts:
        return Counts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            [a - b for a, b in zip(self.buckets, earlier.buckets, strict=True)],
        )

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile, in seconds."""
        if not self.requests:
            return None
        rank = math.ceil(q * self.requests)
        seen = 0
        for index, count in enumerate(self.buckets):
            seen += count
            if seen >= rank:
                return _BOUNDS[min(index, len(_BOUNDS) - 1)]
        return _BOUNDS[-1]

    def summary(self) -> dict[str, float | int | None]:
        p99 = self.quantile(0.99)
        p50 = self.quantile(0.5)
        rate = self.error_rate
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": None if rate is None else round(rate, 4),
            "p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "p99_ms": None if p99 is None else round(p99 * 1000, 2),
        }


Key = tuple[str, str]  # (route, backend)
Snapshot = dict[Key, Counts]


class BackendStats:
    """Cumulative counts per (route, backend), plus one snapshot a second for live windows."""

    def __init__(self, keep_seconds: int = 120) -> None:
        self.counts: dict[Key, Counts] = {}
        self.history: deque[tuple[float, Snapshot]] = deque(maxlen=keep_seconds)

    def record(self, route: str, backend: str, seconds: float, error: bool) -> None:
        counts = self.counts.get((route, backend))
        if counts is None:
            counts = self.counts[(route, backend)] = Counts()
        counts.add(seconds, error)

    def snapshot(self) -> Snapshot:
        return {key: counts.copy() for key, counts in self.counts.items()}

    def tick(self, now: float | None = None) -> None:
        self.history.append((time.monotonic() if now is None else now, self.snapshot()))

    def since(self, earlier: Snapshot) -> Snapshot:
        return {
            key: counts.minus(earlier.get(key, Counts())) for key, counts in self.counts.items()
        }

    def last(self, seconds: float, now: float | None = None) -> tuple[float, Snapshot]:
        """The window covering about the last `seconds`: (its actual length, counts)."""
        now = time.monotonic() if now is None else now
        base_at, base = now, self.snapshot()
        for at, snap in reversed(self.history):
            base_at, base = at, snap
            if now - at >= seconds:
                break
        return now - base_at, self.since(base)


def window_of(snapshot: Snapshot, route: str, backend: str) -> Counts:
    return snapshot.get((route, backend), Counts())
