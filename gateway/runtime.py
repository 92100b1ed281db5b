"""Everything a running gateway holds, built in the app's lifespan and closed there."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from gateway.health import BackendHealth
from gateway.metrics import GatewayMetrics
from gateway.ramp_runner import RampController
from gateway.registry import RouteRegistry
from gateway.shadow import ShadowRunner
from gateway.stats import BackendStats
from libs.routing import MemberKeys
from libs.routing.upstream import Outcome, Upstreams
from libs.state_file import StateFile
from libs.timeouts import CallTimeouts


@dataclass
class Gateway:
    registry: RouteRegistry
    upstreams: Upstreams
    members: MemberKeys
    stats: BackendStats
    metrics: GatewayMetrics
    shadow: ShadowRunner
    ramps: RampController
    state_file: StateFile
    timeouts: CallTimeouts
    server_limit: float
    retries: int
    health: BackendHealth
    max_body_bytes: int = 1_048_576
    body_idle_seconds: float = 5.0
    console_window_seconds: float = 10.0
    _ticker: asyncio.Task[None] | None = field(default=None, repr=False)

    def record(self, route: str, backend: str, outcome: Outcome) -> None:
        """One proxied request, into the Prometheus metrics and the ramp's rolling windows."""
        error = outcome.status >= 500 or outcome.failure is not None
        self.stats.record(route, backend, outcome.seconds, error)
        self.metrics.observe(route, backend, outcome.status, outcome.seconds)
        if outcome.attempts > 1:
            self.metrics.retries.labels(route, backend).inc(outcome.attempts - 1)
        if error:
            kind = outcome.failure or "status_5xx"
            self.metrics.errors.labels(route, backend, kind).inc()

    def persist(self) -> None:
        self.state_file.save({**self.registry.dump(), "ramps": self.ramps.dump()})

    def start_ticker(self) -> None:
        async def tick() -> None:
            while True:
                self.stats.tick()
                await asyncio.sleep(1.0)

        self._ticker = asyncio.create_task(tick(), name="gateway-stats-ticker")

    async def close(self) -> None:
        await self.ramps.close()
        await self.shadow.close()
        await self.health.close()
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.upstreams.close()

    def live(self) -> dict[str, Any]:
        """The split, error rate and p99 per route and backend over the last few seconds."""
        seconds, window = self.stats.last(self.console_window_seconds)
        routes = {}
        for route in self.registry.table.routes:
            per_backend = {}
            total = sum(
                window[(route.name, b)].requests
                for b, _ in route.weights
                if (route.name, b) in window
            )
            for backend, _ in route.weights:
                counts = window.get((route.name, backend))
                summary: dict[str, Any] = counts.summary() if counts else {"requests": 0}
                summary["split_percent"] = (
                    round(100 * summary["requests"] / total, 1) if total else None
                )
                per_backend[backend] = summary
            routes[route.name] = per_backend
        return {"window_seconds": round(seconds, 1), "routes": routes}
