"""Composition root of the monolith: engine, migrations, seed, token issuer, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.db import make_engine, ping
from libs.routing.forwarding import install_forwarding
from libs.service import ServiceOptions, create_service_app
from monolith.adapters.migrate import upgrade
from monolith.entrypoints.routes import members, orders, payments, products
from monolith.seed import seed_catalogue


def create_app(settings: Settings, *, seed: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.legacy_db_url)
        upgrade(engine)
        if seed:
            seed_catalogue(engine)
        app.state.engine = engine
        app.state.readiness.add_check("legacy_db", lambda: ping(engine))
        try:
            yield
        finally:
            engine.dispose()

    app = create_service_app(
        ServiceOptions("monolith", server_limit_seconds=settings.monolith_server_limit), lifespan
    )
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    for module in (members, products, orders, payments):
        app.include_router(module.router)
    install_forwarding(
        app,
        "monolith",
        settings.monolith_forwarding,
        settings.gateway_backend_urls,
        app.state.tokens.member_id,
        settings.gateway_timeouts,
    )
    return app
