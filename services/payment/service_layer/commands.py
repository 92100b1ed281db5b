"""What the payment service can be asked to do."""

from __future__ import annotations

from dataclasses import dataclass


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
