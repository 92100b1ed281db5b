"""The order events (`shop.orders`, keyed by the order's id; docs/contracts.md), built the same
way by whoever owns orders: the monolith until the commerce extraction's dual write, the order
service from then on, and both in between (each writes its own changes).

An order's sequence follows from its status, not from an outbox's count: the events of one
order may be written to two outboxes (the legacy DB's in the shared-DB stage, the order DB's
from dual write on), and the numbers must still run 1, 2, 3."""

from __future__ import annotations

from typing import Any

from libs.events.envelope import Event
from services.order.domain.orders import CANCELLED, PAID, PLACED, REFUNDED

TOPIC = "shop.orders"
AGGREGATE = "order"
# The event each status announces, and its place in the order's life.
EVENTS = {
    PLACED: ("OrderPlaced", 1),
    PAID: ("OrderPaid", 2),
    CANCELLED: ("OrderCancelled", 2),
    REFUNDED: ("OrderRefunded", 3),
}


def order_placed(order: dict[str, Any]) -> Event:
    lines = [
        {k: line[k] for k in ("product_id", "quantity", "unit_price")} for line in order["lines"]
    ]
    return _event(order, PLACED, {"total": order["total"], "lines": lines})


def status_changed(order: dict[str, Any], status: str, payment_id: int | None = None) -> Event:
    """`order`: as it was before the change (its member, its previous status)."""
    return _event(order, status, {"previous_status": order["status"], "payment_id": payment_id})


def _event(order: dict[str, Any], status: str, extra: dict[str, Any]) -> Event:
    kind, sequence = EVENTS[status]
    data = {"order_id": order["id"], "member_id": order["member_id"], "status": status} | extra
    return Event(kind, AGGREGATE, str(order["id"]), sequence, data)
