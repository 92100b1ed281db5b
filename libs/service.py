"""The one call that gives a process every contract of the brief: envelope, request id and
served-by headers, server time limit, metrics, access log, health and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass

from fastapi import FastAPI

from libs.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from libs.observability.health import Readiness, health_router
from libs.observability.logging import AccessLog
from libs.observability.metrics import HttpMetrics, MetricsMiddleware, metrics_router
from libs.openapi import install_openapi
from libs.response.server import RequestContext, install_envelope
from libs.timeouts.server import ServerTimeLimit

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class ServiceOptions:
    name: str
    server_limit_seconds: float = 10.0
    version: str = "0.1.0"
    # A larger request body is a 413 envelope, by Content-Length or while reading.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def create_service_app(options: ServiceOptions, lifespan: Lifespan | None = None) -> FastAPI:
    readiness = Readiness()

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app) if lifespan else nullcontext():
            readiness.mark_started()
            yield
            readiness.mark_draining()

    app = FastAPI(title=options.name, version=options.version, lifespan=run)
    metrics = HttpMetrics(options.name)
    app.state.readiness = readiness
    app.state.metrics = metrics
    readiness.export(metrics.registry)
    app.state.server_limit_seconds = options.server_limit_seconds

    # add_middleware wraps outward: the last added runs first.
    install_envelope(app, options.name)
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    app.add_middleware(ServerTimeLimit, limit_seconds=options.server_limit_seconds)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AccessLog)
    app.add_middleware(RequestContext, service_name=options.name)

    app.include_router(health_router(readiness))
    app.include_router(metrics_router(metrics.registry))
    install_openapi(app)  # the document describes the envelope and the security schemes
    return app
