"""What the legacy shop can be asked to do. Routes build these; handlers carry them out."""

from __future__ import annotations

from dataclasses import dataclass

from monolith.domain.orders import LineRequest


@dataclass(frozen=True)
class Signup:
    email: str
    password: str
    name: str
    phone: str | None = None


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
class PlaceOrder:
    member_id: int
    lines: list[LineRequest]


@dataclass(frozen=True)
class CancelOrder:
    member_id: int
    order_id: int


@dataclass(frozen=True)
class Pay:
    member_id: int
    order_id: int
    method: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Refund:
    member_id: int
    payment_id: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class HoldStock:
    """Asked by whoever owns the order (the monolith, later the order service)."""

    order_id: int
    lines: list[LineRequest]


@dataclass(frozen=True)
class ReleaseStock:
    order_id: int
