"""Composition root of the member service: its runtime (engines, data mode, sync job, gRPC,
the payment events consumer) in the lifespan, the member and admin routes (parked events
included), and every contract through create_service_app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.db import ping
from libs.events.admin import parked_events_router
from libs.service import ServiceOptions, create_service_app
from services.member.entrypoints.routes import admin, members
from services.member.entrypoints.runtime import member_runtime


def create_app(settings: Settings) -> FastAPI:
    tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with member_runtime(settings, tokens, app.state.metrics.registry) as runtime:
            app.state.data = runtime.data
            app.state.consumers = [runtime.consumer]
            app.state.readiness.add_check("member_db", lambda: ping(runtime.data.writer.new))
            yield

    options = ServiceOptions("member-service", server_limit_seconds=settings.member_server_limit)
    app = create_service_app(options, lifespan)
    app.state.tokens = tokens
    app.state.admin_token = settings.admin_token
    app.include_router(members.router)
    app.include_router(admin.router)
    app.include_router(parked_events_router(lambda request: request.app.state.consumers))
    return app
