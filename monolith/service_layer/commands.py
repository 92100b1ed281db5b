"""What the legacy shop can be asked to do. Routes build these; handlers carry them out."""

from __future__ import annotations

from dataclasses import dataclass

from monolith.domain.orders import LineRequest
from services.order.service_layer.commands import PLACE_ORDER, CancelOrder, PlaceOrder
from services.payment.service_layer.commands import Pay, Refund

# The commerce commands are the order and payment services' own: one shape on both sides of
# the split routes.
__all__ = [
    "PLACE_ORDER",
    "CancelOrder",
    "HoldStock",
    "Login",
    "Pay",
    "PlaceOrder",
    "Refund",
    "ReleaseStock",
    "Signup",
    "UpdateProfile",
]


@dataclass(frozen=True)
class Signup:
    email: str
    password: str
    name: str
    phone: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass(frozen=True)
class UpdateProfile:
    member_id: int
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class HoldStock:
    """Asked by whoever owns the order (the monolith, later the order service)."""

    order_id: int
    lines: list[LineRequest]


@dataclass(frozen=True)
class ReleaseStock:
    order_id: int
