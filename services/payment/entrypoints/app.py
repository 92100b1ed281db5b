"""Composition root of the payment service: the generic extraction app (libs/extraction) over
the payments migration, with its routes, its gRPC server, its relay, the recovery of its
points debits and their admin view."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request

from infra.extractions import PAYMENTS
from infra.settings import ServiceSettings
from libs.auth import TokenIssuer
from libs.bearer import Actor
from libs.extraction import create_extraction_app
from libs.response import ok
from services.payment.adapters.migrate import upgrade
from services.payment.entrypoints.routes import payments
from services.payment.entrypoints.runtime import payment_parts

admin = APIRouter(prefix="/admin", tags=["admin"])


@admin.get("/points-debits")
def points_debits(request: Request, _: Actor):
    """The debits this service asked of the member service, per status."""
    return ok(request.app.state.payments.debits.state())


def create_app(settings: ServiceSettings) -> FastAPI:
    config = PAYMENTS.config(settings, upgrade)
    app = create_extraction_app(config, [payments.router, admin], payment_parts(settings))
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    return app
