"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from libs.auth import TokenIssuer
from libs.openapi import answers
from libs.response import ApiError
from monolith.service_layer.features import Features, Values
from monolith.service_layer.points import Points
from monolith.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Moved:
    """A feature the monolith hands over to a service: its routes answer 410 FEATURE_MOVED
    with these details while the feature is read-only (writes) or retired (everything)."""

    feature: str
    noun: str  # "member", the feature's thing, as the messages name it
    moved_to: str
    path: str

    @property
    def details(self) -> dict[str, str]:
        return {"feature": self.feature, "moved_to": self.moved_to, "path": self.path}

    def refusal(self, state: str) -> ApiError:
        what = f"{self.noun}s" if state == "retired" else f"{self.noun} writes"
        service = self.moved_to.replace("-", " ")
        return ApiError(
            410,
            "FEATURE_MOVED",
            f"{what.capitalize()} moved to the {service}: call {self.path} through the gateway.",
            [self.details | {"state": state}],
        )


MEMBERS = Moved("members", "member", "member-service", "/api/members")
ORDERS = Moved("orders", "order", "order-service", "/api/orders")
PAYMENTS = Moved("payments", "payment", "payment-service", "/api/payments")


def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine)


def _read_uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine, readonly=True)


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


def _features(request: Request) -> Features:
    return request.app.state.features


def _guard(request: Request, moved: Moved, is_read: bool) -> Iterator[Values]:
    """Held for the whole request, so a feature change waits for the writes under way; yields
    every feature's value as held."""
    features: Features = request.app.state.features
    with features.switch.holding() as values:
        state = values[moved.feature]
        if state == "retired" or (state == "read-only" and not is_read):
            raise moved.refusal(state)
        yield values


def _is_read(request: Request) -> bool:
    return request.method in ("GET", "HEAD")


@answers(410)
def member_feature(request: Request) -> Iterator[Values]:
    """Guards the monolith's member routes. Login is a read, allowed while writes are
    moving."""
    is_read = _is_read(request) or request.url.path.endswith("/login")
    yield from _guard(request, MEMBERS, is_read)


@answers(410)
def order_feature(request: Request) -> Iterator[Values]:
    yield from _guard(request, ORDERS, _is_read(request))


@answers(410)
def payment_feature(request: Request) -> Iterator[Values]:
    yield from _guard(request, PAYMENTS, _is_read(request))


def _points(request: Request, values: Annotated[Values, Depends(payment_feature)]) -> Points:
    """Where this payment's points go, as the payments guard holds the features until the
    request ends (see features.py). The same hold, not a second one: a change waiting between
    two holds of one request would wait for that request forever."""
    state = request.app.state
    if values["member_points"] == "member-service":
        return state.member_service_points
    return state.local_points


UowDep = Annotated[UnitOfWork, Depends(_uow)]
ReadUowDep = Annotated[UnitOfWork, Depends(_read_uow)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]
FeaturesDep = Annotated[Features, Depends(_features)]
PointsDep = Annotated[Points, Depends(_points)]
