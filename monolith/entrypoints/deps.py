"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request

from libs.auth import TokenIssuer
from libs.response import ApiError
from monolith.service_layer.features import Features
from monolith.service_layer.points import Points
from monolith.service_layer.unit_of_work import UnitOfWork

MEMBER_SERVICE = {"feature": "members", "moved_to": "member-service", "path": "/api/members"}


def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine)


def _read_uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine, readonly=True)


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


def _features(request: Request) -> Features:
    return request.app.state.features


def member_feature(request: Request) -> Iterator[None]:
    """Guards the monolith's member routes: held for the whole request, so a feature change
    waits for writes under way. Login is a read, allowed while writes are moving."""
    features: Features = request.app.state.features
    with features.switch.holding() as values:
        state = values["members"]
        is_read = request.method in ("GET", "HEAD") or request.url.path.endswith("/login")
        if state == "retired" or (state == "read-only" and not is_read):
            raise ApiError(
                410,
                "FEATURE_MOVED",
                "Members moved to the member service: call /api/members through the gateway."
                if state == "retired"
                else "Member writes moved to the member service: call /api/members through "
                "the gateway.",
                [MEMBER_SERVICE | {"state": state}],
            )
        yield


def _points(request: Request) -> Iterator[Points]:
    """Where this payment's points go, held until the request ends (see features.py)."""
    state = request.app.state
    with state.features.switch.holding() as values:
        yield (
            state.member_service_points
            if values["member_points"] == "member-service"
            else (state.local_points)
        )


UowDep = Annotated[UnitOfWork, Depends(_uow)]
ReadUowDep = Annotated[UnitOfWork, Depends(_read_uow)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]
FeaturesDep = Annotated[Features, Depends(_features)]
PointsDep = Annotated[Points, Depends(_points)]
