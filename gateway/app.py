"""Composition root of the gateway (the ALB of the talk): route table, upstream clients, ramp,
shadow runner and console, built in the lifespan and closed there."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from gateway.admin import admin_router, routes_view
from gateway.console import console_router
from gateway.defaults import default_table
from gateway.health import BackendHealth
from gateway.metrics import GatewayMetrics
from gateway.migration import MigrationWatch
from gateway.proxy import EdgeProxy
from gateway.ramp_runner import RampController
from gateway.registry import RouteRegistry
from gateway.runtime import Gateway
from gateway.shadow import ShadowRunner
from gateway.stats import BackendStats
from infra.extractions import EXTRACTIONS, Extraction
from infra.processes import urls
from infra.settings import GatewaySettings
from libs.auth import TokenIssuer
from libs.routing import MemberKeys
from libs.routing.upstream import Upstreams
from libs.service import ServiceOptions, create_service_app
from libs.state_file import StateFile


def create_app(
    settings: GatewaySettings, extractions: tuple[Extraction, ...] = EXTRACTIONS
) -> FastAPI:
    """`extractions`: the declared ones (infra/extractions.py) name the stage-0 routes'
    candidates; a test passes its own."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = build_gateway(settings, app.state.gateway_metrics, extractions)
        await gateway.upstreams.start()
        gateway.health.start()
        gateway.ramps.resume()
        gateway.start_ticker()
        app.state.gateway = gateway
        app.state.migration = MigrationWatch(
            gateway.upstreams.urls, settings.admin_token, lambda: routes_view(gateway)
        )
        # What start-up built lives as long as the process. Frozen, a full collection walks
        # only per-request garbage: unfrozen, one stopped every proxied request for 75 ms under
        # bench/gateway.py's load, a whole p99's worth of stall at once.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.migration.close()
            await gateway.close()
            del app.state.gateway, app.state.migration

    app = create_service_app(
        ServiceOptions("gateway", server_limit_seconds=settings.gateway_server_limit), lifespan
    )
    app.state.gateway_metrics = GatewayMetrics(app.state.metrics.registry)
    # Added last, so it runs first: proxied traffic never enters the gateway's own stack.
    app.add_middleware(EdgeProxy)
    app.state.admin_token = settings.admin_token
    app.include_router(admin_router(ramp_defaults(settings)))
    app.include_router(console_router())
    return app


def build_gateway(
    settings: GatewaySettings,
    metrics: GatewayMetrics,
    extractions: tuple[Extraction, ...] = EXTRACTIONS,
) -> Gateway:
    backends = backend_urls(settings)
    state_file = StateFile(settings.gateway_state_path)
    saved = state_file.load() or {}
    registry = RouteRegistry.restore(
        saved,
        default_table(extractions),
        backends,
        max_read_timeout=settings.gateway_server_limit,
        shadow_percent=settings.gateway_shadow_percent,
    )
    upstreams = Upstreams(backends, max_connections=settings.gateway_max_connections)
    stats = BackendStats()
    issuer = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    shadow = ShadowRunner(
        upstreams,
        metrics,
        default_ignore=settings.gateway_shadow_ignore,
        max_in_flight=settings.gateway_shadow_max_in_flight,
        timeout_seconds=settings.gateway_read_timeout,
    )
    gateway = Gateway(
        registry=registry,
        upstreams=upstreams,
        members=MemberKeys(issuer.member_id),
        stats=stats,
        metrics=metrics,
        shadow=shadow,
        ramps=RampController(registry, stats, metrics, persist=lambda: gateway.persist()),
        state_file=state_file,
        timeouts=settings.gateway_timeouts,
        server_limit=settings.gateway_server_limit,
        retries=settings.gateway_retries,
        health=BackendHealth(
            backends,
            metrics.registry,
            interval=settings.gateway_health_interval,
            hold=settings.gateway_hold_seconds,
        ),
        max_body_bytes=settings.gateway_max_body_bytes,
        body_idle_seconds=settings.gateway_body_idle_timeout,
    )
    gateway.ramps.restore(saved.get("ramps"))
    metrics.show_weights(registry.table)
    registry.on_change = lambda: _changed(gateway)
    return gateway


def backend_urls(settings: GatewaySettings) -> dict[str, str]:
    """Every process the gateway can route to, where the process registry has it, unless
    SHOP_GATEWAY_BACKENDS says otherwise (and any backend that names only)."""
    found = urls(overrides=settings.gateway_backends)
    return {name: url for name, url in found.items() if name != "gateway"}


def _changed(gateway: Gateway) -> None:
    gateway.metrics.show_weights(gateway.registry.table)
    gateway.persist()


def ramp_defaults(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "steps": settings.gateway_ramp_steps,
        "interval_seconds": settings.gateway_ramp_interval_seconds,
        "min_requests": settings.gateway_ramp_min_requests,
        "max_error_delta": settings.gateway_ramp_max_error_delta,
        "p99_ratio": settings.gateway_ramp_p99_ratio,
        "p99_slack_ms": settings.gateway_ramp_p99_slack_ms,
        "max_wait_intervals": settings.gateway_ramp_max_wait_intervals,
    }
