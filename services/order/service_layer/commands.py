"""What the order service can be asked to do. Routes build these; handlers carry them out."""

from __future__ import annotations

from dataclasses import dataclass

from services.order.domain.orders import LineRequest


@dataclass(frozen=True)
class PlaceOrder:
    member_id: int
    lines: list[LineRequest]


@dataclass(frozen=True)
class CancelOrder:
    member_id: int
    order_id: int
