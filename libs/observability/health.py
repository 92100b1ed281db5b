"""Liveness and readiness. Not ready while starting or draining, so a router (the gateway, a
load balancer) stops sending new work before the process goes away. `shop_ready` says the same
on /metrics, computed when scraped, so an alert sees a process that answers but is not ready."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter
from prometheus_client import CollectorRegistry, Gauge

from libs.response.envelope import ApiError
from libs.response.server import ok

Check = Callable[[], None]


class Readiness:
    def __init__(self) -> None:
        self.state = "starting"
        self.checks: dict[str, Check] = {}

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def mark_started(self) -> None:
        self.state = "ready"

    def mark_draining(self) -> None:
        self.state = "draining"

    async def run_checks(self) -> dict[str, str]:
        # Checks are blocking calls (a DB ping): off the event loop.
        return await asyncio.to_thread(self._check_all)

    def _check_all(self) -> dict[str, str]:
        results = {}
        for name, check in self.checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {exc.__class__.__name__}"
        return results

    def is_ready(self) -> bool:
        """What GET /health/ready answers, as a bool: started, not draining, checks pass."""
        return self.state == "ready" and all(v == "ok" for v in self._check_all().values())

    def export(self, registry: CollectorRegistry) -> None:
        """`shop_ready` on this registry: 1 or 0, asked of `is_ready` at each scrape (the
        /metrics endpoint is a plain `def`, so a blocking check runs in the thread pool)."""
        gauge = Gauge(
            "shop_ready",
            "1 while GET /health/ready answers ready, 0 while starting, draining or failing a "
            "check; computed when scraped.",
            registry=registry,
        )
        gauge.set_function(lambda: 1.0 if self.is_ready() else 0.0)


def health_router(readiness: Readiness) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live():
        return ok({"status": "live"})

    @router.get("/ready")
    async def ready():
        if readiness.state != "ready":
            raise ApiError(
                503, "NOT_READY", f"The process is {readiness.state}.", [{"state": readiness.state}]
            )
        checks = await readiness.run_checks()
        failed = [{"check": k, "result": v} for k, v in checks.items() if v != "ok"]
        if failed:
            raise ApiError(503, "NOT_READY", "A readiness check failed.", failed)
        return ok({"status": "ready", "checks": checks})

    return router
