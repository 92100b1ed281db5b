"""The monolith's events (docs/contracts.md): written to the outbox in the change's own
transaction, so an event exists exactly when its change does, and published by the relay
after the commit.

- `shop.payments`, keyed by the payment's id: PaymentCompleted (1), PaymentRefunded (2).
- `shop.orders`, keyed by the order's id: OrderPlaced (1), then one event per status change,
  OrderPaid or OrderCancelled (2), OrderRefunded (3). Whoever owns orders announces them:
  the monolith now, the order service from its single-write stage on."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from libs.events.envelope import Event
from libs.events.outbox import Outbox
from monolith.adapters.tables import event_outbox

PAYMENTS_TOPIC = "shop.payments"
ORDERS_TOPIC = "shop.orders"
outbox = Outbox(event_outbox)
# The event each status change announces (domain/orders.py: PLACED -> PAID -> REFUNDED, or
# PLACED -> CANCELLED).
ORDER_EVENTS = {
    "PLACED": "OrderPlaced",
    "PAID": "OrderPaid",
    "CANCELLED": "OrderCancelled",
    "REFUNDED": "OrderRefunded",
}

_FIELDS = ("order_id", "member_id", "amount", "method", "status", "points_earned", "points_spent")


def payment_completed(conn: sa.Connection, payment: dict[str, Any], spend_key: str | None) -> None:
    """`spend_key`: the debit a points payment used at the member service, so it can name
    the payment on that debit's ledger line."""
    _add(conn, "PaymentCompleted", payment, {"points_spend_key": spend_key})


def payment_refunded(
    conn: sa.Connection, payment: dict[str, Any], take_back_key: str | None
) -> None:
    _add(conn, "PaymentRefunded", payment, {"points_take_back_key": take_back_key})


def order_placed(conn: sa.Connection, order: dict[str, Any]) -> None:
    lines = [
        {k: line[k] for k in ("product_id", "quantity", "unit_price")} for line in order["lines"]
    ]
    _order_event(conn, order, "PLACED", {"total": order["total"], "lines": lines})


def order_status_changed(
    conn: sa.Connection, order: dict[str, Any], status: str, payment_id: int | None = None
) -> None:
    """`order`: the order as it was before the change (its member, its previous status)."""
    extra = {"previous_status": order["status"], "payment_id": payment_id}
    _order_event(conn, order, status, extra)


def _order_event(
    conn: sa.Connection, order: dict[str, Any], status: str, extra: dict[str, Any]
) -> None:
    aggregate_id = str(order["id"])
    data = {"order_id": order["id"], "member_id": order["member_id"], "status": status} | extra
    sequence = outbox.next_sequence(conn, "order", aggregate_id)
    event = Event(ORDER_EVENTS[status], "order", aggregate_id, sequence, data)
    outbox.add(conn, ORDERS_TOPIC, event)


def _add(conn: sa.Connection, kind: str, payment: dict[str, Any], extra: dict[str, Any]) -> None:
    aggregate_id = str(payment["id"])
    data = {"payment_id": payment["id"]} | {name: payment[name] for name in _FIELDS} | extra
    sequence = outbox.next_sequence(conn, "payment", aggregate_id)
    outbox.add(conn, PAYMENTS_TOPIC, Event(kind, "payment", aggregate_id, sequence, data))
