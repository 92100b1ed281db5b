"""Composition root of the member service: the generic extraction app (libs/extraction: the
data mode, its admin route, the batch sync, the start-up checks) over the members migration,
with what is the member service's own: its routes, its gRPC server and its payment events
consumer (parked events admin included)."""

from __future__ import annotations

from fastapi import FastAPI

from infra.extractions import MEMBERS
from infra.settings import ServiceSettings
from libs.auth import TokenIssuer
from libs.events.admin import parked_events_router
from libs.extraction import create_extraction_app
from services.member.adapters.migrate import upgrade
from services.member.entrypoints.routes import members
from services.member.entrypoints.runtime import member_parts


def create_app(settings: ServiceSettings) -> FastAPI:
    tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    config = MEMBERS.config(settings, upgrade)
    parked = parked_events_router(lambda request: request.app.state.consumers)
    app = create_extraction_app(config, [members.router, parked], member_parts(settings))
    app.state.tokens = tokens
    return app
