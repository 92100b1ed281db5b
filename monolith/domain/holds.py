"""Stock holds: the units an order keeps out of stock, keyed by the order's id.

    (none) --hold--> HELD --release--> RELEASED
    (none) --release--> RELEASED (a tombstone, no lines)

A hold is asked for again whenever its first answer was lost, so a repeat of the same lines
answers what the first one held; different lines for the same order are a mistake the caller
must hear of. A release is final: a hold that arrives after it (the caller gave up on an
answer it never got, then the request landed) is refused, so its stock is never stranded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from libs.errors import Conflict
from monolith.domain.orders import LineRequest

HELD, RELEASED = "held", "released"


def ensure_repeat(
    order_id: int, status: str, held: Iterable[Mapping[str, Any]], asked: list[LineRequest]
) -> None:
    """An existing hold may only be asked for again with the lines it holds."""
    if status == RELEASED:
        raise Conflict(
            "HOLD_RELEASED",
            f"The stock hold of order {order_id} was released; it cannot be held again.",
        )
    if _quantities(held) != {line.product_id: line.quantity for line in asked}:
        raise Conflict(
            "HOLD_MISMATCH", f"Order {order_id} already holds other lines than the ones asked for."
        )


def _quantities(lines: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    return {line["product_id"]: line["quantity"] for line in lines}
