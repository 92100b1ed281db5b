"""Composition root of the member service: the generic extraction app (libs/extraction: the
data mode, its admin route, the batch sync, the start-up checks) over the members migration,
with what is the member service's own: its routes, its gRPC server and its payment events
consumer (parked events admin included)."""

from __future__ import annotations

from fastapi import FastAPI

from infra.settings import ServiceSettings
from libs.auth import TokenIssuer
from libs.events.admin import parked_events_router
from libs.extraction import ExtractionConfig, create_extraction_app
from services.member.adapters.migrate import upgrade
from services.member.adapters.migration import MEMBERS
from services.member.entrypoints.routes import members
from services.member.entrypoints.runtime import member_parts


def create_app(settings: ServiceSettings) -> FastAPI:
    tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    config = ExtractionConfig(
        process="member-service",
        spec=MEMBERS,
        legacy_url=settings.legacy_db_url,
        new_url=settings.db,
        upgrade=upgrade,
        mode=settings.data_mode,
        sync_interval=settings.sync_interval,
        server_limit=settings.server_limit,
        admin_token=settings.admin_token,
    )
    parked = parked_events_router(lambda request: request.app.state.consumers)
    app = create_extraction_app(config, [members.router, parked], member_parts(settings))
    app.state.tokens = tokens
    return app
