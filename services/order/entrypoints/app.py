"""Composition root of the order service: the generic extraction app (libs/extraction: the
data mode, its admin route, the batch sync, the start-up checks) over the orders migration,
with what is the order service's own: its routes, its gRPC server, its relay, its payment
events consumer (parked events admin included) and its recovery."""

from __future__ import annotations

from fastapi import FastAPI

from infra.extractions import ORDERS
from infra.settings import OrderServiceSettings
from libs.auth import TokenIssuer
from libs.events.admin import parked_events_router
from libs.extraction import create_extraction_app
from services.order.adapters.migrate import upgrade
from services.order.entrypoints.routes import orders
from services.order.entrypoints.runtime import order_parts


def create_app(settings: OrderServiceSettings) -> FastAPI:
    config = ORDERS.config(settings, upgrade)
    parked = parked_events_router(lambda request: request.app.state.consumers)
    app = create_extraction_app(config, [orders.router, parked], order_parts(settings))
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    return app
