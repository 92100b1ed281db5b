"""The monolith's events (docs/contracts.md): written to the outbox in the change's own
transaction, so an event exists exactly when its change does, and published by the relay
after the commit. Their shapes are the owning domains' (services/order/events.py,
services/payment/events.py), so they read the same whoever announces them.

- `shop.payments`, keyed by the payment's id: PaymentCompleted (1), PaymentRefunded (2).
- `shop.orders`, keyed by the order's id: OrderPlaced (1), then one event per status change,
  OrderPaid or OrderCancelled (2), OrderRefunded (3). Whoever owns orders announces them:
  the monolith, and the order service from its shared-DB stage on for the orders it takes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from libs.events.outbox import Outbox
from monolith.adapters.tables import event_outbox
from services.order import events as order_events
from services.payment import events as payment_events

PAYMENTS_TOPIC = payment_events.TOPIC
ORDERS_TOPIC = order_events.TOPIC
ORDER_EVENTS = {status: kind for status, (kind, _) in order_events.EVENTS.items()}
outbox = Outbox(event_outbox)


def payment_completed(conn: sa.Connection, payment: dict[str, Any], spend_key: str | None) -> None:
    outbox.add(conn, PAYMENTS_TOPIC, payment_events.payment_completed(payment, spend_key))


def payment_refunded(
    conn: sa.Connection, payment: dict[str, Any], take_back_key: str | None
) -> None:
    outbox.add(conn, PAYMENTS_TOPIC, payment_events.payment_refunded(payment, take_back_key))


def order_placed(conn: sa.Connection, order: dict[str, Any]) -> None:
    outbox.add(conn, ORDERS_TOPIC, order_events.order_placed(order))


def order_status_changed(
    conn: sa.Connection, order: dict[str, Any], status: str, payment_id: int | None = None
) -> None:
    """`order`: the order as it was before the change (its member, its previous status)."""
    outbox.add(conn, ORDERS_TOPIC, order_events.status_changed(order, status, payment_id))
