"""What a caller asks the member service to do."""

from __future__ import annotations

from dataclasses import dataclass


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
class AdjustPoints:
    """Another service's points change for one payment (the monolith's payments, until the
    payment service owns them): idempotent on (payment_id, reason)."""

    member_id: int
    delta: int
    reason: str
    payment_id: int
