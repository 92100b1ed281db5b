"""Composition root of the monolith: engine, migrations, seed, token issuer, feature switches,
the member service's points client and the recovery of its debits, the events relay, the
consumer groups (fulfilment, the catalogue), the client the composed pages call the gateway
with, routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from infra.processes import grpc_target, urls
from infra.settings import MonolithSettings
from libs.auth import TokenIssuer
from libs.db import make_engine, ping
from libs.events.admin import parked_events_router
from libs.events.consumer import ConsumerRunner
from libs.events.inbox import Inbox
from libs.events.relay import Relay
from libs.routing.forwarding import install_forwarding
from libs.service import ServiceOptions, create_service_app
from monolith.adapters.migrate import upgrade
from monolith.adapters.tables import event_inbox
from monolith.entrypoints.routes import (
    admin,
    holds,
    members,
    orders,
    payments,
    products,
    shipments,
    views,
)
from monolith.seed import seed_catalogue
from monolith.service_layer import catalog, events, fulfilment
from monolith.service_layer.features import Features
from monolith.service_layer.points import LocalPoints, MemberServicePoints
from services.member.client import BlockingMemberClient

log = logging.getLogger(__name__)


def create_app(settings: MonolithSettings, *, seed: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.legacy_db_url)
        upgrade(engine)
        if seed:
            seed_catalogue(engine)
        app.state.engine = engine
        app.state.features = Features(engine)
        client = BlockingMemberClient(
            settings.monolith_member_grpc or grpc_target("member-service"),
            timeout=settings.monolith_member_timeout,
        )
        registry = app.state.metrics.registry
        app.state.local_points = LocalPoints()
        points = MemberServicePoints(engine, client, registry)
        app.state.member_service_points = points
        app.state.points_stale_seconds = settings.monolith_points_stale_seconds
        relay = Relay(
            engine,
            events.outbox,
            settings.kafka_bootstrap_servers,
            process="monolith",
            topic_prefix=settings.kafka_topic_prefix,
            registry=registry,
        )
        app.state.relay = relay
        # Fulfilment's consumer group: the payment events make and cancel shipments.
        shipping = ConsumerRunner(
            settings.kafka_bootstrap_servers,
            fulfilment.GROUP,
            [settings.kafka_topic_prefix + events.PAYMENTS_TOPIC],
            engine,
            Inbox(event_inbox),
            fulfilment.handle_payment_event,
            topic_partitions=3,
            registry=registry,
        )
        # The catalogue's: a cancelled or refunded order's stock hold is released, whoever
        # owns the order (the monolith's own cancels released it already, and change nothing).
        stock = ConsumerRunner(
            settings.kafka_bootstrap_servers,
            catalog.GROUP,
            [settings.kafka_topic_prefix + events.ORDERS_TOPIC],
            engine,
            Inbox(event_inbox),
            catalog.handle_order_event,
            topic_partitions=3,
            registry=registry,
        )
        app.state.consumers = [shipping, stock]
        # The pages of /api/views, composed from the owners' answers through the gateway.
        app.state.views_client = views.compose_client(
            settings.monolith_views_compose_url or urls()["gateway"],
            settings.monolith_server_limit,
        )
        app.state.readiness.add_check("legacy_db", lambda: ping(engine))
        stop = asyncio.Event()
        recovery = asyncio.create_task(_recover(points, app.state.features, settings, stop))
        await relay.start()  # does not wait for the broker
        for consumer in app.state.consumers:
            await consumer.start()  # nor do these
        try:
            yield
        finally:
            stop.set()
            await recovery
            for consumer in app.state.consumers:
                await consumer.stop()  # finishes and commits its batch
            await relay.stop(settings.shutdown_grace_seconds)  # publishes what it can first
            await app.state.views_client.aclose()
            client.close()
            engine.dispose()

    app = create_service_app(
        ServiceOptions("monolith", server_limit_seconds=settings.monolith_server_limit), lifespan
    )
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    app.state.admin_token = settings.admin_token
    for module in (members, products, orders, payments, shipments, holds, admin, views):
        app.include_router(module.router)
    app.include_router(parked_events_router(lambda request: request.app.state.consumers))
    install_forwarding(
        app,
        "monolith",
        settings.monolith_forwarding,
        urls(overrides=settings.monolith_forwarding_backends),
        app.state.tokens.member_id,
        settings.forwarding_timeouts,
    )
    return app


async def _recover(
    points: MemberServicePoints, features: Features, settings: MonolithSettings, stop: asyncio.Event
) -> None:
    """Gives back the debits a dead request left behind (service_layer/points.py), while the
    monolith serves payments: once they moved, the payment service recovers its own."""
    while not stop.is_set():
        try:
            if features.values["payments"] == "serving":
                await asyncio.to_thread(points.recover, settings.monolith_points_stale_seconds)
        except Exception:  # the loop must outlive a failed round; the next one retries
            log.exception("points debit recovery round failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.monolith_points_recovery_interval)
