"""Composition root of the monolith: engine, migrations, seed, token issuer, feature switches,
the points outbox relay, routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.db import make_engine, ping
from libs.routing.forwarding import install_forwarding
from libs.service import ServiceOptions, create_service_app
from monolith.adapters.migrate import upgrade
from monolith.entrypoints.routes import admin, members, orders, payments, products
from monolith.seed import seed_catalogue
from monolith.service_layer.features import Features
from monolith.service_layer.points import LocalPoints, MemberServicePoints, PointsRelay
from services.member.client import BlockingMemberClient

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, seed: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.legacy_db_url)
        upgrade(engine)
        if seed:
            seed_catalogue(engine)
        app.state.engine = engine
        app.state.features = Features(engine)
        client = BlockingMemberClient(
            settings.member_grpc_target, timeout=settings.monolith_member_timeout
        )
        app.state.local_points = LocalPoints()
        app.state.member_service_points = MemberServicePoints(client)
        relay = PointsRelay(engine, client, app.state.metrics.registry)
        app.state.points_relay = relay
        app.state.readiness.add_check("legacy_db", lambda: ping(engine))
        stop = asyncio.Event()
        relaying = asyncio.create_task(_relay(relay, settings.monolith_points_relay_interval, stop))
        try:
            yield
        finally:
            stop.set()
            await relaying
            client.close()
            engine.dispose()

    app = create_service_app(
        ServiceOptions("monolith", server_limit_seconds=settings.monolith_server_limit), lifespan
    )
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    app.state.admin_token = settings.admin_token
    for module in (members, products, orders, payments, admin):
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


async def _relay(relay: PointsRelay, interval: float, stop: asyncio.Event) -> None:
    """Retries what the payments could not deliver at once (member service down, a restart)."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(relay.flush)  # one SELECT when nothing is pending
        except Exception:  # the loop must outlive a failed round; the next one retries
            log.exception("points relay round failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
