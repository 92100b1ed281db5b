"""What the order service can be asked to do. Routes build these; handlers carry them out."""

from __future__ import annotations

from dataclasses import dataclass

from libs.idempotency import fingerprint
from services.order.domain.orders import LineRequest

PLACE_ORDER = "place_order"  # the operation an order placement's Idempotency-Key is kept under


@dataclass(frozen=True)
class PlaceOrder:
    member_id: int
    lines: list[LineRequest]
    idempotency_key: str | None = None

    def request_hash(self) -> str:
        """What a retry with the same Idempotency-Key must repeat: the lines, in order."""
        lines = [[line.product_id, line.quantity] for line in self.lines]
        return fingerprint(PLACE_ORDER, lines=lines)


@dataclass(frozen=True)
class CancelOrder:
    member_id: int
    order_id: int
